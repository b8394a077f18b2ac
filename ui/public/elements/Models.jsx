// The model status panel (ui/status_panel.py sends it to the sidebar with fresh props).
// Chainlit compiles this file in the browser and passes it `props`. Each button posts a window
// message, which Chainlit forwards to the server's on_window_message (see ui/app.py).
import { Flame, Plus, PowerOff, RefreshCw } from 'lucide-react';
import { useState } from 'react';

import { Badge } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { Input } from '@/components/ui/input';

const LABELS = {
  not_loaded: 'not loaded',
  loading: 'loading',
  ready: 'ready',
  in_use: 'in use',
  error: 'error'
};

const VARIANTS = {
  ready: 'default',
  in_use: 'default',
  loading: 'secondary',
  not_loaded: 'outline',
  error: 'destructive'
};

function post(action, model, extra = {}) {
  window.postMessage({ modelyard: action, model, ...extra }, window.location.origin);
}

// `modelyard models add NAME --task TYPE` from the panel: the server checks that Ollama has it.
// The sidebar may mount the panel afresh when its props change: what the user typed lives on the
// window, not only in React state, so a refresh never loses it.
function AddModel({ tasks }) {
  const saved = (window.modelyardAddForm = window.modelyardAddForm || {});
  const [name, setNameState] = useState(saved.name || '');
  const [task, setTaskState] = useState(saved.task || tasks[0] || '');
  const setName = (value) => setNameState((saved.name = value));
  const setTask = (value) => setTaskState((saved.task = value));
  const add = () => {
    if (name.trim()) post('add_model', name.trim(), { task });
  };
  return (
    <div
      id="model-add"
      className="flex flex-col gap-2 pt-2"
      role="group"
      aria-labelledby="model-add-title"
    >
      <div id="model-add-title" className="text-xs text-muted-foreground">
        Route a task to an installed model
      </div>
      <Input
        id="model-add-name"
        aria-label="Model name"
        placeholder="model, e.g. llama3.1:8b"
        value={name}
        onChange={(e) => setName(e.target.value)}
      />
      <div className="flex gap-2">
        <select
          id="model-add-task"
          aria-label="Task type"
          className="flex-1 rounded border bg-background px-2 text-sm"
          value={task}
          onChange={(e) => setTask(e.target.value)}
        >
          {tasks.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <Button id="model-add-submit" variant="outline" size="sm" onClick={add}>
          <Plus /> Add
        </Button>
      </div>
    </div>
  );
}

function StatusBadge({ status }) {
  return (
    <Badge variant={VARIANTS[status] || 'outline'} data-status={status}>
      {LABELS[status] || status}
    </Badge>
  );
}

// Resident memory against the budget: one bar segment per loaded model.
function MemoryChart({ memory, models }) {
  const scale = Math.max(memory.budget || 0, memory.resident || 0, 1);
  const loaded = models.filter((row) => row.bytes > 0);
  // Without a budget there is nothing to measure against: the label alone says what is resident.
  const bar = memory.budget ? (
    <div className="flex h-2 w-full overflow-hidden rounded bg-muted" aria-hidden="true">
      {loaded.map((row, i) => (
        <div
          key={row.model}
          title={`${row.model}: ${row.size}`}
          className={i % 2 ? 'bg-primary/60' : 'bg-primary'}
          style={{ width: `${(100 * row.bytes) / scale}%` }}
        />
      ))}
    </div>
  ) : null;
  return (
    <div id="model-memory" className="flex flex-col gap-1" data-resident={memory.resident}>
      <div className="text-xs text-muted-foreground">memory {memory.label}</div>
      {bar}
    </div>
  );
}

// A pool's hosts: one line each, what it holds and whether it answers.
function Hosts({ hosts }) {
  if (!hosts || !hosts.length) return null;
  return (
    <ul id="model-hosts" className="flex flex-col gap-1 text-xs" aria-label="Ollama hosts">
      {hosts.map((host) => (
        <li key={host.url} data-host={host.name} className="modelyard-wrap">
          <span className="font-medium">{host.name}</span>{' '}
          <span className={host.health === 'up' ? 'text-muted-foreground' : 'modelyard-error'}>
            {host.health}
          </span>
          <span className="text-muted-foreground">
            {' · '}
            {host.loaded.length ? host.loaded.join(', ') : 'nothing loaded'} · {host.memory}
          </span>
        </li>
      ))}
    </ul>
  );
}

function ModelRow({ row }) {
  const installed = row.installed === false ? ' · not installed' : '';
  const loaded = row.status === 'ready' || row.status === 'in_use';
  return (
    <div className="modelyard-model-row" data-model={row.model}>
      <div className="flex items-center justify-between gap-2">
        <span className="font-mono text-sm break-all">{row.model}</span>
        <StatusBadge status={row.status} />
      </div>
      <div className="text-xs text-muted-foreground">{row.tasks.join(', ')}</div>
      <div className="text-xs text-muted-foreground">
        size {row.size}
        {installed} · unloads {row.unloads}
      </div>
      {row.cooldown ? (
        <div className="text-xs modelyard-error">cooling down: {row.cooldown} left</div>
      ) : null}
      {row.warnings.map((text) => (
        <div key={text} className="text-xs modelyard-warning modelyard-wrap">
          {text}
        </div>
      ))}
      <div className="flex gap-2 pt-1">
        <Button
          className="modelyard-warm"
          variant="outline"
          size="sm"
          disabled={loaded || row.status === 'loading' || row.installed === false}
          onClick={() => post('warm_model', row.model)}
        >
          <Flame /> Warm
        </Button>
        <Button
          className="modelyard-unload"
          variant="outline"
          size="sm"
          disabled={!loaded}
          onClick={() => post('unload_model', row.model)}
        >
          <PowerOff /> Unload
        </Button>
      </div>
    </div>
  );
}

export default function Models() {
  return (
    <div id="model-status" className="flex flex-col gap-3 text-sm">
      {props.error ? (
        <div id="model-status-error" className="modelyard-error modelyard-wrap">
          {props.error}
        </div>
      ) : (
        <div className="text-xs text-muted-foreground modelyard-wrap">
          Ollama at {props.ollama_url}
        </div>
      )}
      {props.hosts && props.hosts.length ? (
        <Hosts hosts={props.hosts} />
      ) : (
        <MemoryChart memory={props.memory} models={props.models} />
      )}
      {props.notice ? (
        <div id="model-status-notice" className="text-xs modelyard-wrap" role="status">
          {props.notice}
        </div>
      ) : null}
      {props.models.map((row) => (
        <ModelRow key={row.model} row={row} />
      ))}
      <AddModel tasks={props.task_types || []} />
      <Button
        id="model-status-refresh"
        variant="outline"
        size="sm"
        onClick={() => post('refresh_models')}
      >
        <RefreshCw /> Refresh
      </Button>
    </div>
  );
}
