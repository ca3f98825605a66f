"""The Pythonic API: the seed framework's ``Experiment`` over the C ABI (see ``_ffi.py``).

The concerns live in their own modules: value packing (``_values``), rows and tables
(``_rows``, with the hot path), reading back (``_readback``), GPU selection (``_gpus``), handle
lifetime (``_handle``) and marking runs at exit (``_exit``); this module is the ``Experiment``.
"""

import ctypes
import json
import logging
import os
import shlex
import sys
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path

from . import _ffi
from ._errors import InvalidStateError, shown
from ._exit import _describe, _track
from ._ffi import lib
from ._gpus import _export_gpus, _gpu_list, pick_gpus
from ._handle import Handle
from ._params import params_json
from ._rows import Table, _Rows

__all__ = ["Experiment", "Table", "LogHandler", "pick_gpus", "ENV_EXPERIMENT_DIR", "ENV_RUN_ID"]

#: Set by the scheduler for the jobs it launches: the experiment directory to attach to.
ENV_EXPERIMENT_DIR = "EXPMAN_EXPERIMENT_DIR"
#: Set by the scheduler for the jobs it launches: the run to attach to.
ENV_RUN_ID = "EXPMAN_RUN_ID"

_byref = ctypes.byref
_c_void_p = ctypes.c_void_p


def _text(value, what):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = shlex.join(str(v) for v in value)
    return _ffi.encode(value, what)


