// Runs worker.bundle.js (built by build.mjs) with V8's code cache, so Node skips compiling it.
//
// A cache that does not fit this Node (another version, other flags) is refused by V8; the
// bundle then compiles as usual, only slower. MODELYARD_WRITE_CODE_CACHE=1 (build.mjs) writes
// the cache when the worker exits, with every function compiled up to then.
'use strict';

const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');
const { Script } = require('node:vm');

const bundle = join(__dirname, 'worker.bundle.js');
const cache = join(__dirname, 'worker.bundle.cache');
let cachedData;
try {
  cachedData = readFileSync(cache);
} catch {
  cachedData = undefined; // not built yet: compile without it
}
const script = new Script(readFileSync(bundle, 'utf8'), { filename: bundle, cachedData });
if (cachedData && script.cachedDataRejected) {
  process.stderr.write('mermaid worker: the code cache does not fit this Node; run `npm ci` again\n');
}
if (process.env.MODELYARD_WRITE_CODE_CACHE === '1') {
  process.on('exit', () => writeFileSync(cache, script.createCachedData()));
}
script.runInThisContext()(require, pathToFileURL(bundle).href);
