// Long-lived Mermaid validator: the official parser (mermaid.parse) behind JSON lines.
//
//   stdin:  {"id": 1, "code": "flowchart TD\n  A --> B"}
//   stdout: {"event": "ready", "mermaid": "11.17.2", "startup_ms": 850}      (once, first)
//           {"id": 1, "valid": true, "type": "flowchart-v2", "ms": 3.1}
//           {"id": 2, "valid": false, "type": "er", "line": 3, "error": "line 3: ...", "details": "...", "ms": 2.4}
//           {"event": "warm", "ms": 2100, "types": 32, "failed": []}        (once warm-up is done)
//
// One request at a time, in arrival order; requests go before warm-up work. The worker exits when
// stdin closes (its parent is gone), so it never outlives the Python process that started it.
//
// With MODELYARD_MERMAID_SOCKET set, it also takes the same requests on that Unix socket, one
// connection per caller event loop, each answered on its own connection; the "ready" event then
// names the socket. A caller on another thread than the one holding the pipes reaches the parser
// without a hop between threads.

import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { format } from 'node:util';
import { parseHTML } from 'linkedom';
import { mapLines, describeError } from './errors.mjs';

const started = performance.now();
const writeOut = process.stdout.write.bind(process.stdout);
const send = (message) => writeOut(`${JSON.stringify(message)}\n`);
// stdout carries the protocol: anything a library prints goes to stderr instead.
for (const name of ['log', 'info', 'debug', 'warn', 'trace']) {
  console[name] = (...args) => process.stderr.write(`${format(...args)}\n`);
}

// Without a DOM, mermaid's DOMPurify has no addHook and a third of valid diagrams fail to parse.
// linkedom rather than jsdom: 0.2 s to load instead of 1.0 s, with every verdict of the official
// examples and the mistake corpus identical (tests/test_mermaid_parity.py).
globalThis.window = parseHTML('<!doctype html><html><head></head><body></body></html>').window;
// No top-level await: the bundle is a script (build.mjs), so start-up goes on in listen().
let mermaid;
import('mermaid').then((module) => {
  mermaid = module.default;
  listen();
});

// The first parse of each diagram type lazy-loads its parser (230-340 ms): pay that at start,
// most requested types first. Each sample must parse; a failure is reported in the "warm" event.
const WARM_UP = [
  'flowchart TD\n  A --> B',
  'erDiagram\n  A ||--o{ B : has',
  'sequenceDiagram\n  A->>B: hi',
  'classDiagram\n  class A',
  'stateDiagram-v2\n  [*] --> A',
  'architecture-beta\n  service a(server)[A]',
  'graph TD\n  A --> B',
  'stateDiagram\n  [*] --> A',
  'flowchart-elk TD\n  A --> B',
  'gantt\n  dateFormat YYYY-MM-DD\n  section S\n  Task :a1, 2024-01-01, 1d',
  'pie\n  "A" : 1',
  'mindmap\n  root',
  'timeline\n  2024 : A',
  'gitGraph\n  commit',
  'journey\n  section S\n    Do: 5: Me',
  'C4Context\n  Person(a, "A")',
  'quadrantChart\n  x-axis Low --> High',
  'requirementDiagram\n  requirement r {\n    id: 1\n    text: t\n  }',
  'xychart-beta\n  bar [1, 2]',
  'sankey-beta\n\nA,B,1',
  'block-beta\n  a b',
  'packet\n  0-15: "Port"',
  'kanban\n  todo[Todo]\n    t1[Task]',
  'radar-beta\n  axis a, b, c\n  curve x{1, 2, 3}',
  'treemap-beta\n"A"\n    "B": 1',
  'ishikawa-beta\n  Problem\n    Cause',
  'eventmodeling\n\ntf 01 ui A',
  'venn-beta\n  set A',
  'treeView-beta\n  root/',
  'wardley-beta\ntitle T',
  'cynefin-beta\n  complex\n    "x"',
  'railroad-beta\n  a = terminal("x");',
  'railroad-ebnf-beta\n  a = "x" ;',
  'railroad-abnf-beta\n  a = "x" ;',
  'railroad-peg-beta\n  a <- "x" ;',
];

