// Turn mermaid.parse() errors into short, actionable messages with the user's line numbers.

// mermaid 11.17.2 numbers the lines of the text it parses after preprocessDiagram()
// (src/preprocess.ts) has dropped front matter, %%{...}%% directives, %% comment lines and leading
// blank lines. We replay those steps on (text, original offset of every character) to map back.
const FRONT_MATTER = /^([^\S\n\r]*)-{3}\s*[\n\r](.*?)[\n\r]\1-{3}\s*[\n\r]+/gs;
const DIRECTIVE = /%{2}{\s*(?:(\w+)\s*:|(\w+))\s*(?:(\w+)|((?:(?!}%{2}).|\r?\n)*))?\s*(?:}%{2})?/gi;
const COMMENT = /^\s*%%(?!{)[^\n]+\n?/gm;
const LEADING_SPACE = /^\s+/g;
const MAX_EXPECTED = 8;

function drop(state, regex) {
  let text = '';
  const origin = [];
  let last = 0;
  for (const match of state.text.matchAll(regex)) {
    text += state.text.slice(last, match.index);
    origin.push(...state.origin.slice(last, match.index));
    last = match.index + match[0].length;
  }
  text += state.text.slice(last);
  origin.push(...state.origin.slice(last));
  return { text, origin };
}

function lineStarts(text) {
  const starts = [0];
  for (const match of text.matchAll(/\r\n?|\n/g)) starts.push(match.index + match[0].length);
  return starts;
}

/** Map (line, column) of the text mermaid parsed to (line, column) of `code`, both 1-based lines. */
export function mapLines(code) {
  let state = { text: code, origin: Array.from(code, (_, index) => index) };
  state = drop(state, /\r(?=\n)/g);
  state = { text: state.text.replace(/\r/g, '\n'), origin: state.origin };
  for (const regex of [FRONT_MATTER, DIRECTIVE, COMMENT, LEADING_SPACE]) state = drop(state, regex);
  const parsedStarts = lineStarts(state.text);
  const originalStarts = lineStarts(code);
  return (line, column = 0) => {
    const start = parsedStarts[Math.min(Math.max(line, 1), parsedStarts.length) - 1];
    const offset = start + column;
    const at = offset < state.origin.length ? state.origin[offset] : code.length;
    let index = originalStarts.findLastIndex((s) => s <= at);
    // Past the end (an error at end of input): the last line that has text.
    while (index > 0 && at >= code.length && !code.slice(originalStarts[index]).trim()) index -= 1;
    return { line: index + 1, column: Math.max(0, at - originalStarts[index]) };
  };
}

function snippet(code, line, column) {
  const text = code.split(/\r\n?|\n/)[line - 1];
  if (text === undefined) return '';
  const gutter = `  ${line} | `;
  const caret = column === null ? '' : `\n${' '.repeat(gutter.length - 2)}| ${' '.repeat(column)}^`;
  return `${gutter}${text}${caret}`;
}

function unbalanced(source) {
  const pairs = { '[': ']', '(': ')', '{': '}' };
  const open = [];
  for (const char of source) {
    if (pairs[char]) open.push(pairs[char]);
    else if (Object.values(pairs).includes(char) && open.at(-1) === char) open.pop();
  }
  return open.length > 0 || (source.match(/"/g) ?? []).length % 2 === 1;
}

// Hints for the mistakes small models make most; the parser's own words stay in the message.
function hint(token, expected, source, code) {
  const atEnd = token === 1 || token === 'EOF';
  if (token === 'end' && !expected.includes("'end'")) {
    return " ('end' is a keyword: name the node End, or use end_node[end])";
  }
  if (token === 'PS') return ' (parentheses inside a label must be quoted: A["Start (now)"])';
  if (atEnd && expected.includes("'end'")) {
    return " (a block such as alt, loop, opt, par or subgraph is missing its 'end')";
  }
  if (atEnd && unbalanced(source)) return ' (a bracket or quote opened on this line is never closed)';
  if (atEnd && unbalanced(code)) return ' (a bracket or quote opened earlier is never closed)';
  if (atEnd) return ' (the diagram ends in the middle of a statement)';
  return '';
}

function jisonError(error, code, toOriginal) {
  const { hash } = error;
  const expected = hash.expected ?? [];
  const atEnd = hash.token === 1 || hash.token === 'EOF';
  const text = String(hash.text ?? '');
  const got = atEnd ? 'end of diagram' : text.trim() ? `'${text.trim()}'` : 'end of line';
  const named = !atEnd && text.trim() && hash.token !== text.trim() ? ` (${hash.token})` : '';
  const shown = expected.slice(0, MAX_EXPECTED).join(', ');
  const more = expected.length > MAX_EXPECTED ? ` and ${expected.length - MAX_EXPECTED} more` : '';
  const loc = hash.loc;
  const where = toOriginal(loc ? loc.first_line : hash.line + 1, loc ? loc.first_column : 0);
  const source = code.split(/\r\n?|\n/)[where.line - 1] ?? '';
  return {
    line: where.line,
    message: `line ${where.line}: unexpected ${got}${named}${hint(hash.token, expected, source, code)}`,
    details:
      snippet(code, where.line, caret(code, where, text, atEnd)) +
      (expected.length ? `\nexpected: ${shown}${more}` : ''),
  };
}

function caret(code, where, text, atEnd) {
  // jison's columns count from the previous token; point at the offending text itself instead.
  if (atEnd) return null;
  const source = code.split(/\r\n?|\n/)[where.line - 1] ?? '';
  if (!text.trim()) return source.trimEnd().length;
  const at = source.indexOf(text.trim(), Math.max(0, where.column - 1));
  return at >= 0 ? at : null;
}

function textError(error, code, toOriginal) {
  // Langium parsers (pie, architecture, ...) and jison lexers put "line N[, column M]" in the text.
  const raw = String(error?.message ?? error).replace(/^Parsing failed:\s*/, '');
  const first = raw.split(/(?=\b(?:Lexer|Parse|Lexical) error on line)/).find((part) => part.trim()) ?? raw;
  const summary = first.split('\n')[0].replace(/\s+/g, ' ').trim().slice(0, 300);
  const found = /^(?:(?:Lexer|Parse|Lexical) error )?on line (\d+)(?:, column (\d+))?[:.]?\s*(.*)$/.exec(summary);
  if (!found) return { line: null, message: summary, details: null };
  const where = toOriginal(Number(found[1]), found[2] ? Number(found[2]) - 1 : 0);
  const place = found[2] ? `line ${where.line}, column ${where.column + 1}` : `line ${where.line}`;
  const detail = found[3].replace(/ at offset: \d+, skipped \d+ characters?\./, '');
  return {
    line: where.line,
    message: `${place}: ${detail}`,
    details: snippet(code, where.line, found[2] ? where.column : null),
  };
}

/** Describe a mermaid.parse() failure: {line (1-based or null), message (one line), details (or null)}. */
export function describeError(error, code, toOriginal) {
  if (error?.name === 'UnknownDiagramError') {
    const first = code.split(/\r\n?|\n/).find((line) => line.trim()) ?? '';
    return {
      line: null,
      message: `no diagram type detected: the diagram must start with its header (e.g. 'flowchart TD', 'erDiagram'), not '${first.trim().slice(0, 80)}'`,
      details: null,
    };
  }
  if (error?.hash && (error.hash.loc || Number.isInteger(error.hash.line)) && error.hash.expected) {
    return jisonError(error, code, toOriginal);
  }
  return textError(error, code, toOriginal);
}
