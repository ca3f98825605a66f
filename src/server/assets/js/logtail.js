/* Tailing one log file into a <pre> by byte offset, shared by the drawer's Logs tab and the
 * monitor: the first request reads only the tail, later ones ask from the last `end`; nothing
 * is ever fetched twice. The view can also page back (whole lines before its first byte, down
 * to byte 0), jump to the start or to any offset (a search match): it then stops following
 * until the reader goes back to the end. Colours are rendered (ansi.js), `\r` progress bars
 * collapsed to their last state; an unreachable server is retried with a growing delay. */

import { h, fmtBytes } from './util.js';
import { api, expPath } from './api.js';
import { renderAnsi, collapseCR, plainState } from './ansi.js';

const TAIL_BYTES = 65536; // what a log shows when first opened
const CHUNK_BYTES = 262144; // most bytes asked for by one follow request
const JUMP_BYTES = 4 << 20; // a log further behind than this skips ahead to its tail
const LOG_KEEP_CHARS = 400000; // text kept in one log view
const PAGE_BYTES = 65536; // one page back or forward
const BACKOFF_MAX_MS = 30000; // the longest wait between retries while the server is unreachable

export class LogTail {
  constructor(id, file, pre) {
    this.id = id;
    this.file = file;
    this.pre = pre;
    this.end = null;
    this.size = null;
    this.chars = 0;
    this.gen = 0;
    this.timer = null;
    this.interval = 2000;
    this.lastErr = '';
    this.gone = false;
    this.onUpdate = null;
    this.first = null; // the byte offset of the first byte shown
    this.browsing = false; // the view shows a place of the reader's choosing: no live follow
    this.failures = 0; // failed requests in a row (no answer): the retry delay doubles with each
    this.sgr = plainState(); // the colours in force at the end of what is shown
    this.partial = ''; // the last line, still without its \n (a progress bar redraws it)
    this.partialEl = null;
    this.partialSgr = plainState();
    // Whether the view sticks to the end. Kept here because a <pre> that leaves the document
    // (a monitor page change, a hidden tab) forgets its scroll position.
    this.follow = true;
    this.savedTop = 0;
    pre.addEventListener('scroll', () => {
      if (!pre.isConnected || pre.clientHeight === 0) return;
      this.follow = this.atBottom();
      this.savedTop = pre.scrollTop;
    });
  }

  /** Puts the scroll position back after the view was re-attached or shown again. */
  reveal() {
    if (this.follow) this.pre.scrollTop = this.pre.scrollHeight;
    else this.pre.scrollTop = this.savedTop;
  }

  toEnd() {
    this.follow = true;
    this.reveal();
  }

  start(interval) {
    this.stop();
    this.interval = interval || this.interval;
    const gen = ++this.gen;
    const loop = async () => {
      if (gen !== this.gen) return;
      if (this.browsing) return; // paging by hand: nothing to follow
      const more = await this.fetchOnce(gen);
      if (gen !== this.gen || this.gone) return;
      // Unreachable: wait twice as long after each failure (capped), not every interval.
      const wait = this.failures ? Math.min(BACKOFF_MAX_MS, this.interval * 2 ** this.failures) : this.interval;
      this.timer = setTimeout(loop, more ? 0 : wait);
    };
    loop();
  }

