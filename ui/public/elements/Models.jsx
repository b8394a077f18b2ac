// The model status panel (ui/status_panel.py sends it to the sidebar with fresh props).
// Chainlit compiles this file in the browser and passes it `props`. Refresh posts a window
// message, which Chainlit forwards to the server's on_window_message (see ui/app.py).
import { RefreshCw } from 'lucide-react';

import { Badge } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';

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

function StatusBadge({ status }) {
  return (
    <Badge variant={VARIANTS[status] || 'outline'} data-status={status}>
      {LABELS[status] || status}
    </Badge>
  );
}

function ModelRow({ row }) {
  const installed = row.installed === false ? ' · not installed' : '';
  return (
    <div className="modelyard-model-row" data-model={row.model}>
      <div className="flex items-center justify-between gap-2">
        <span className="font-mono text-sm break-all">{row.model}</span>
        <StatusBadge status={row.status} />
      </div>
      <div className="text-xs text-muted-foreground">
        {row.tasks.join(', ')}
      </div>
      <div className="text-xs text-muted-foreground">
        size {row.size}
        {installed} · unloads {row.unloads}
      </div>
    </div>
  );
}

export default function Models() {
  const refresh = () =>
    window.postMessage({ modelyard: 'refresh_models' }, window.location.origin);
  return (
    <div id="model-status" className="flex flex-col gap-3 text-sm">
      {props.error ? (
        <div id="model-status-error" className="text-red-500 modelyard-wrap">
          Ollama is not reachable at {props.ollama_url}: {props.error}
        </div>
      ) : (
        <div className="text-xs text-muted-foreground modelyard-wrap">
          Ollama at {props.ollama_url}
        </div>
      )}
      {props.models.map((row) => (
        <ModelRow key={row.model} row={row} />
      ))}
      <Button
        id="model-status-refresh"
        variant="outline"
        size="sm"
        onClick={refresh}
      >
        <RefreshCw /> Refresh
      </Button>
    </div>
  );
}