class Experiment(_Rows, Handle):
    """An experiment directory and the run this process works on (the seed's API).

    ``Experiment(name, command, base_dir, tags=None, gpu_ids=None, description="")`` creates
    ``<base_dir>/<name>_<date>__<time>/`` with run ``run_0001`` marked Running. Log rows with
    ``upd_row(**fields)`` + ``save_row()``; read them back with ``load_metrics_df()`` or
    ``load_metrics_dict()``.

    A script launched by the scheduler (``EXPMAN_EXPERIMENT_DIR`` and ``EXPMAN_RUN_ID`` set)
    attaches to the scheduler's run instead of creating one, and leaves its status to the
    scheduler.

    Hyperparameters: ``params={"lr": 0.01, "optimizer": {"name": "adam"}}`` records them in
    ``config.json`` (nested dicts flattened with dots: ``optimizer.name``) and as the run's
    own; ``log_params(...)`` records more later, ``params`` reads them back. Parameters in the
    ``EXPMAN_PARAMS`` environment variable (a JSON object; the scheduler sets it for its jobs)
    are recorded by themselves, ``params=`` winning for a name in both; when attaching to the
    scheduler's run they only fill names ``config.json`` lacks.

    The run's log, ``logs/<run_id>.log``: a run created here (not attached) gets this
    process's stdout and stderr teed into it at the file-descriptor level, so ``print``, C
    extensions and subprocesses all count, while the terminal still shows everything. The
    capture stops at ``close()`` or at exit, once everything printed before (an uncaught
    exception's traceback included) is in the log; ``capture_output=False`` turns it off. One
    experiment captures at a time: a later one takes over. (A job of ``EXP run`` has its output
    in its log already.) ``add_log_handler()`` sends ``logging`` records to
    ``logs/experiment.log`` too, on request.

    System metrics: a run created here (not attached) is sampled every 10 seconds by a
    background thread of the library, one row per sample in the run's table ``system``
    (``metrics/system.csv``, read it with ``exp.table("system").load_df()``): CPU percent and
    resident memory of this process and its children, the host's available memory, disk I/O,
    and for each GPU in ``CUDA_VISIBLE_DEVICES`` its utilisation, memory, power and
    temperature. ``system_metrics=30`` samples every 30 seconds, ``system_metrics=False``
    not at all. It stops at ``close()`` or at exit. (A job of ``EXP run`` is sampled by its
    supervisor; attaching to it starts no second sampler.)

    The run's status: ``with Experiment(...) as exp:`` marks it Finished at the end of the
    block, or Error with the exception's text. Without ``with`` and without ``set_finished()``,
    it is marked when the interpreter exits: Error if an uncaught exception ends the program,
    else Finished. Thread-safe: the library serialises calls on one experiment.
    """

    def __init__(self, name, command, base_dir, tags=None, gpu_ids=None, description="",
                 capture_output=True, params=None, system_metrics=True):
        interval = _system_metrics_interval(system_metrics)
        if tags is None:
            tags = []
        elif isinstance(tags, str):
            tags = [tags]
        tag_bytes = [_ffi.encode(t, "tag") for t in tags]
        gpus = _gpu_list(gpu_ids)
        tag_array = (ctypes.c_char_p * len(tag_bytes))(*tag_bytes)
        gpu_array = (ctypes.c_uint32 * len(gpus))(*gpus)
        params_text = None if params is None else params_json(params).encode("utf-8")
        out = _c_void_p()
        _ffi.check(
            lib.expman_experiment_create_with_params(
                _ffi.encode(name, "name"),
                _text(command, "command"),
                _ffi.encode(base_dir, "base_dir"),
                tag_array,
                len(tag_bytes),
                _text(description, "description"),
                gpu_array,
                len(gpus),
                params_text,
                _byref(out),
            )
        )
        # The library attaches instead when the scheduler's variables are set, and says so.
        self._adopt(out.value)
        _export_gpus(gpus)
        if capture_output and self._owned:
            self._start_capture()
        if interval and self._owned:
            # After _export_gpus: the sampler reads CUDA_VISIBLE_DEVICES once, at its start.
            self._start_system_metrics(interval)

    @classmethod
    def open(cls, path, capture_output=True, system_metrics=True):
        """Starts the next run (``run_0002``, ...) in the existing experiment directory
        ``path``, marked Running in this process: for a resume or a retry. Its output is
        captured into its log and its system metrics sampled as for a new experiment
        (``capture_output=False``, ``system_metrics=False``: not)."""
        interval = _system_metrics_interval(system_metrics)
        out = _c_void_p()
        _ffi.check(lib.expman_experiment_open(_ffi.encode(path, "path"), _byref(out)))
        exp = cls.__new__(cls)
        exp._adopt(out.value)
        if capture_output:
            exp._start_capture()
        if interval:
            exp._start_system_metrics(interval)
        return exp

    @classmethod
    def attach(cls, path, run_id):
        """Attaches to the existing run ``run_id`` of the experiment in ``path`` (as a job
        launched by the scheduler does): logs into its tables, leaves its status alone."""
        out = _c_void_p()
        _ffi.check(
            lib.expman_experiment_attach(
                _ffi.encode(path, "path"), _ffi.encode(run_id, "run_id"), _byref(out)
            )
        )
        exp = cls.__new__(cls)
        exp._adopt(out.value)
        return exp

    def _adopt(self, ptr):
        self._ptr = ptr
        self._tables = {}
        self._owned = False
        self._capturing = False
        self._sampling = False
        self._log_handlers = []
        self.current_run_id = _ffi.decode(lib.expman_experiment_run_id(ptr))
        self._dir = Path(os.fsdecode(lib.expman_experiment_dir(ptr)))
        self._name = _ffi.decode(lib.expman_experiment_name(ptr))
        table = _c_void_p()
        attached = ctypes.c_bool()
        status = lib.expman_experiment_metrics(ptr, _byref(table)) or lib.expman_experiment_attached(
            ptr, _byref(attached)
        )
        if status:
            err = _ffi.error(status)
            self.close()
            raise err
        # A run attached to (the scheduler's) keeps its status with its creator.
        self._owned = not attached.value
        # A child forked inside `with Experiment(...)` leaves the block too: only the process
        # that made the run may end it there.
        self._owner_pid = os.getpid()
        self._init_rows(table.value)
        if self._owned:
            _track(self)

    def _owner(self):
        return self

    # -- identity --------------------------------------------------------------------------

    @property
    def dir(self):
        """The experiment directory (a ``Path``)."""
        return self._dir

    @property
    def name(self):
        """The experiment's name."""
        return self._name

    @property
    def run_id(self):
        """The run this process works on, such as ``run_0001`` (same as ``current_run_id``)."""
        return self.current_run_id

    @property
    def attached(self):
        """Whether this handle attached to a run created by someone else (the scheduler)."""
        return not self._owned

    @property
    def log_path(self):
        """The run's log, ``<dir>/logs/<run_id>.log`` (its captured output)."""
        return self._dir / "logs" / f"{self.current_run_id}.log"

    @property
    def metrics_path(self):
        """The run's metrics file, ``<dir>/metrics/<run_id>.csv``."""
        return self._dir / "metrics" / f"{self.current_run_id}.csv"

    def __repr__(self):
        return f"<expman.Experiment {self._name!r} {self.current_run_id} in {str(self._dir)!r}>"

    # -- parameters ------------------------------------------------------------------------

    def log_params(self, params=None, /, **kw):
        """Records hyperparameters: ``log_params({"lr": 0.01})``, ``log_params(lr=0.01)`` or
        both (keywords win). Values are int, float, bool, str or numpy scalars; nested dicts are
        flattened with dots (``{"optimizer": {"lr": 0.1}}`` records ``optimizer.lr``).

        They are merged into ``config.json`` ``"params"`` (other names keep their values) and
        into this run's own record in ``status.json`` (kept in its ``history`` once later runs
        start), both rewritten atomically. Everything is checked first: a bad name or value
        raises (``InvalidNameError``, ``InvalidValueError``, ``TypeError``) naming the
        parameter, and nothing is written."""
        merged = {} if params is None else params
        if kw:
            if not isinstance(merged, Mapping):
                params_json(merged)  # raises the TypeError naming what was passed
            merged = {**merged, **kw}
        text = params_json(merged)
        if text == "{}":
            return
        self._check_open()
        _ffi.check(lib.expman_experiment_log_params_json(self._ptr, text.encode("utf-8")))

    @property
    def params(self):
        """The run's parameters as a dict of flattened names to values (ints stay ints,
        floats floats): ``config.json``'s, overridden by what this run recorded as its own."""
        self._check_open()
        out = _c_void_p()
        _ffi.check(lib.expman_experiment_params_json(self._ptr, _byref(out)))
        try:
            text = ctypes.string_at(out.value)
        finally:
            lib.expman_string_free(out)
        return json.loads(text)

    # -- rows ------------------------------------------------------------------------------

    def log_metrics(self, metrics, step=None):
        """The seed's older call: writes ``metrics`` (a dict) as one row, with ``step`` as a
        field when given. One call is one row, also with other threads logging at the same
        time; a row the library refuses (a value that does not fit, a bad name) is dropped
        with the error, so the next call is not refused for it."""
        if not isinstance(metrics, Mapping):
            raise TypeError(f"log_metrics takes a dict of fields, got {type(metrics).__name__}")
        for key in metrics:
            if type(key) is not str:
                raise TypeError(f"field names must be str, got {shown(key)}")
        if step is None:
            fields = metrics
        else:
            fields = {"step": step, **metrics}  # `step` first in a new table's header
            fields["step"] = step  # the argument wins over a "step" key in the dict
        with self._lock:
            self.upd_row(**fields)
            try:
                self.save_row()
            except BaseException:
                self.clear_row()
                raise

    def table(self, name):
        """The named table ``metrics/<name>.csv`` (for example ``progress``), created on its
        first saved row."""
        table = self._tables.get(name)
        if table is None:
            self._check_open()
            out = _c_void_p()
            _ffi.check(
                lib.expman_experiment_table(
                    self._ptr, _ffi.encode(name, "table name"), _byref(out)
                )
            )
            table = self._tables[name] = Table(self, name, out.value)
        return table

    def load_metrics_df(self):
        """This run's metrics as a pandas DataFrame, typed as ``pandas.read_csv`` would type
        the file: numbers numeric (int64 without empty cells, float64 with NaN where cells are
        empty), booleans bool, text as strings.

        With pyarrow installed (and the library built with its default ``arrow`` feature) the
        library parses the file straight into Arrow buffers on all cores and pandas converts
        them (see ``expman.arrow.to_pandas``); without pyarrow the same parser hands each
        column over as one buffer that numpy wraps, for the same DataFrame. Either way it
        equals ``pandas.read_csv(path)``'s (text that read_csv reads as NA, such as ``NA`` or
        ``nan``, is NaN here too) and takes less time."""
        return self._load_df(None)

    def load_metrics_arrow(self):
        """This run's metrics as a ``pyarrow.Table``: int64, double (NaN and infinities
        included), bool and string columns, null where every cell is empty; empty cells are
        nulls. Zero-copy from the library (the Arrow C stream interface); needs pyarrow."""
        return self._load_arrow(None)

    def load_metrics_dict(self):
        """This run's metrics as a list of dicts, one per row, ``timestamp`` and ``run_id``
        included; values typed by their column (int, float, bool, str), empty cells ``None``.
        Built from whole columns (``.tolist()`` and ``zip``), so faster than
        ``csv.DictReader``, which only splits the text."""
        return self._load_dicts(None)

    def load_table(self, name):
        """Another table of this experiment (a named one, or another run's such as
        ``run_0001``) as a list of dicts."""
        return self._load_dicts(name)

    # -- status and logs -------------------------------------------------------------------

    def set_running(self, pid=None):
        """Marks the run Running in process ``pid`` (default: this process)."""
        self._check_open()
        _ffi.check(lib.expman_experiment_set_running(self._ptr, os.getpid() if pid is None else pid))

    def set_finished(self):
        """Marks the run Finished."""
        self._check_open()
        _ffi.check(lib.expman_experiment_set_finished(self._ptr))

    def set_error(self, message):
        """Marks the run Error with ``message``."""
        self._check_open()
        _ffi.check(lib.expman_experiment_set_error(self._ptr, _ffi.encode(str(message), "message")))

    def append_log(self, message):
        """Appends a timestamped line to ``logs/experiment.log``."""
        self._check_open()
        _ffi.check(
            lib.expman_experiment_append_log(self._ptr, _ffi.encode(str(message), "message"))
        )

    def add_log_handler(self, logger=None, level=logging.INFO, fmt="%(levelname)s %(name)s: %(message)s"):
        """Sends ``logging`` records of ``logger`` (default: the root logger) at ``level`` and
        above to ``logs/experiment.log`` through ``append_log``, and returns the handler. Only
        on request: nothing is installed otherwise. ``close()`` removes it again."""
        handler = LogHandler(self, level=level)
        handler.setFormatter(logging.Formatter(fmt))
        target = logging.getLogger() if logger is None else (
            logging.getLogger(logger) if isinstance(logger, str) else logger
        )
        target.addHandler(handler)
        if target.level == logging.NOTSET or target.level > level:
            # A root logger at its default WARNING would drop the INFO records asked for.
            target.setLevel(level)
        self._log_handlers.append((target, handler))
        return handler

    def state(self):
        """The run's state: ``"Pending"``, ``"Running"``, ``"Finished"`` or ``"Error"`` (a
        Running run whose process is gone reads as ``"Error"``)."""
        self._check_open()
        out = ctypes.c_int32()
        _ffi.check(lib.expman_experiment_state(self._ptr, ctypes.byref(out)))
        return _ffi.STATE_NAMES[out.value]

    def status(self):
        """``status.json`` as a dict (``status``: Pending, Running, Finished or Error), as the
        library reads it.

        Raises ``CorruptError`` naming the file when it is not what expman wrote (damaged, or
        written by something else), ``IoError`` when it cannot be read."""
        self._check_open()
        out = _c_void_p()
        _ffi.check(lib.expman_experiment_status_json(self._ptr, _byref(out)))
        try:
            text = ctypes.string_at(out.value)
        finally:
            lib.expman_string_free(out)
        return json.loads(text)

    def set_sync(self, mode, interval=None):
        """How hard ``save_row`` works to keep rows through a power loss: ``"write_through"``
        (the default: rows survive a killed process), ``"every_row"`` (fsync each row), or
        ``"interval"`` (fsync at most every ``interval`` seconds)."""
        modes = {
            "write_through": _ffi.SYNC_WRITE_THROUGH,
            "every_row": _ffi.SYNC_EVERY_ROW,
            "interval": _ffi.SYNC_INTERVAL,
        }
        if mode not in modes:
            raise ValueError(f"sync mode must be one of {sorted(modes)}, got {shown(mode)}")
        interval_ms = 0
        if mode == "interval":
            if interval is None or interval < 0:
                raise ValueError("sync mode 'interval' needs interval=<seconds> >= 0")
            interval_ms = int(interval * 1000)
        self._check_open()
        _ffi.check(lib.expman_experiment_set_sync(self._ptr, modes[mode], interval_ms))

    # -- life cycle ------------------------------------------------------------------------

    def _check_open(self):
        if self._ptr is None:
            raise InvalidStateError(
                f"experiment {self._name!r} ({self.current_run_id}) was closed; to log into "
                f"or end this run, Experiment.attach({str(self._dir)!r}, "
                f"{self.current_run_id!r}); Experiment.open(path) starts a new run"
            )

    def _start_capture(self):
        """Tees fds 1 and 2 into the run's log (see the class documentation)."""
        _flush_std_streams()  # what Python buffered so far was printed before the run
        _ffi.check(lib.expman_experiment_capture_output(self._ptr))
        self._capturing = True

    def _start_system_metrics(self, interval):
        """Samples this process tree into the ``system`` table (see the class
        documentation)."""
        _ffi.check(lib.expman_experiment_start_system_metrics(self._ptr, interval))
        self._sampling = True

    def stop_system_metrics(self):
        """Stops sampling system metrics into the ``system`` table (returns at once: the
        sampler thread is woken, not waited out). ``close()`` does it too."""
        if self._ptr is not None and self._sampling:
            self._sampling = False
            _ffi.check(lib.expman_experiment_stop_system_metrics(self._ptr))

    def close(self):
        """Releases the library handle (and its tables), stops the system metrics sampler and
        the output capture once everything printed before is in the log, and removes the logging handler installed by
        ``add_log_handler``. Saved rows are already in the files; the status is left as it is.
        Called by the garbage collector too."""
        for target, handler in getattr(self, "_log_handlers", ()):
            target.removeHandler(handler)
        self._log_handlers = []
        if self._ptr is None:
            return
        if getattr(self, "_sampling", False):
            self._sampling = False
            lib.expman_experiment_stop_system_metrics(self._ptr)  # never raises from close
        self._t = None
        for table in self._tables.values():
            table._t = None
        if getattr(self, "_capturing", False):
            self._capturing = False
            _flush_std_streams()
        super().close()

    def _free(self, ptr):
        lib.expman_experiment_free(ptr)

    def __exit__(self, exc_type, exc, tb):
        if not self._owned or self._ptr is None or os.getpid() != self._owner_pid:
            return False
        try:
            if exc_type is None or (
                issubclass(exc_type, SystemExit) and exc.code in (None, 0)
            ):
                self.set_finished()
            else:
                self.set_error(_describe(exc_type, exc))
        except Exception as e:
            if exc_type is None:
                raise
            # Never hide the exception that ended the block behind our own.
            warnings.warn(f"expman could not mark the run Error: {e}", RuntimeWarning)
        return False


