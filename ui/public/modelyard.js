// modelyard's additions to Chainlit's page (loaded through `custom_js` in .chainlit/config.toml):
//  - draws Mermaid code blocks as diagrams, offline, with the mermaid build copied from the npm
//    package the project pins (ui/setup_frontend.py puts it in /public/vendor/);
//  - adds SVG and PNG downloads to each drawn diagram, made in the page (nothing leaves it);
//  - offers a preview of a valid HTML answer in a sandboxed iframe that can run no script at all.
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

  function scan() {
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
})();
