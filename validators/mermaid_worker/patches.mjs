// Two edits to mermaid's config module, applied to the bundle only (build.mjs), that take a warm
// parse from ~4 ms to ~1 ms. 80% of mermaid.parse was copying its config: every getConfig() call
// deep-copies the whole config (an ERD calls it once per entity and label), and the copy added
// each key with Object.defineProperty, which V8 runs far slower than a plain store.
//
// 1. assignWithDepth stores with `dst[key] = value`, except for the key "__proto__", which keeps
//    defineProperty (the reason it is there: a directive must not set the copy's prototype). For
//    the plain objects a config is made of, the result is the same object.
// 2. getConfig returns one copy per config: mermaid replaces `currentConfig` whenever the config
//    changes (each parse starts with reset()), so the copy is made again after every change. Unlike
//    mermaid's, the copy is shared by the callers of one parse. The only writes to it seen over the
//    official examples, the mistake corpus and 1,861 mutants of them are the class and state
//    diagrams' init() setting arrowMarkerAbsolute, a drawing option no parser reads.
//
// Every verdict stays the same: tests/test_mermaid_parity.py runs the source (unpatched) and the
// bundle against the recorded verdicts, and against each other on mutants of them. The edits
// match mermaid's text exactly; if a mermaid upgrade changes it, the build stops here.

import { readFile } from 'node:fs/promises';

const GET_CONFIG = `var getConfig = /* @__PURE__ */ __name(() => {
  return assignWithDepth_default({}, currentConfig);
}, "getConfig");`;

const GET_CONFIG_ONCE = `var configCopy = { of: void 0, copy: void 0 };
var getConfig = /* @__PURE__ */ __name(() => {
  if (configCopy.of !== currentConfig) {
    configCopy = { of: currentConfig, copy: assignWithDepth_default({}, currentConfig) };
  }
  return configCopy.copy;
}, "getConfig");`;

const DEFINE_KEY =
  /Object\.defineProperty\(dst, key, \{\n\s*value: (void 0|srcValue),\n\s*writable: true,\n\s*enumerable: true,\n\s*configurable: true\n\s*\}\);/g;

// The esbuild plugin, and a check to run once the build is done.
export function mermaidConfigPatches() {
  const applied = { getConfig: 0, defineKey: 0 };
  const plugin = {
    name: 'mermaid-config-patches',
    setup(build) {
      build.onLoad({ filter: /[\\/]mermaid[\\/]dist[\\/].*\.mjs$/ }, async ({ path }) => {
        let text = await readFile(path, 'utf8');
        if (!text.includes(GET_CONFIG)) return undefined; // esbuild loads it unchanged
        text = text.replace(GET_CONFIG, GET_CONFIG_ONCE);
        applied.getConfig += 1;
        text = text.replace(DEFINE_KEY, (call, value) => {
          applied.defineKey += 1;
          return `if (key === "__proto__") ${call} else dst[key] = ${value};`;
        });
        return { contents: text, loader: 'js' };
      });
    },
  };
  const check = () => {
    if (applied.getConfig !== 1 || applied.defineKey !== 2) {
      throw new Error(
        `mermaid's config module changed (patched getConfig ${applied.getConfig}x, ` +
          `assignWithDepth stores ${applied.defineKey}x; expected 1 and 2): update patches.mjs`,
      );
    }
  };
  return { plugin, check };
}
