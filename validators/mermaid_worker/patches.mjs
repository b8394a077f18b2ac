// Three edits to mermaid's config module, applied to the bundle only (build.mjs), that take a warm
// parse of a small ERD from ~4 ms to ~0.4 ms. 80% of mermaid.parse was copying its config: every
// getConfig() call deep-copies the whole config (an ERD calls it once per entity and label), and
// the copy added each key with Object.defineProperty, which V8 runs far slower than a plain store.
//
// 1. assignWithDepth stores with `dst[key] = value`, except for the key "__proto__", which keeps
//    defineProperty (the reason it is there: a directive must not set the copy's prototype). For
//    the plain objects a config is made of, the result is the same object.
// 2. getConfig returns one copy per config: mermaid replaces `currentConfig` whenever the config
//    changes, so the copy is made again after every change. Unlike mermaid's, the copy is shared by
//    the callers of one parse (with edit 3, of a run of parses without directives). The only writes
//    to it seen over the
//    official examples, the mistake corpus and 1,861 mutants of them are the class and state
//    diagrams' init() setting arrowMarkerAbsolute, a drawing option no parser reads.
// 3. updateCurrentConfig reuses the config it built last from the same site config when no
//    directive adds anything. Every parse starts with reset() and addDirective(the diagram's own
//    config), two deep copies of the site config (~0.3 ms each, with edit 2's copy after them), and
//    a diagram without an init directive or front matter config adds nothing, so each copy came
//    out the same as the last. A config is never changed in place (setConfig builds a new one), and
//    updateSiteConfig, the one place that changed the site config in place, now changes a copy: a
//    changed site config is a new object, and the config is built from it again.
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

const UPDATE_CURRENT = `var updateCurrentConfig = /* @__PURE__ */ __name((siteCfg, _directives) => {
  let cfg = assignWithDepth_default({}, siteCfg);`;

const UPDATE_CURRENT_ONCE = `var plainConfig = { site: void 0, config: void 0 };
var noDirectives = (list) => list.every((d) => d && typeof d === "object" && Object.keys(d).length === 0);
var updateCurrentConfig = /* @__PURE__ */ __name((siteCfg, _directives) => {
  if (siteCfg === plainConfig.site && noDirectives(_directives)) {
    currentConfig = plainConfig.config;
    return currentConfig;
  }
  let cfg = assignWithDepth_default({}, siteCfg);
  if (noDirectives(_directives)) plainConfig = { site: siteCfg, config: cfg };`;

const UPDATE_SITE = `siteConfig = assignWithDepth_default(siteConfig, conf);
  updateCurrentConfig(siteConfig, directives);`;

const UPDATE_SITE_COPY = `siteConfig = assignWithDepth_default(assignWithDepth_default({}, siteConfig), conf);
  updateCurrentConfig(siteConfig, directives);`;

const DEFINE_KEY =
  /Object\.defineProperty\(dst, key, \{\n\s*value: (void 0|srcValue),\n\s*writable: true,\n\s*enumerable: true,\n\s*configurable: true\n\s*\}\);/g;

// The esbuild plugin, and a check to run once the build is done.
export function mermaidConfigPatches() {
  const applied = { getConfig: 0, defineKey: 0, updateCurrent: 0 };
  const plugin = {
    name: 'mermaid-config-patches',
    setup(build) {
      build.onLoad({ filter: /[\\/]mermaid[\\/]dist[\\/].*\.mjs$/ }, async ({ path }) => {
        let text = await readFile(path, 'utf8');
        if (!text.includes(GET_CONFIG)) return undefined; // esbuild loads it unchanged
        text = text.replace(GET_CONFIG, GET_CONFIG_ONCE);
        applied.getConfig += 1;
        if (text.includes(UPDATE_CURRENT) && text.includes(UPDATE_SITE)) {
          text = text.replace(UPDATE_CURRENT, UPDATE_CURRENT_ONCE).replace(UPDATE_SITE, UPDATE_SITE_COPY);
          applied.updateCurrent += 1;
        }
        text = text.replace(DEFINE_KEY, (call, value) => {
          applied.defineKey += 1;
          return `if (key === "__proto__") ${call} else dst[key] = ${value};`;
        });
        return { contents: text, loader: 'js' };
      });
    },
  };
  const check = () => {
    if (applied.getConfig !== 1 || applied.defineKey !== 2 || applied.updateCurrent !== 1) {
      throw new Error(
        `mermaid's config module changed (patched getConfig ${applied.getConfig}x, ` +
          `assignWithDepth stores ${applied.defineKey}x, updateCurrentConfig ${applied.updateCurrent}x; ` +
          'expected 1, 2 and 1): update patches.mjs',
      );
    }
  };
  return { plugin, check };
}
