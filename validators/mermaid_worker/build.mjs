// Build the fast form of worker.mjs (run by `npm ci`, and by `make setup` after an edit):
//
//   worker.bundle.js     worker.mjs, mermaid and linkedom in one script (esbuild);
//   worker.bundle.cache  V8's compiled code for it, taken after a warm-up of every diagram type.
//
// worker.cjs runs the two. Node then neither resolves hundreds of ES modules nor compiles them:
// a fresh worker's first verdict comes in ~0.2 s instead of ~1.0 s. The parser is the same code,
// with three edits to its config copying (patches.mjs), so every verdict is the same
// (tests/test_mermaid_parity.py runs the source and this form).

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { rmSync } from 'node:fs';
import { build } from 'esbuild';
import { mermaidConfigPatches } from './patches.mjs';

const patches = mermaidConfigPatches();

await build({
  entryPoints: ['worker.mjs'],
  outfile: 'worker.bundle.js',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // Whitespace and syntax only: names stay, so a parser's error text and stack read as before.
  minifyWhitespace: true,
  minifySyntax: true,
  // One function, compiled by worker.cjs with its code cache: it gets `require` and its own URL.
  banner: { js: '(function (require, __bundleUrl) {' },
  footer: { js: '})' },
  define: { 'import.meta.url': '__bundleUrl' },
  logLevel: 'warning',
  plugins: [patches.plugin],
});
patches.check();

// Take the code cache once the worker has parsed a sample of every type (its "warm" event).
rmSync('worker.bundle.cache', { force: true });
const worker = spawn(process.execPath, ['worker.cjs'], {
  env: { ...process.env, MODELYARD_WRITE_CODE_CACHE: '1' },
  stdio: ['pipe', 'pipe', 'inherit'],
});
for await (const line of createInterface({ input: worker.stdout })) {
  const event = JSON.parse(line);
  if (event.event === 'warm') {
    if (event.failed.length) throw new Error(`warm-up failed: ${event.failed.join('; ')}`);
    worker.stdin.end();
  }
}
const code = await new Promise((resolve) => worker.on('close', resolve));
if (code !== 0) throw new Error(`the bundled worker exited with ${code} while taking its code cache`);
