/* Tailing one log file into a <pre> by byte offset, shared by the drawer's Logs tab and the
 * monitor: the first request reads only the tail, later ones ask from the last `end`; nothing
 * is ever fetched twice. */

import { h, fmtBytes } from './util.js';
import { api, expPath } from './api.js';

const TAIL_BYTES = 65536; // what a log shows when first opened
const CHUNK_BYTES = 262144; // most bytes asked for by one follow request
const JUMP_BYTES = 4 << 20; // a log further behind than this skips ahead to its tail
const LOG_KEEP_CHARS = 400000; // text kept in one log view

// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07/g;

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
      const more = await this.fetchOnce(gen);
      if (gen !== this.gen || this.gone) return;
      this.timer = setTimeout(loop, more ? 0 : this.interval);
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
    this.gone = false;
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
      if (gen === this.gen) this.failed(e);
      return false;
    }
    if (gen !== this.gen) return false;
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
      if (r.start > 0) this.mark(`… ${fmtBytes(r.start)} before this not shown …`);
    } else if (r.start < this.end) {
      this.clear();
      this.mark('… the log shrank or was replaced; showing its end …');
    }
    if (r.text) this.write(r.text);
    this.end = r.end;
    this.size = r.size;
    if (this.onUpdate) this.onUpdate(this);
    if (r.size - r.end > JUMP_BYTES) {
      this.mark(`… skipped ${fmtBytes(r.size - r.end)} …`);
      this.end = null;
      return true;
    }
    return r.end < r.size && r.end > r.start;
  }

  atBottom() {
    const p = this.pre;
    return p.scrollHeight - p.scrollTop - p.clientHeight < 24;
  }

  write(text) {
    const follow = this.follow;
    // Progress bars redraw a line with a bare \r: keep what follows it. Colours are dropped.
    const clean = text.replace(ANSI_RE, '').replace(/[^\n]*\r(?!\n)/g, '');
    if (!clean) return;
    this.pre.append(document.createTextNode(clean));
    this.chars += clean.length;
    if (this.chars > LOG_KEEP_CHARS || this.pre.childNodes.length > 400) {
      const all = this.pre.textContent;
      const keep = all.slice(-Math.floor(LOG_KEEP_CHARS * 0.75));
      this.pre.textContent = keep;
      this.chars = keep.length;
    }
    if (follow) this.pre.scrollTop = this.pre.scrollHeight;
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
  }
}
