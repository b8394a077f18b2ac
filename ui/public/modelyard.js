// modelyard's additions to Chainlit's page (loaded through `custom_js` in .chainlit/config.toml):
//  - draws Mermaid code blocks as diagrams, offline, with the mermaid build copied from the npm
//    package the project pins (ui/setup_frontend.py puts it in /public/vendor/);
//  - adds SVG and PNG downloads to each drawn diagram, made in the page (nothing leaves it);
//  - offers a preview of a valid HTML answer in a sandboxed iframe that can run no script at all;
//  - says what the tool does on an empty chat, and collapses long messages behind "Show all".
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
  // PNG downloads are drawn at twice the diagram's size, within what canvases reliably allow.
  const PNG_SCALE = 2;
  const PNG_MAX_SIDE = 8192;

  const NARROW_PX = 768; // below this the models panel stays closed unless asked for
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
      // The dark theme's edge labels (#ccc on #585858) miss the 4.5:1 contrast of WCAG AA.
      const themeVariables = look === 'dark' ? { edgeLabelBackground: '#474747' } : {};
      const settings = { startOnLoad: false, securityLevel: 'strict', theme: look, themeVariables };
      mermaid.initialize(settings);
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

  async function drawDiagram(card, source, options = {}) {
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
      if (!options.chart) box.appendChild(diagramTools(box));
    } else {
      box.textContent = 'Diagram could not be drawn: ' + result.error;
      box.dataset.state = 'error';
    }
  }

  // The message a code card belongs to, with the files the server attached to it.
  function messageOf(card) {
    return card.closest('.message-content') || card.closest('.ai-message');
  }

  // The answer's own files (ui/downloads.py): "erd-blog.mmd", "html-bakery-invalid.html".
  function attachedFiles(card) {
    const message = messageOf(card);
    if (!message) return [];
    const links = message.querySelectorAll('a[download]');
    return Array.from(links, (link) => link.getAttribute('download') || '');
  }

  // SVG and PNG downloads of a drawn diagram, named after the answer's .mmd file.
  function diagramTools(box) {
    const tools = document.createElement('div');
    tools.className = 'modelyard-diagram-tools';
    const note = document.createElement('span');
    note.className = 'modelyard-diagram-note';
    note.setAttribute('role', 'status');
    for (const kind of ['SVG', 'PNG']) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'modelyard-diagram-download';
      button.textContent = kind;
      button.title = 'Download the diagram as ' + kind;
      button.addEventListener('click', async () => {
        note.textContent = '';
        try {
          await downloadDiagram(box, kind);
        } catch (err) {
          note.textContent = kind + ' download failed: ' + String((err && err.message) || err);
        }
      });
      tools.appendChild(button);
    }
    tools.appendChild(note);
    return tools;
  }

  function diagramName(box) {
    const card = box.nextElementSibling;
    const mmd = card ? attachedFiles(card).find((name) => /\.mmd$/i.test(name)) : null;
    return mmd ? mmd.replace(/\.mmd$/i, '') : 'diagram';
  }

  // The first opaque background behind `node`: what the diagram was drawn on, light or dark.
  function backgroundOf(node) {
    for (let el = node; el; el = el.parentElement) {
      const colour = getComputedStyle(el).backgroundColor;
      if (colour && !/^(transparent|rgba\(.*,\s*0\))$/.test(colour)) return colour;
    }
    return theme() === 'dark' ? '#1a1a1a' : '#ffffff';
  }

  // The drawn diagram as a standalone SVG file: its natural size, the page's background behind it.
  function standaloneSvg(box) {
    const svg = box.querySelector(':scope > svg');
    if (!svg) throw new Error('the diagram is not drawn');
    const view = svg.viewBox && svg.viewBox.baseVal;
    const rect = svg.getBoundingClientRect();
    const width = Math.ceil((view && view.width) || rect.width);
    const height = Math.ceil((view && view.height) || rect.height);
    const copy = svg.cloneNode(true);
    copy.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
    copy.setAttribute('width', String(width));
    copy.setAttribute('height', String(height));
    copy.style.maxWidth = '';
    copy.style.backgroundColor = backgroundOf(box);
    const text =
      '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(copy);
    return { text, width, height, background: copy.style.backgroundColor };
  }

  async function pngBlob(file) {
    const scale = Math.min(PNG_SCALE, PNG_MAX_SIDE / Math.max(file.width, file.height, 1));
    const image = new Image();
    image.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(file.text);
    try {
      await image.decode();
    } catch (err) {
      throw new Error('the browser could not load the diagram as an image');
    }
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(file.width * scale));
    canvas.height = Math.max(1, Math.round(file.height * scale));
    const context = canvas.getContext('2d');
    context.fillStyle = file.background;
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve, reject) => {
      try {
        canvas.toBlob(
          (blob) => (blob ? resolve(blob) : reject(new Error('the canvas gave no PNG'))),
          'image/png'
        );
      } catch (err) {
        // A canvas the browser considers tainted (drawn from something it will not let the page
        // read) refuses to be exported: say so instead of failing silently.
        if (err && err.name === 'SecurityError') {
          const why = 'the browser marked the canvas as tainted and will not export it';
          reject(new Error(why + ' (the SVG download still works)'));
        } else {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      }
    });
  }

  async function downloadDiagram(box, kind) {
    const file = standaloneSvg(box);
    const blob =
      kind === 'SVG' ? new Blob([file.text], { type: 'image/svg+xml' }) : await pngBlob(file);
    save(blob, diagramName(box) + '.' + kind.toLowerCase());
  }

  function save(blob, name) {
    const url = URL.createObjectURL(blob);
    const link = document.createElement('a');
    link.href = url;
    link.download = name;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  // The server attaches an .html file to an HTML answer, named "...-invalid.html" or
  // "...-unchecked.html" when the page did not pass its check (ui/downloads.py): only a valid
  // answer is offered a preview, not a failed one, nor HTML quoted in another kind of answer.
  function validHtmlAnswer(card) {
    return attachedFiles(card).some(
      (name) => /\.html$/i.test(name) && !/-(invalid|unchecked)\.html$/i.test(name)
    );
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

  function withdrawPreview(card) {
    const bar = card.previousElementSibling;
    if (bar && bar.classList.contains('modelyard-preview')) bar.remove();
  }

  // A JIRA answer's table (ui/answer.py's jira_markdown), marked for its layout in modelyard.css.
  const TASK_TABLE_HEADERS = 'summary|description|acceptance criteria|story points|type';

  function markTaskTables(root) {
    root.querySelectorAll('.message-content table:not([data-modelyard])').forEach((table) => {
      const headers = Array.from(table.querySelectorAll('thead th'), (th) =>
        th.textContent.trim().toLowerCase()
      );
      if (headers.join('|') === TASK_TABLE_HEADERS) table.dataset.modelyard = 'tasks';
    });
  }

  // A first visit (an empty chat) says in two lines what the tool does, above the starters.
  const WELCOME = [
    'modelyard makes ERDs, flowcharts, HTML pages, code, docs and JIRA breakdowns with ' +
      'specialised models on this machine.',
    'Every artifact is checked before you get it, each step shows which model is working, and ' +
      'the cloud is used only if the local model fails and you allow it.'
  ];
  function welcome() {
    const screen = document.getElementById('welcome-screen');
    if (!screen || screen.querySelector('.modelyard-welcome')) return;
    const intro = document.createElement('div');
    intro.className = 'modelyard-welcome';
    for (const line of WELCOME) intro.appendChild(document.createElement('p')).textContent = line;
    const logo = screen.querySelector('img.logo');
    screen.insertBefore(intro, logo ? logo.nextSibling : screen.firstChild);
  }

  // A long message (a pasted spec, a log) is shown collapsed to a few lines with a "Show all"
  // that expands it; a 20,000-character message would otherwise be a bubble 11,000 px tall.
  const LONG_PX = 320;
  let longCount = 0;
  function collapseLong(root) {
    root.querySelectorAll('[data-step-type="user_message"] .message-content').forEach((content) => {
      if (content.dataset.modelyardLong || content.scrollHeight <= LONG_PX * 1.5) return;
      content.dataset.modelyardLong = 'collapsed';
      content.id = content.id || 'modelyard-long-' + ++longCount;
      const chars = (content.textContent || '').length.toLocaleString('en-US');
      const toggle = document.createElement('button');
      toggle.type = 'button';
      toggle.className = 'modelyard-show-all';
      toggle.setAttribute('aria-controls', content.id);
      const show = (expanded) => {
        content.dataset.modelyardLong = expanded ? 'expanded' : 'collapsed';
        toggle.setAttribute('aria-expanded', String(expanded));
        toggle.textContent = expanded ? 'Show less' : 'Show all (' + chars + ' characters)';
      };
      toggle.addEventListener('click', () => show(content.dataset.modelyardLong === 'collapsed'));
      show(false);
      content.after(toggle);
    });
  }

  function scan() {
    welcome();
    collapseLong(document.body);
    markTaskTables(document.body);
    for (const { card, code, language } of codeCards(document.body)) {
      const source = code.textContent || '';
      if (source.includes(STREAMING_MARK)) continue;
      if (language === 'mermaid') drawDiagram(card, source.trim());
      else if (language === 'chart') {
        // The dashboard's chart (ui/answer.py CHART_FENCE): drawn, its source hidden, no downloads.
        card.classList.add('modelyard-chart-source');
        drawDiagram(card, source.trim(), { chart: true });
      }
      else if (language === 'html') {
        if (validHtmlAnswer(card)) offerPreview(card, source);
        else withdrawPreview(card);
      }
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

  // The server opens the models panel on its own only on a wide screen: on a phone it would cover
  // the answer on every request (ui/status_panel.py). The report goes through Chainlit's window
  // messages, which reach the server only once the chat's session is up: it is sent when a chat
  // input appears (a new page, a new chat), repeated a little later in case the session was still
  // starting, and again whenever the width class changes.
  let reportedInput = null;
  let reportedNarrow = null;
  function reportViewport(force) {
    const narrow = window.innerWidth < NARROW_PX;
    if (!force && narrow === reportedNarrow) return;
    reportedNarrow = narrow;
    window.postMessage({ modelyard: 'viewport', narrow }, window.location.origin);
  }
  function watchSession() {
    const input = document.getElementById('chat-input');
    if (!input || input === reportedInput) return;
    reportedInput = input;
    for (const delay of [0, 700, 2000]) setTimeout(() => reportViewport(true), delay);
  }
  new MutationObserver(watchSession).observe(document.body, { childList: true, subtree: true });

  // The "Usage dashboard" starter asks for the dashboard without sending a message: a message would
  // start a chat named "Show the usage dashboard" in the history. The dashboard is shown in the
  // empty chat and kept only if a request follows it. (Without this script the starter still works
  // as a `usage` command.)
  window.addEventListener(
    'click',
    (event) => {
      const starter = event.target.closest && event.target.closest('#starter-usage-dashboard');
      if (!starter || starter.disabled) return;
      event.preventDefault();
      event.stopPropagation();
      window.postMessage({ modelyard: 'usage' }, window.location.origin);
    },
    true
  );
  watchSession();
  window.addEventListener('resize', () => reportViewport(false));
})();

// Accessibility patches for Chainlit's own markup (issue 10, item 9; tests/browser/test_a11y.py).
// Chainlit 2.12 has no setting for any of these. Each patch only adds what is missing or drops what
// is invalid, so it does nothing once Chainlit fixes the markup itself.
(function () {
  'use strict';

  // 1. Dialogs without a title or description. Radix checks for them right after the dialog
  // mounts, before any MutationObserver runs, so the fix happens while React builds the element:
  // its children are already in it when React sets its attributes.
  const DIALOG_TITLES = [['[data-sidebar="sidebar"]', 'Sidebar']]; // the phone's chat list, a sheet
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    const dialog = this;
    const reference = name === 'aria-describedby' || name === 'aria-labelledby';
    const role = reference && value && dialog.getAttribute('role');
    const isDialog = role === 'dialog' || role === 'alertdialog';
    if (isDialog && !dialog.querySelector('#' + CSS.escape(String(value)))) {
      // No description: what Radix's own `aria-describedby={undefined}` does.
      if (name === 'aria-describedby') return undefined;
      // No title: a visually hidden one, named once React has set the dialog's other attributes.
      const title = document.createElement('h2');
      title.id = value;
      title.className = 'modelyard-sr-only';
      title.textContent = 'Dialog';
      dialog.appendChild(title);
      queueMicrotask(() => {
        const known = DIALOG_TITLES.find(([selector]) => dialog.matches(selector));
        if (known) title.textContent = known[1];
      });
    }
    return setAttribute.call(this, name, value);
  };

  // 2. Icon-only buttons, named in Chainlit only by a tooltip that exists while hovered. Named as
  // their tooltips read; those without an id or class by their lucide icon.
  const BUTTON_NAMES = [
    ['#sidebar-trigger-button', 'Toggle sidebar'],
    ['#search-chats-button', 'Search chats'],
    ['#new-chat-button', 'New chat'],
    ['#chat-settings-open-modal', 'Settings'],
    ['#chat-submit', 'Send message'],
    ['#stop-button', 'Stop task'],
    ['.positive-feedback-on, .positive-feedback-off', 'Helpful'],
    ['.negative-feedback-on, .negative-feedback-off', 'Not helpful'],
    ['button:has(> svg.lucide-message-circle)', 'Feedback comment'],
    ['button:has(> svg.lucide-copy), button:has(> svg.lucide-check)', 'Copy to clipboard'],
    ['#side-view-title button:has(> svg.lucide-arrow-left)', 'Close the panel'],
    ['button:has(> svg.lucide-arrow-down)', 'Scroll to the latest message']
  ];

  function unnamed(button) {
    const named = button.getAttribute('aria-label') || button.title || button.textContent;
    return !named.trim() && !button.getAttribute('aria-labelledby');
  }

  function nameButtons() {
    for (const [selector, name] of BUTTON_NAMES) {
      document.querySelectorAll(selector).forEach((button) => {
        if (unnamed(button)) button.setAttribute('aria-label', name);
      });
    }
    // Any other icon-only button (Chainlit adds some only in some states): named after its lucide
    // icon ("lucide-panel-right-close" -> "panel right close") rather than left nameless.
    document.querySelectorAll('button:has(> svg[class*="lucide-"])').forEach((button) => {
      if (!unnamed(button)) return;
      const icon = [...button.querySelector('svg').classList].find((c) => c.startsWith('lucide-'));
      if (icon) button.setAttribute('aria-label', icon.slice('lucide-'.length).replace(/-/g, ' '));
    });
  }

  function patch() {
    nameButtons();
    // 3. A thread's "..." menu is a <div> inside the thread's link button, where aria-expanded is
    // not allowed (and screen readers do not reach it); Radix sets it again on each toggle.
    document.querySelectorAll('#thread-options[aria-expanded]').forEach((div) => {
      if (!div.getAttribute('role')) div.removeAttribute('aria-expanded');
    });
    // 4. A resize handle's aria-controls names its panel's data-panel-id, which is no element id.
    document.querySelectorAll('[data-resize-handle][aria-controls]').forEach((handle) => {
      const id = handle.getAttribute('aria-controls');
      if (document.getElementById(id)) return;
      const panel = document.querySelector('[data-panel-id="' + CSS.escape(id) + '"]');
      if (panel && !panel.id) panel.id = id;
      else handle.removeAttribute('aria-controls');
    });
    // 5. The chat list's outer <ul> only wraps the per-day lists: a wrapper, not a list.
    document.querySelectorAll('ul:has(> #thread-history)').forEach((ul) => {
      if (!ul.getAttribute('role')) ul.setAttribute('role', 'none');
    });
    // 6. A wide table scrolls in its own box: keyboard users must be able to focus it to scroll.
    document.querySelectorAll('.message-content div.overflow-auto:has(> table)').forEach((box) => {
      if (!box.hasAttribute('tabindex')) box.setAttribute('tabindex', '0');
    });
  }

  let queued = false;
  function schedule() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      patch();
    });
  }
  new MutationObserver(schedule).observe(document.body, {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ['aria-expanded', 'aria-controls']
  });
  schedule();
})();
