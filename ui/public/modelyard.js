// modelyard's additions to Chainlit's page (loaded through `custom_js` in .chainlit/config.toml):
//  - draws Mermaid code blocks as diagrams, offline, with the mermaid build copied from the npm
//    package the project pins (ui/setup_frontend.py puts it in /public/vendor/);
//  - offers a preview of HTML code blocks in a sandboxed iframe that can run no script at all.
// The source stays visible (and copyable) under each drawing.
(function () {
  'use strict';

  const here = document.currentScript ? document.currentScript.src : '/public/modelyard.js';
  const MERMAID_URL = new URL('vendor/mermaid.min.js', here).href;
  // Chainlit appends this character to a message while it streams: a block that still holds
  // it is incomplete, and partial Mermaid text does not parse.
  const STREAMING_MARK = '\u200B';
  // No network and no script inside a preview; inline styles and data: images only.
  const PREVIEW_CSP =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:";

  let mermaidLoading = null;
  let renderCount = 0;
  const rendered = new Map(); // theme + source -> {svg} or {error}
  // Mermaid renders that succeeded and failed, for whoever inspects the page (the browser tests).
  const stats = (window.modelyardDiagrams = { drawn: 0, failed: 0 });

  function loadMermaid() {
    if (!mermaidLoading) {
      mermaidLoading = new Promise((resolve, reject) => {
        const script = document.createElement('script');
        script.src = MERMAID_URL;
        script.onload = () => resolve(window.mermaid);
        script.onerror = () => reject(new Error('could not load ' + MERMAID_URL));
        document.head.appendChild(script);
      });
    }
    return mermaidLoading;
  }

  function theme() {
    return document.documentElement.classList.contains('dark') ? 'dark' : 'default';
  }

  // A Chainlit code card: a header with the language label and a copy button, then <pre><code>.
  function codeCards(root) {
    const cards = [];
    root.querySelectorAll('pre > code').forEach((code) => {
      const content = code.parentElement.parentElement;
      const card = content && content.parentElement;
      const header = card && card.firstElementChild;
      const label = header && header.querySelector('span');
      if (!label || header === content) return;
      cards.push({ card, code, language: label.textContent.trim().toLowerCase() });
    });
    return cards;
  }

  // The element we added before `card`, moved back or created when React re-rendered around it.
  function companion(card, className) {
    let node = card.previousElementSibling;
    if (node && node.classList.contains(className)) return node;
    node = document.createElement('div');
    node.className = className;
    card.parentNode.insertBefore(node, card);
    return node;
  }

  // Renders run one at a time: mermaid keeps global state while it lays a diagram out.
  let queue = Promise.resolve();

  function renderMermaid(source, look) {
    const key = look + '\n' + source;
    if (!rendered.has(key)) {
      const job = queue.then(() => renderOnce(source, look));
      queue = job;
      rendered.set(key, job);
    }
    return rendered.get(key);
  }

  async function renderOnce(source, look) {
    const id = 'modelyard-mermaid-' + ++renderCount;
    try {
      const mermaid = await loadMermaid();
      mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: look });
      const { svg } = await mermaid.render(id, source);
      stats.drawn += 1;
      return { svg };
    } catch (err) {
      stats.failed += 1;
      const stray = document.getElementById('d' + id);
      if (stray) stray.remove(); // mermaid leaves its scratch element behind on errors
      return { error: String((err && err.message) || err) };
    }
  }

  async function drawDiagram(card, source) {
    const box = companion(card, 'modelyard-diagram');
    // The theme is read now, not at page load: the user may have switched it since.
    const look = theme();
    const key = look + '\n' + source;
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    const result = await renderMermaid(source, look);
    if (box.dataset.key !== key) return; // superseded while rendering
    if (result.svg) {
      box.innerHTML = result.svg; // sanitised by mermaid (securityLevel 'strict')
      box.dataset.state = 'rendered';
    } else {
      box.textContent = 'Diagram could not be drawn: ' + result.error;
      box.dataset.state = 'error';
    }
  }

  function previewDocument(html) {
    const meta = '<meta http-equiv="Content-Security-Policy" content="' + PREVIEW_CSP + '">';
    // A CSP <meta> only counts inside <head> (not <header>): put it first there, or first of all.
    const head = /<head(\s[^>]*)?>/i;
    return head.test(html) ? html.replace(head, (tag) => tag + meta) : meta + html;
  }

  function offerPreview(card, source) {
    const bar = companion(card, 'modelyard-preview');
    if (bar.dataset.source === source) return;
    bar.dataset.source = source;
    bar.textContent = '';
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'modelyard-preview-toggle';
    button.textContent = 'Preview';
    button.addEventListener('click', () => {
      const open = bar.querySelector('iframe');
      if (open) {
        open.remove();
        button.textContent = 'Preview';
        return;
      }
      const frame = document.createElement('iframe');
      frame.setAttribute('sandbox', ''); // no scripts, no forms, an opaque origin
      frame.setAttribute('referrerpolicy', 'no-referrer');
      frame.title = 'HTML preview (sandboxed)';
      frame.srcdoc = previewDocument(source);
      bar.appendChild(frame);
      button.textContent = 'Hide preview';
    });
    bar.appendChild(button);
  }

  function scan() {
    for (const { card, code, language } of codeCards(document.body)) {
      const source = code.textContent || '';
      if (source.includes(STREAMING_MARK)) continue;
      if (language === 'mermaid') drawDiagram(card, source.trim());
      else if (language === 'html') offerPreview(card, source);
    }
  }

  let queued = false;
  function scheduleScan() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      scan();
    });
  }

  new MutationObserver(scheduleScan).observe(document.body, {
    childList: true,
    subtree: true,
    characterData: true
  });
  // A theme switch redraws every diagram in the new colours.
  new MutationObserver(scheduleScan).observe(document.documentElement, {
    attributes: true,
    attributeFilter: ['class']
  });
  scheduleScan();
})();
