"""Marking runs at interpreter exit (the seed's example never calls set_finished): every run this
process created that still shows Running is marked Finished, or Error when an uncaught
exception ends the program."""

import atexit
import os
import sys
import threading
import weakref

from ._errors import NotFoundError


def _describe(exc_type, exc):
    text = str(exc)
    return f"{exc_type.__name__}: {text}" if text else exc_type.__name__


_tracked = {}  # id -> (pid, absolute dir, run id, weakref to the Experiment)
_tracked_lock = threading.Lock()
_uncaught = None  # "Type: message" of the exception ending the program, if any
_hook_installed = False


def _track(exp):
    global _hook_installed
    entry = (os.getpid(), os.path.abspath(exp.dir), exp.current_run_id, weakref.ref(exp))
    with _tracked_lock:
        _tracked[id(entry)] = entry
        if not _hook_installed:
            _hook_installed = True
            previous = sys.excepthook

            def excepthook(exc_type, exc, tb):
                global _uncaught
                _uncaught = _describe(exc_type, exc)
                previous(exc_type, exc, tb)

            sys.excepthook = excepthook


@atexit.register
def _mark_at_exit():
    """Ends every run this process created that still shows Running. Never raises: a run it
    cannot mark (its status.json damaged, say) is reported on stderr and the others are still
    marked."""
    from .experiment import Experiment  # imports this module: bound late

    with _tracked_lock:
        entries = list(_tracked.values())
        _tracked.clear()
    for pid, dir_path, run_id, ref in entries:
        if pid != os.getpid():  # inherited through fork: the parent's business
            continue
        try:
            exp = ref()
            if exp is None or exp._ptr is None:
                try:
                    exp = Experiment.attach(dir_path, run_id)
                except NotFoundError:  # the experiment was deleted: nothing is left to mark
                    continue
            status = exp.status()  # the library reads status.json
            if status.get("status") != "Running" or status.get("run_id") != run_id:
                continue
            if status.get("pid") not in (None, os.getpid()):
                continue  # set_running(pid) gave the run to another process: its end is its own
            if _uncaught is None:
                exp.set_finished()
            else:
                exp.set_error(_uncaught)
        except Exception as e:  # at exit there is nobody left to raise to
            print(f"expman: could not mark {run_id} of {dir_path} at exit: {e}", file=sys.stderr)