def _system_metrics_interval(setting):
    """The sampling interval in seconds for ``system_metrics=``: True is every 10 seconds,
    False or None is off (0.0), a positive number is that many seconds."""
    if setting is True:
        return 10.0
    if setting is False or setting is None:
        return 0.0
    if isinstance(setting, (int, float)) and not isinstance(setting, bool):
        seconds = float(setting)
        if seconds >= 0.01 and seconds != float("inf"):
            return seconds
        raise ValueError(
            f"system_metrics must be True, False or an interval in seconds of at least 0.01, "
            f"got {shown(setting)}"
        )
    raise TypeError(
        f"system_metrics must be True, False or an interval in seconds, got {shown(setting)}"
    )


def _flush_std_streams():
    """Pushes what ``sys.stdout``/``sys.stderr`` buffer into fds 1 and 2 (before a capture
    starts or stops). Never raises: at interpreter shutdown the streams may be gone."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


class LogHandler(logging.Handler):
    """A ``logging`` handler writing each record as a line of the experiment's
    ``logs/experiment.log`` (``append_log``: timestamped, with the run id). Install it with
    ``Experiment.add_log_handler()``."""

    def __init__(self, experiment, level=logging.NOTSET):
        super().__init__(level)
        self._exp = weakref.ref(experiment)  # never keeps the experiment alive

    def emit(self, record):
        exp = self._exp()
        if exp is None or exp._ptr is None:
            return
        try:
            exp.append_log(self.format(record))
        except Exception:
            self.handleError(record)