  stop() {
    this.gen++;
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Switches to another file of the same experiment (a new run), starting at its tail. */
  switchTo(file) {
    this.file = file;
    this.end = null;
    this.first = null;
    this.gone = false;
    this.partial = '';
    this.partialEl = null;
    this.mark(`──── ${file} ────`);
  }

  /** One request; resolves true when more is waiting (ask again at once). */
  async fetchOnce(gen) {
    const path = expPath(this.id, 'logs', this.file);
    let r;
    try {
      r = this.end == null
        ? await api('GET', path, { max: TAIL_BYTES })
        : await api('GET', path, { offset: this.end, max: CHUNK_BYTES });
    } catch (e) {
      if (gen === this.gen) {
        if (e.status === 0) this.failures++;
        this.failed(e);
      }
      return false;
    }
    if (gen !== this.gen) return false;
    this.failures = 0;
    this.lastErr = '';
    return this.received(r);
  }

  failed(e) {
    if (e.status === 404) {
      if (this.end == null && this.chars === 0) {
        this.mark('(no log yet)');
        return;
      }
      this.gone = true;
      this.mark('(the log file no longer exists)');
    } else if (e.message !== this.lastErr) {
      this.mark(`(cannot read the log: ${e.message})`);
    }
    this.lastErr = e.message;
  }

  received(r) {
    if (this.end == null) {
      if (this.chars === 0 && this.pre.querySelector('.mark')) this.clear();
      if (this.first == null || this.chars === 0) this.first = r.start;
      if (r.start > 0) this.headMark();
    } else if (r.start < this.end) {
      this.clear();
      this.mark('… the log shrank or was replaced; showing its end …');
    }
    this.size = r.size;
    if (r.text) this.write(r.text);
    this.end = r.end;
    if (this.onUpdate) this.onUpdate(this);
    if (r.size - r.end > JUMP_BYTES) {
      this.mark(`… skipped ${fmtBytes(r.size - r.end)} (page back to read it) …`);
      this.end = null;
      return true;
    }
    return r.end < r.size && r.end > r.start;
  }

  atBottom() {
    const p = this.pre;
    return p.scrollHeight - p.scrollTop - p.clientHeight < 24;
  }

  /** Appends `text` (the bytes after what is shown): the unfinished last line is redrawn
   *  with it, so a progress bar shows only its latest state. */
  write(text) {
    const follow = this.follow;
    if (this.partialEl) {
      this.partialEl.remove();
      this.chars -= this.partial.length;
    }
    const all = this.partial + text;
    const cut = all.lastIndexOf('\n') + 1;
    const done = collapseCR(all.slice(0, cut));
    this.partial = all.slice(cut);
    if (done) {
      this.sgr = Object.assign(plainState(), this.partialSgr);
      this.pre.append(renderAnsi(done, this.sgr));
      this.partialSgr = Object.assign(plainState(), this.sgr);
    }
    this.partialEl = null;
    if (this.partial) {
      const st = Object.assign(plainState(), this.partialSgr);
      this.partialEl = h('span', { class: 'partial' });
      this.partialEl.append(renderAnsi(collapseCR(this.partial), st));
      this.pre.append(this.partialEl);
    }
    this.chars += done.length + this.partial.length;
    if (this.chars > LOG_KEEP_CHARS) this.trimFront();
    this.updateBar();
    if (follow) this.pre.scrollTop = this.pre.scrollHeight;
  }

  /** Drops the oldest nodes once the view holds too much (what was dropped can be paged back
   *  to again: `first` moves up by the bytes dropped, counted in UTF-8). */
  trimFront() {
    const enc = new TextEncoder();
    while (this.chars > LOG_KEEP_CHARS * 0.75 && this.pre.firstChild && this.pre.firstChild !== this.partialEl) {
      const n = this.pre.firstChild;
      const t = n.textContent || '';
      if (!(n.classList && n.classList.contains('mark'))) {
        this.chars -= t.length;
        if (this.first != null) this.first += enc.encode(t).length;
      }
      n.remove();
    }
    if (this.first > 0) this.headMark();
  }

  /** Prepends a page of whole lines (rendered from plain colours: an SGR set before the page
   *  is not known). */
  prepend(text, start) {
    const p = this.pre;
    const h0 = p.scrollHeight;
    const top = p.scrollTop;
    if (this.head) this.head.remove();
    p.prepend(renderAnsi(collapseCR(text), plainState()));
    this.chars += text.length;
    this.first = start;
    if (start > 0) this.headMark();
    p.scrollTop = top + (p.scrollHeight - h0);
    this.updateBar();
  }

  /** The marker at the top: how many bytes come before what is shown (paged back to by
   *  older()). */
  headMark() {
    if (this.head) this.head.remove();
    this.head = h('span', { class: 'mark head' }, `… ${fmtBytes(this.first)} before this not shown …\n`);
    this.pre.prepend(this.head);
  }

  updateBar() {
    if (this.onUpdate) this.onUpdate(this);
  }

  /** One page of whole lines before the first byte shown. */
  async older() {
    if (this.first == null || this.first <= 0) return;
    const r = await api('GET', expPath(this.id, 'logs', this.file), { before: this.first, length: PAGE_BYTES });
    this.size = r.size;
    if (r.end !== this.first) return; // the file changed under the view: the next poll shows it
    this.follow = false;
    this.prepend(r.text || '', r.start);
  }

  /** Shows the file from byte `offset` (a line start: the start of the file, a search match),
   *  one page of it, and stops following; `end()` goes back to live. */
  async jumpTo(offset) {
    this.stop();
    this.browsing = true;
    const r = await api('GET', expPath(this.id, 'logs', this.file), { offset, length: PAGE_BYTES });
    this.clear();
    this.follow = false;
    this.first = r.start;
    if (r.start > 0) this.headMark();
    this.end = r.end;
    this.size = r.size;
    this.write(r.text || '');
    this.pre.scrollTop = 0;
  }

  /** The next page after the last byte shown (while browsing). */
  async newer() {
    if (this.end == null || (this.size != null && this.end >= this.size)) return;
    const r = await api('GET', expPath(this.id, 'logs', this.file), { offset: this.end, length: PAGE_BYTES });
    this.end = r.end;
    this.size = r.size;
    const keep = this.pre.scrollTop;
    this.write(r.text || '');
    this.pre.scrollTop = keep;
  }

  /** Back to the end, following it live. */
  live(interval) {
    this.browsing = false;
    this.clear();
    this.end = null;
    this.first = null;
    this.follow = true;
    this.start(interval);
  }

  mark(text) {
    const follow = this.follow;
    const needsBreak = this.pre.textContent && !this.pre.textContent.endsWith('\n');
    this.pre.append(h('span', { class: 'mark' }, `${needsBreak ? '\n' : ''}${text}\n`));
    if (follow) this.pre.scrollTop = this.pre.scrollHeight;
  }

  clear() {
    this.pre.textContent = '';
    this.chars = 0;
    this.partial = '';
    this.partialEl = null;
    this.sgr = plainState();
    this.partialSgr = plainState();
  }
}
