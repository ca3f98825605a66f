/* Telling the user: toasts (results of actions, errors) and the confirm dialog. */

import { $, h } from './util.js';

export function toast(message, kind, ms) {
  const box = $('#toasts');
  const t = h('div', { class: `toast ${kind || ''}`, role: kind === 'err' ? 'alert' : 'status' }, message);
  t.addEventListener('click', () => t.remove());
  box.append(t);
  while (box.children.length > 5) box.firstChild.remove();
  setTimeout(() => t.remove(), ms || (kind === 'err' ? 9000 : 5000));
}

/** Resolves true when the user confirms. */
export function confirmDialog(title, text, okLabel) {
  const dlg = $('#confirm');
  if (typeof dlg.showModal !== 'function') {
    return Promise.resolve(window.confirm(`${title}\n\n${text}`));
  }
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel || 'OK';
  dlg.returnValue = 'cancel';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
    $('#confirm-ok').focus();
  });
}
