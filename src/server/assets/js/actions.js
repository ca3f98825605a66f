/* The actions on an experiment (Rerun, Terminate or Cancel, Delete): which ones a status
 * offers, their labels, the confirmation, the request, and the toast that says what happened. */

import { $ } from './util.js';
import { api, expPath } from './api.js';
import { confirmDialog, toast } from './notify.js';
import { S } from './state.js';
import { refresh, reloadDrawer } from './commands.js';

export const ACTION_LABEL = { retry: 'Rerun', terminate: 'Terminate', delete: 'Delete', cancel: 'Cancel' };
export const ACTION_CLASS = { retry: 'act-primary', terminate: 'act-danger', delete: 'act-danger', cancel: 'act-danger' };

/** The actions a card offers for a status. */
export function actionsFor(status) {
  switch (status) {
    case 'Error': return ['retry', 'delete'];
    case 'Running': return ['terminate'];
    default: return ['delete'];
  }
}

/** `cancel` is a terminate of a pending run. */
export const wireAction = (action) => (action === 'cancel' ? 'terminate' : action);

/** Asks the user where the action cannot be undone; resolves true to go ahead. */
function confirmAction(id, name, action) {
  if (action === 'delete') {
    return confirmDialog(`Delete ${name}?`,
      `This removes the directory ${id} with all its runs, metrics, logs and checkpoints. It cannot be undone.`,
      'Delete');
  }
  if (action === 'terminate' || action === 'cancel') {
    return confirmDialog(action === 'cancel' ? `Cancel ${name}?` : `Terminate ${name}?`,
      action === 'cancel'
        ? 'The pending run will not start; it is marked Error "cancelled".'
        : 'Its process group gets SIGTERM, then SIGKILL; the run is marked Error "terminated".',
      action === 'cancel' ? 'Cancel run' : 'Terminate');
  }
  return Promise.resolve(true);
}

export async function doAction(id, action) {
  const s = S.exps.get(id);
  const name = s ? s.name : id;
  const wire = wireAction(action);
  if (!(await confirmAction(id, name, action))) return;
  const key = `${id}:${wire}`;
  if (S.busy.has(key)) return;
  S.busy.add(key);
  setBusyButtons(id, wire, true);
  try {
    const r = await api('POST', expPath(id, 'actions', wire));
    toast(r && r.message ? r.message : `${ACTION_LABEL[action]}: done`, 'ok');
  } catch (e) {
    toast(`${ACTION_LABEL[action]} ${name}: ${e.message}`, 'err');
  } finally {
    S.busy.delete(key);
    setBusyButtons(id, wire, false);
    refresh(false);
    if (S.selected === id) reloadDrawer();
  }
}

function setBusyButtons(id, action, busy) {
  const sel = `[data-act="${action}"]`;
  const entry = S.cards.get(id);
  if (entry) for (const b of entry.el.querySelectorAll(sel)) b.disabled = busy;
  if (S.selected === id) for (const b of $('#drawer').querySelectorAll(sel)) b.disabled = busy;
}

const BULK_PARALLEL = 4; // requests in flight at once (the server handles four at a time)

/** One action on many experiments: one confirmation naming how many (for delete and
 *  terminate), the requests through the same per-experiment endpoint, then one toast. */
export async function doBulk(ids, action) {
  if (!ids.length) return;
  const n = ids.length;
  const what = `${n} experiment${n === 1 ? '' : 's'}`;
  if (action === 'delete' && !(await confirmDialog(`Delete ${what}?`,
    `This removes ${n === 1 ? 'its directory' : `the ${n} directories`} with all runs, metrics, logs and checkpoints. It cannot be undone.`,
    `Delete ${n}`))) return;
  if (action === 'terminate' && !(await confirmDialog(`Terminate ${what}?`,
    'Each process group gets SIGTERM, then SIGKILL; the runs are marked Error "terminated".',
    `Terminate ${n}`))) return;
  const queue = ids.slice();
  const failed = [];
  let done = 0;
  const worker = async () => {
    while (queue.length) {
      const id = queue.shift();
      const key = `${id}:${action}`;
      if (S.busy.has(key)) continue;
      S.busy.add(key);
      try {
        await api('POST', expPath(id, 'actions', action));
        done++;
      } catch (e) {
        const s = S.exps.get(id);
        failed.push(`${s ? s.name : id}: ${e.message}`);
      } finally {
        S.busy.delete(key);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(BULK_PARALLEL, n) }, worker));
  if (done) toast(`${ACTION_LABEL[action]}: ${done} of ${n} done`, 'ok');
  if (failed.length) toast(`${ACTION_LABEL[action]} failed for ${failed.length}: ${failed.slice(0, 3).join('; ')}${failed.length > 3 ? '; …' : ''}`, 'err');
  refresh(false);
  if (S.selected && ids.includes(S.selected)) reloadDrawer();
}
