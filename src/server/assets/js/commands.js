/* The commands one part of the page gives another: the board and the monitor open the drawer,
 * the drawer and the board open monitor windows, an action asks for a fresh poll and a drawer
 * reload. main.js binds each to the module that carries it out, so those modules need not
 * import each other (no import cycles, and each can be read on its own). */

const bound = {};

/** Binds commands by name (main.js, at start). */
export function bind(impls) {
  Object.assign(bound, impls);
}

function call(name, args) {
  const fn = bound[name];
  if (!fn) throw new Error(`the page's command ${name} is not bound (main.js binds it)`);
  return fn(...args);
}

/** Opens the drawer on experiment `id` (at `tab` if given). */
export const openDrawer = (...args) => call('openDrawer', args);
/** Reloads the open drawer's details. */
export const reloadDrawer = (...args) => call('reloadDrawer', args);
/** Opens a monitor window on log `file` of `id`; `latest`: it moves on to later runs' logs. */
export const followLog = (...args) => call('followLog', args);
/** Opens a monitor window on the current run's log of `id`. */
export const followLatest = (...args) => call('followLatest', args);
/** Polls the listing now (`full`: everything, not only changes). */
export const refresh = (...args) => call('refresh', args);
/** Opens the drawer's chart view with a set of runs of different experiments:
 *  `[{exp, run}, ...]`, the first one the drawer's own. */
export const openCompare = (...args) => call('openCompare', args);
/** Redraws the parallel coordinates (the table's rows or the brushes changed). */
export const renderParcoords = (...args) => call('renderParcoords', args);
/** Redraws the table and the board (a brush, the filter or the selection changed). */
export const renderViews = (...args) => call('renderViews', args);
/** The page's state changed: write it into the URL (`push`: a new history entry). */
export const stateChanged = (...args) => call('stateChanged', args);