async function check(code) {
  const begun = performance.now();
  let type = null;
  try {
    type = mermaid.detectType(code);
    const result = await mermaid.parse(code);
    return { valid: true, type: result.diagramType, ms: round(performance.now() - begun) };
  } catch (error) {
    const { line, message, details } = describe(error, code);
    return { valid: false, type, line, error: message, details, ms: round(performance.now() - begun) };
  }
}

function describe(error, code) {
  try {
    return describeError(error, code, mapLines(code));
  } catch {
    // A message we cannot dissect is still an answer; a crash here would fail every request.
    return { line: null, message: String(error?.message ?? error).split('\n')[0], details: null };
  }
}

const round = (ms) => Math.round(ms * 10) / 10;
const requests = [];
const warmUp = [...WARM_UP];
const warm = { ms: 0, failed: [] };
let pumping = false;
let inputClosed = false;

async function pump() {
  if (pumping) return;
  pumping = true;
  while (requests.length || (warmUp.length && !inputClosed)) {
    const request = requests.shift();
    if (request !== undefined) {
      request.reply({ id: request.id, ...(await check(String(request.code ?? ''))) });
      continue;
    }
    // Let stdin's waiting lines in first: in the bundle a parser loads without I/O, so a warm-up
    // of every type would otherwise run to its end before a request is even read.
    await new Promise((resolve) => setImmediate(resolve));
    if (requests.length) continue;
    const sample = warmUp.shift();
    const result = await check(sample);
    warm.ms += result.ms;
    if (!result.valid) warm.failed.push(`${sample.split('\n')[0]}: ${result.error.split('\n')[0]}`);
    if (!warmUp.length) send({ event: 'warm', ms: round(warm.ms), types: WARM_UP.length, failed: warm.failed });
  }
  pumping = false;
  if (inputClosed) process.exit(0);
}

function listen() {
  // 'loose' skips DOMPurify on every label (half the parse time of a flowchart). That is safe here:
  // we only parse, never render or bind a diagram, and validity does not depend on it (the official
  // examples and the mistake corpus get the same verdicts under 'strict').
  mermaid.initialize({ startOnLoad: false, logLevel: 'fatal', securityLevel: 'loose' });
  const { version } = JSON.parse(
    readFileSync(new URL('./node_modules/mermaid/package.json', import.meta.url), 'utf8'),
  );
  const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
  input.on('line', (line) => accept(line, send));
  input.on('close', () => {
    inputClosed = true;
    if (!pumping) process.exit(0);
  });

  const ready = (socket) => {
    send({ event: 'ready', mermaid: version, startup_ms: round(performance.now() - started), socket });
    pump();
  };
  const path = process.env.MODELYARD_MERMAID_SOCKET;
  if (!path) return ready(null);
  const server = createServer((connection) => {
    const reply = (message) => connection.writable && connection.write(`${JSON.stringify(message)}\n`);
    createInterface({ input: connection, crlfDelay: Infinity }).on('line', (line) => accept(line, reply));
    connection.on('error', () => {}); // a caller gone mid-reply: its loop closed, nothing to tell
  });
  server.on('error', (error) => {
    process.stderr.write(`mermaid worker: no socket (${error.message}); stdin only\n`);
    ready(null);
  });
  server.listen(path, () => ready(path));
  // The socket's directory is made for this worker alone: gone with it, even when the Python
  // process that made it was killed and could not clean up.
  process.on('exit', () => rmSync(dirname(path), { recursive: true, force: true }));
  // Ctrl+C in a terminal and a service manager's stop signal the whole process group: exit
  // through the handler above rather than die without it.
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
}

// One request line from stdin or a socket; `reply` answers it where it came from.
function accept(line, reply) {
  if (!line.trim()) return;
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    process.stderr.write(`mermaid worker: ignoring a line that is not JSON: ${line.slice(0, 80)}\n`);
    return;
  }
  requests.push({ id: request.id, code: request.code, reply });
  pump();
}
