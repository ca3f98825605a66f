/* ANSI SGR colours of log text, rendered as DOM nodes (text nodes and styled spans: log text is
 * never parsed as HTML). Handles the 16 colours, 256 colours, truecolor, bold, dim, italic,
 * underline, inverse and resets; every other escape sequence (cursor moves, titles) is dropped. */

// eslint-disable-next-line no-control-regex
const ESC_RE = /\x1b\[([0-9;:?]*)([ -/]*[@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

const BASE16 = ['#000000', '#cd3131', '#0dbc79', '#e5e510', '#2472c8', '#bc3fbc', '#11a8cd', '#e5e5e5',
  '#666666', '#f14c4c', '#23d18b', '#f5f543', '#3b8eea', '#d670d6', '#29b8db', '#ffffff'];

/** xterm's 256-colour palette entry `n`. */
function color256(n) {
  if (n < 16) return BASE16[n];
  if (n < 232) {
    const i = n - 16;
    const c = (v) => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${c(Math.floor(i / 36))},${c(Math.floor(i / 6) % 6)},${c(i % 6)})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
}

/** A fresh SGR state (nothing set). */
export const plainState = () => ({ fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false });

/** Applies the parameters of one SGR sequence to `st`. */
function applySgr(st, params) {
  const p = params === '' ? [0] : params.split(/[;:]/).map((x) => (x === '' ? 0 : Number(x)));
  for (let i = 0; i < p.length; i++) {
    const n = p[i];
    if (n === 0) Object.assign(st, plainState());
    else if (n === 1) st.bold = true;
    else if (n === 2) st.dim = true;
    else if (n === 3) st.italic = true;
    else if (n === 4) st.underline = true;
    else if (n === 7) st.inverse = true;
    else if (n === 22) st.bold = st.dim = false;
    else if (n === 23) st.italic = false;
    else if (n === 24) st.underline = false;
    else if (n === 27) st.inverse = false;
    else if (n >= 30 && n <= 37) st.fg = BASE16[n - 30];
    else if (n >= 90 && n <= 97) st.fg = BASE16[n - 90 + 8];
    else if (n >= 40 && n <= 47) st.bg = BASE16[n - 40];
    else if (n >= 100 && n <= 107) st.bg = BASE16[n - 100 + 8];
    else if (n === 39) st.fg = null;
    else if (n === 49) st.bg = null;
    else if (n === 38 || n === 48) {
      let c = null;
      if (p[i + 1] === 5 && i + 2 < p.length) {
        c = color256(p[i + 2] & 255);
        i += 2;
      } else if (p[i + 1] === 2 && i + 4 < p.length) {
        c = `rgb(${p[i + 2] & 255},${p[i + 3] & 255},${p[i + 4] & 255})`;
        i += 4;
      } else {
        break; // malformed: the rest of the sequence means nothing
      }
      if (n === 38) st.fg = c;
      else st.bg = c;
    }
  }
}

const styled = (st) => st.fg || st.bg || st.bold || st.dim || st.italic || st.underline || st.inverse;

function node(text, st) {
  if (!styled(st)) return document.createTextNode(text);
  const s = document.createElement('span');
  s.className = 'ansi';
  let fg = st.fg;
  let bg = st.bg;
  if (st.inverse) [fg, bg] = [bg || 'var(--log-bg, #111722)', fg || 'var(--log-fg, #d7dde8)'];
  if (fg) s.style.color = fg;
  if (bg) s.style.backgroundColor = bg;
  if (st.bold) s.style.fontWeight = '700';
  if (st.dim) s.style.opacity = '0.65';
  if (st.italic) s.style.fontStyle = 'italic';
  if (st.underline) s.style.textDecoration = 'underline';
  s.textContent = text;
  return s;
}

/** Renders `text` (with escape codes) into a fragment, starting from SGR state `st`, which is
 *  updated to the state at the end (so the next piece continues in the same colours). */
export function renderAnsi(text, st) {
  const frag = document.createDocumentFragment();
  let last = 0;
  ESC_RE.lastIndex = 0;
  let m;
  while ((m = ESC_RE.exec(text))) {
    if (m.index > last) frag.append(node(text.slice(last, m.index), st));
    if (m[2] === 'm') applySgr(st, m[1]);
    last = ESC_RE.lastIndex;
  }
  if (last < text.length) frag.append(node(text.slice(last), st));
  return frag;
}

/** Collapses `\r` redraws (progress bars): of each line, what the last bare `\r` left. A CRLF
 *  line end is an ordinary line end. */
export function collapseCR(text) {
  if (!text.includes('\r')) return text;
  return text.replace(/\r\n/g, '\n').split('\n').map((line) => {
    const i = line.lastIndexOf('\r');
    if (i < 0) return line;
    // A bar that ends with \r (redrawn next) keeps its last drawn state, not nothing.
    const parts = line.split('\r').filter((x) => x !== '');
    return parts.length ? parts[parts.length - 1] : '';
  }).join('\n');
}
