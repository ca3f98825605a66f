"""The Pythonic API: the seed framework's ``Experiment`` over the C ABI (see ``_ffi.py``).

Hot path: ``upd_row`` only merges keyword arguments into a dict; ``save_row`` makes exactly one
call into the library. For each row shape (field names and value types) it caches the field
ids (packed ``uint32`` bytes) and a ``struct.Struct``; a row of floats is then one
``struct.pack`` plus ``expman_table_save_row_f64``, and a row of numbers, booleans and ``None``
one ``struct.pack`` of ``expman_value`` records plus ``expman_table_save_row_values``. The
``bytes`` objects go to C as pointers, without a copy. Only rows with strings build a ctypes
array.
"""

import atexit
import ctypes
import itertools
import json
import logging
import os
import shlex
import struct
import sys
import threading
import warnings
import weakref
from array import array
from collections.abc import Mapping
from pathlib import Path

from . import _ffi
from ._errors import CorruptError, InvalidStateError, IoError, UnsupportedError, shown
from ._ffi import KIND_BOOL, KIND_FLOAT, KIND_INT, KIND_NULL, KIND_STR, ExpmanValue, lib

__all__ = ["Experiment", "Table", "LogHandler", "ENV_EXPERIMENT_DIR", "ENV_RUN_ID"]

#: Set by the scheduler for the jobs it launches: the experiment directory to attach to.
ENV_EXPERIMENT_DIR = "EXPMAN_EXPERIMENT_DIR"
#: Set by the scheduler for the jobs it launches: the run to attach to.
ENV_RUN_ID = "EXPMAN_RUN_ID"

# Bound once: the hot path looks these up as globals, never through attribute access.
_save_f64 = lib.expman_table_save_row_f64
_save_values = lib.expman_table_save_row_values
_clear_row = lib.expman_table_clear_row
_field_id = lib.expman_table_field_id
_chain = itertools.chain.from_iterable
_byref = ctypes.byref
_c_void_p = ctypes.c_void_p

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# ---------------------------------------------------------------------------------------------
# Values


def _kind_of_type(tp):
    """The expman_value kind for values of type ``tp``, or None if expman cannot store them."""
    if issubclass(tp, bool):
        return KIND_BOOL
    if issubclass(tp, float):
        return KIND_FLOAT
    if issubclass(tp, int):
        return KIND_INT
    if issubclass(tp, str):
        return KIND_STR
    if tp is type(None):
        return KIND_NULL
    np = sys.modules.get("numpy")  # a numpy scalar means numpy is imported already
    if np is not None:
        if issubclass(tp, np.bool_):
            return KIND_BOOL
        if issubclass(tp, np.floating):
            return KIND_FLOAT
        if issubclass(tp, np.integer):
            return KIND_INT
    return None


# type -> kind, learned as types are seen (numpy scalar types join on first use).
_KINDS = {tp: _kind_of_type(tp) for tp in (float, int, bool, str, type(None))}
_ACCEPTED = set(_KINDS)  # the same keys, as a set for one C-level issuperset() per upd_row


def _reject_values(fields):
    """Learns new acceptable types in ``fields``; raises TypeError naming a field otherwise."""
    for name, value in fields.items():
        tp = type(value)
        if tp in _KINDS:
            continue
        kind = _kind_of_type(tp)
        if kind is None:
            raise TypeError(
                f"field {shown(name)}: expman cannot store a value of type {tp.__qualname__} "
                f"({value!r:.80}); use int, float, bool, str, None or a numpy scalar "
                f"(for an array, log a summary such as float(x.mean()))"
            )
        _KINDS[tp] = kind
        _ACCEPTED.add(tp)


# The layout of expman_value as struct formats: 40 bytes, kind at 0, i at 8, f at 16, s at 24,
# s_len at 32. Each format takes (kind, value); '?' stores a 0/1 byte at the low end of `i`.
_LITTLE = sys.byteorder == "little"
_CELL_FORMATS = {
    KIND_NULL: "i4x?31x",  # the value (None) packs as a 0 byte in `i`, which C ignores
    KIND_BOOL: "i4x?31x" if _LITTLE else "i4x7x?24x",
    KIND_INT: "i4xq24x",
    KIND_FLOAT: "i4x8xd16x",
}
_PACKED_LAYOUT_OK = (
    ctypes.sizeof(ExpmanValue) == 40
    and ExpmanValue.i.offset == 8
    and ExpmanValue.f.offset == 16
    and ExpmanValue.s.offset == 24
    and ExpmanValue.s_len.offset == 32
)

# Plan modes.
_F64, _PACKED, _GENERIC = 0, 1, 2
_MAX_PLANS = 256  # row shapes cached per table; a program with more just rebuilds plans


def _field_error(name, exc):
    return type(exc)(f"field {shown(name)}: {exc}")


def _fill_cell(cell, kind, name, value, keep):
    """Writes one value into an expman_value (the general path, used for rows with text)."""
    cell.kind = kind
    if kind == KIND_FLOAT:
        cell.f = float(value)
    elif kind == KIND_INT:
        i = int(value)
        if not _INT64_MIN <= i <= _INT64_MAX:
            raise OverflowError(
                f"field {shown(name)}: {i} does not fit in a 64-bit integer; log it as a float or "
                "a str"
            )
        cell.i = i
    elif kind == KIND_BOOL:
        cell.i = 1 if value else 0
    elif kind == KIND_STR:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"field {shown(name)}: text is not valid Unicode ({e})") from None
        keep.append(data)  # the bytes must outlive the call
        cell.s = ctypes.cast(data, _c_void_p).value
        cell.s_len = len(data)


# ---------------------------------------------------------------------------------------------
# Tables


class _Rows:
    """``upd_row``/``save_row`` over one table handle; shared by Experiment and Table."""

    # _t: the expman_table pointer (a c_void_p), None once the experiment is closed.
    # _row: the pending row, a dict in first-set order.
    # _plans: (names, types) -> (names, types, mode, ids bytes, pack, kinds, n)
    # _last: the plan used last.

    def _init_rows(self, table_ptr):
        # A c_void_p instance passes through ctypes without conversion.
        self._t = _c_void_p(table_ptr)
        self._row = {}
        self._plans = {}
        self._last = ((), (), None, None, None, None, None)
        self._ids = {}

    def upd_row(self, **fields):
        """Sets fields of the pending row (later values for the same field win)."""
        if not _ACCEPTED.issuperset(map(type, fields.values())):
            _reject_values(fields)
        if self._row:
            self._row.update(fields)
        else:
            # The kwargs dict is ours alone: keep it instead of copying it.
            self._row = fields

    def save_row(self):
        """Appends the pending row to the table (one line, one library call) and clears it.

        When this returns, the row is in the file (in the kernel: it survives this process
        being killed). An empty pending row writes nothing. If it raises, the row stays
        pending: retry, change fields with ``upd_row``, or drop it with ``clear_row()``.
        """
        row = self._row
        if not row:
            return
        keys = tuple(row)
        types = tuple(map(type, row.values()))
        plan = self._last
        # Rows in a loop have the same shape, and tuples of the same objects compare by
        # identity: checking the last plan is cheaper than hashing the signature.
        if keys != plan[0] or types != plan[1]:
            plan = self._plans.get((keys, types)) or self._plan(keys, types)
            self._last = plan
        _, _, mode, ids, pack, kinds, n = plan
        if mode == _F64:
            status = _save_f64(self._t, ids, pack(*row.values()), n)
        elif mode == _PACKED:
            try:
                data = pack(*_chain(zip(kinds, row.values())))
            except struct.error:
                self._check_generic(kinds)  # finds the field and raises OverflowError
                raise
            status = _save_values(self._t, ids, data, n)
        else:
            status = self._save_generic(ids, kinds, n)
        if status:
            self._failed(status)
        self._row = {}

    def clear_row(self):
        """Drops the pending row without saving it."""
        self._row = {}

    def _plan(self, names, types):
        kinds = tuple(_KINDS[tp] for tp in types)
        ids = array("I", [self._field(name) for name in names]).tobytes()
        n = len(names)
        if all(k == KIND_FLOAT for k in kinds):
            mode, pack = _F64, struct.Struct(f"={n}d").pack
        elif KIND_STR not in kinds and _PACKED_LAYOUT_OK:
            mode, pack = _PACKED, struct.Struct("=" + "".join(_CELL_FORMATS[k] for k in kinds)).pack
        else:
            mode, pack = _GENERIC, None
        plan = (names, types, mode, ids, pack, kinds, ctypes.c_size_t(n))
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        self._plans[(names, types)] = plan
        return plan

    def _field(self, name):
        """The library's id for field ``name`` (registered once per table)."""
        fid = self._ids.get(name)
        if fid is None:
            if type(name) is not str:
                raise TypeError(f"field names must be str, got {shown(name)}")
            out = ctypes.c_uint32()
            status = _field_id(self._t, _ffi.encode(name, "field name"), _byref(out))
            if status:
                self._failed(status, clear=False)
            fid = self._ids[name] = out.value
        return fid

    def _check_generic(self, kinds):
        arr = (ExpmanValue * len(kinds))()
        for cell, kind, (name, value) in zip(arr, kinds, self._row.items()):
            _fill_cell(cell, kind, name, value, [])

    def _save_generic(self, ids, kinds, n):
        arr = (ExpmanValue * n.value)()
        keep = []
        for cell, kind, (name, value) in zip(arr, kinds, self._row.items()):
            _fill_cell(cell, kind, name, value, keep)
        return _save_values(self._t, ids, arr, n)

    def _failed(self, status, clear=True):
        if self._t is None:
            raise InvalidStateError(
                "this experiment was closed; create or open a new Experiment to log more rows"
            )
        err = _ffi.error(status)
        if clear:
            # The library keeps a failed row pending; our own copy stays in self._row for a
            # retry, so drop the library's to keep the two from diverging.
            _clear_row(self._t)
        raise err

    def _table_path(self, table):
        exp = self._owner()
        return exp._dir / "metrics" / f"{exp.current_run_id if table is None else table}.csv"

    def _load_arrow(self, table):
        """Reads a table back (``None``: the run's own) as a pyarrow.Table."""
        from . import arrow

        pa = arrow._pyarrow()
        self._owner()._check_open()
        path = self._table_path(table)
        try:
            return arrow.read_table(path)
        except IoError:
            if path.exists():
                raise
            # No row saved yet: the file is created with the first one.
            empty = pa.array([], pa.string())
            return pa.table({"timestamp": empty, "run_id": empty})

    def _load_df(self, table):
        """A table as a DataFrame: through Arrow when pyarrow is there, else the plain reader;
        both type the columns as pandas.read_csv would."""
        from . import arrow

        if not arrow.available():
            return self._load(table).to_dataframe()
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise _pandas_missing() from None
        self._owner()._check_open()
        if not self._table_path(table).exists():
            return _EmptyMetrics().to_dataframe()
        return arrow.to_pandas(self._load_arrow(table))

    def _load(self, table):
        """Reads a table back (``None``: the run's own) as a _Metrics to convert."""
        exp = self._owner()
        exp._check_open()
        out = _c_void_p()
        name = None if table is None else _ffi.encode(table, "table name")
        status = lib.expman_experiment_load_metrics(exp._ptr, name, _byref(out))
        if status:
            err = _ffi.error(status)
            path = exp._dir / "metrics" / f"{exp.current_run_id if table is None else table}.csv"
            if isinstance(err, IoError) and not path.exists():
                # No row saved yet: the file is created with the first one.
                return _EmptyMetrics()
            raise err
        return _Metrics(out.value)


class Table(_Rows):
    """A named metrics table, ``metrics/<name>.csv``, whose rows carry the run's id.

    Get one with ``exp.table("progress")``; it has the same ``upd_row``/``save_row`` as the
    experiment, and ``load_df``/``load_dicts`` to read it back.
    """

    def __init__(self, experiment, name, table_ptr):
        self._exp = experiment  # keeps the experiment (and so the handle) alive
        self.name = name
        self._init_rows(table_ptr)

    def _owner(self):
        return self._exp

    def load_df(self):
        """The table as a pandas DataFrame (see ``Experiment.load_metrics_df``)."""
        return self._load_df(self.name)

    def load_arrow(self):
        """The table as a ``pyarrow.Table`` (see ``Experiment.load_metrics_arrow``)."""
        return self._load_arrow(self.name)

    def load_dicts(self):
        """The table as a list of dicts, one per row (see ``Experiment.load_metrics_dict``)."""
        return self._load(self.name).to_dicts()

    def sync(self):
        """fsyncs the rows this table has written, whatever the sync policy."""
        self._exp._check_open()
        _ffi.check(lib.expman_table_sync(self._t))

    def __repr__(self):
        return f"<expman.Table {self.name!r} of {self._exp.current_run_id}>"


# ---------------------------------------------------------------------------------------------
# Reading back


class _EmptyMetrics:
    """A table with no rows yet: the two fixed columns only."""

    def to_dicts(self):
        return []

    def to_dataframe(self):
        try:
            import pandas as pd
        except ImportError:
            raise _pandas_missing() from None
        return pd.DataFrame({"timestamp": [], "run_id": []}, dtype=str)


def _pandas_missing():
    return ImportError(
        "load_metrics_df() needs pandas: `pip install pandas` (or use load_metrics_dict(), "
        "which needs nothing)"
    )


class _Metrics:
    """Owns an expman_metrics pointer; converts it to dicts or a DataFrame, then frees it."""

    def __init__(self, ptr):
        self.ptr = ptr
        try:
            self.n_cols = lib.expman_metrics_n_columns(ptr)
            self.n_rows = lib.expman_metrics_n_rows(ptr)
            self.names = [
                _ffi.decode(lib.expman_metrics_column_name(ptr, c)) for c in range(self.n_cols)
            ]
            self.types = [lib.expman_metrics_column_type(ptr, c) for c in range(self.n_cols)]
        except BaseException:
            self.free()
            raise

    def free(self):
        ptr, self.ptr = self.ptr, None
        lib.expman_metrics_free(ptr)

    def cell(self, row, col, value):
        _ffi.check(lib.expman_metrics_get(self.ptr, row, col, _byref(value)))
        kind = value.kind
        if kind == KIND_FLOAT:
            return value.f
        if kind == KIND_INT:
            return value.i
        if kind == KIND_STR:
            return ctypes.string_at(value.s, value.s_len).decode("utf-8", "surrogateescape")
        if kind == KIND_BOOL:
            return value.i != 0
        return None

    def column_cells(self, col):
        value = ExpmanValue()
        return [self.cell(r, col, value) for r in range(self.n_rows)]

    def column_f64(self, col):
        """The column as a list of floats (numbers, 1.0/0.0, NaN for empty cells)."""
        buf = (ctypes.c_double * self.n_rows)()
        _ffi.check(lib.expman_metrics_column_f64(self.ptr, col, buf, self.n_rows))
        return buf

    def python_column(self, col):
        """One column as Python values: None for empty cells, exactly as stored."""
        ty = self.types[col]
        if ty == KIND_NULL:
            return [None] * self.n_rows
        if ty == KIND_STR:
            return self.column_cells(col)
        floats = self.column_f64(col)
        if ty == KIND_BOOL:
            return [None if x != x else x != 0.0 for x in floats]
        if ty == KIND_INT:
            out = []
            value = None
            for r, x in enumerate(floats):
                if x != x:
                    out.append(None)
                elif -(2.0**53) <= x <= 2.0**53:
                    out.append(int(x))
                else:  # beyond a double's exact range: ask for the integer itself
                    value = value or ExpmanValue()
                    out.append(self.cell(r, col, value))
            return out
        # Float: NaN means an empty cell or a NaN value; only those cells need a closer look.
        out = list(floats)
        value = None
        for r, x in enumerate(out):
            if x != x:
                value = value or ExpmanValue()
                out[r] = self.cell(r, col, value)
        return out

    def to_dicts(self):
        try:
            columns = [self.python_column(c) for c in range(self.n_cols)]
        finally:
            self.free()
        names = self.names
        return [dict(zip(names, row)) for row in zip(*columns)]

    def to_dataframe(self):
        try:
            import pandas as pd
        except ImportError:
            self.free()
            raise _pandas_missing() from None
        import numpy as np

        try:
            data = {}
            for c, name in enumerate(self.names):
                data[name] = self._numpy_column(c, np)
        finally:
            self.free()
        return pd.DataFrame(data, columns=self.names)

    def _numpy_column(self, col, np):
        """One column as pandas' read_csv would type it."""
        ty = self.types[col]
        n = self.n_rows
        if ty == KIND_NULL:
            return np.full(n, np.nan)
        if ty == KIND_STR:
            return [np.nan if v is None else v for v in self.column_cells(col)]
        floats = np.empty(n, dtype=np.float64)
        _ffi.check(
            lib.expman_metrics_column_f64(self.ptr, col, floats.ctypes.data_as(_c_void_p), n)
        )
        missing = np.isnan(floats)
        if ty == KIND_FLOAT:
            return floats
        if ty == KIND_BOOL:
            if missing.any():
                out = np.empty(n, dtype=object)
                out[:] = [np.nan if m else bool(x) for x, m in zip(floats, missing)]
                return out
            return floats != 0.0
        # Integers: int64 when no cell is empty (as read_csv), else float64 with NaN.
        if missing.any():
            return floats
        if n and np.abs(floats).max() > 2.0**53:
            value = ExpmanValue()
            return np.array([self.cell(r, col, value) for r in range(n)], dtype=np.int64)
        return floats.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Experiments


def _text(value, what):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = shlex.join(str(v) for v in value)
    return _ffi.encode(value, what)


def pick_gpus(count=1):
    """The ``count`` GPUs with the most free memory (NVML, or the inventory file named by
    ``EXPMAN_GPU_INVENTORY``), as a sorted list of indices. Raises ``InvalidStateError`` when
    there is no GPU inventory (no driver) or too few GPUs."""
    count = int(count)
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    out = (ctypes.c_uint32 * max(count, 1))()
    _ffi.check(lib.expman_gpu_pick(count, ctypes.cast(out, ctypes.c_void_p) if count else None))
    return list(out[:count])


def _gpu_list(gpu_ids):
    """Validates gpu_ids: None, an int, or a sequence of non-negative ints."""
    if gpu_ids is None:
        return []
    if isinstance(gpu_ids, str):
        if gpu_ids == "auto":
            if not _ffi.features() & _ffi.FEATURE_GPU:
                raise UnsupportedError(
                    "gpu_ids='auto' needs GPU discovery, which this build of expman lacks: "
                    "reinstall with the `gpu` feature (EXPMAN_FEATURES=gpu pip install "
                    "./bindings/python), or pass explicit ids such as gpu_ids=[0, 1]"
                )
            return pick_gpus(1)
        raise TypeError(f"gpu_ids must be a list of ints or 'auto', got {shown(gpu_ids)}")
    if isinstance(gpu_ids, int) and not isinstance(gpu_ids, bool):
        gpu_ids = [gpu_ids]
    ids = []
    for g in gpu_ids:
        if isinstance(g, bool) or not hasattr(g, "__index__"):
            raise TypeError(f"gpu_ids must be ints, got {shown(g)} in {shown(gpu_ids)}")
        g = g.__index__()
        if not 0 <= g < 2**32:
            raise ValueError(
                f"gpu_ids must be GPU indices (0, 1, ...), got {g} in {shown(gpu_ids)}"
            )
        ids.append(g)
    return ids


def _export_gpus(ids):
    """The seed's automatic GPU set-up: make only ``ids`` visible to CUDA in this process.

    Only when CUDA_VISIBLE_DEVICES is not set already (by the user or the scheduler), and it
    only helps if no CUDA library has initialised yet, so it runs when the Experiment is made.
    """
    if not ids or "CUDA_VISIBLE_DEVICES" in os.environ:
        return
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in ids)
    # The ids are the ones nvidia-smi and NVML show, which are in PCI bus order; CUDA's own
    # default order (fastest first) may differ.
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    torch = sys.modules.get("torch")
    try:
        initialised = torch is not None and torch.cuda.is_initialized()
    except Exception:  # an odd torch build: we only wanted to warn
        initialised = False
    if initialised:
        warnings.warn(
            f"expman set CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}, but torch "
            "had initialised CUDA already, so it has no effect in this process; create the "
            "Experiment before touching CUDA",
            RuntimeWarning,
            stacklevel=3,
        )


class Experiment(_Rows):
    """An experiment directory and the run this process works on (the seed's API).

    ``Experiment(name, command, base_dir, tags=None, gpu_ids=None, description="")`` creates
    ``<base_dir>/<name>_<date>__<time>/`` with run ``run_0001`` marked Running. Log rows with
    ``upd_row(**fields)`` + ``save_row()``; read them back with ``load_metrics_df()`` or
    ``load_metrics_dict()``.

    A script launched by the scheduler (``EXPMAN_EXPERIMENT_DIR`` and ``EXPMAN_RUN_ID`` set)
    attaches to the scheduler's run instead of creating one, and leaves its status to the
    scheduler.

    The run's log, ``logs/<run_id>.log``: a run created here (not attached) gets this
    process's stdout and stderr teed into it at the file-descriptor level, so ``print``, C
    extensions and subprocesses all count, while the terminal still shows everything. The
    capture stops at ``close()`` or at exit, once everything printed before (an uncaught
    exception's traceback included) is in the log; ``capture_output=False`` turns it off. One
    experiment captures at a time: a later one takes over. (A job of ``EXP run`` has its output
    in its log already.) ``add_log_handler()`` sends ``logging`` records to
    ``logs/experiment.log`` too, on request.

    The run's status: ``with Experiment(...) as exp:`` marks it Finished at the end of the
    block, or Error with the exception's text. Without ``with`` and without ``set_finished()``,
    it is marked when the interpreter exits: Error if an uncaught exception ends the program,
    else Finished. Thread-safe: the library serialises calls on one experiment.
    """

    def __init__(self, name, command, base_dir, tags=None, gpu_ids=None, description="",
                 capture_output=True):
        if tags is None:
            tags = []
        elif isinstance(tags, str):
            tags = [tags]
        tag_bytes = [_ffi.encode(t, "tag") for t in tags]
        gpus = _gpu_list(gpu_ids)
        attaching = ENV_EXPERIMENT_DIR in os.environ and ENV_RUN_ID in os.environ
        tag_array = (ctypes.c_char_p * len(tag_bytes))(*tag_bytes)
        gpu_array = (ctypes.c_uint32 * len(gpus))(*gpus)
        out = _c_void_p()
        _ffi.check(
            lib.expman_experiment_create(
                _ffi.encode(name, "name"),
                _text(command, "command"),
                _ffi.encode(base_dir, "base_dir"),
                tag_array,
                len(tag_bytes),
                _text(description, "description"),
                gpu_array,
                len(gpus),
                _byref(out),
            )
        )
        self._adopt(out.value, owned=not attaching)
        _export_gpus(gpus)
        if capture_output and not attaching:
            self._start_capture()

    @classmethod
    def open(cls, path, capture_output=True):
        """Starts the next run (``run_0002``, ...) in the existing experiment directory
        ``path``, marked Running in this process: for a resume or a retry. Its output is
        captured into its log as for a new experiment (``capture_output=False``: not)."""
        out = _c_void_p()
        _ffi.check(lib.expman_experiment_open(_ffi.encode(path, "path"), _byref(out)))
        exp = cls.__new__(cls)
        exp._adopt(out.value, owned=True)
        if capture_output:
            exp._start_capture()
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
        exp._adopt(out.value, owned=False)
        return exp

    def _adopt(self, ptr, owned):
        self._ptr = ptr
        self._tables = {}
        self._owned = owned
        self._capturing = False
        self._log_handlers = []
        self.current_run_id = _ffi.decode(lib.expman_experiment_run_id(ptr))
        self._dir = Path(os.fsdecode(lib.expman_experiment_dir(ptr)))
        self._name = _ffi.decode(lib.expman_experiment_name(ptr))
        table = _c_void_p()
        status = lib.expman_experiment_metrics(ptr, _byref(table))
        if status:
            err = _ffi.error(status)
            self.close()
            raise err
        self._init_rows(table.value)
        if owned:
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

    # -- rows ------------------------------------------------------------------------------

    def log_metrics(self, metrics, step=None):
        """The seed's older call: writes ``metrics`` (a dict) as one row, with ``step`` as a
        field when given."""
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
        self.upd_row(**fields)
        self.save_row()

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
        them (see ``expman.arrow.to_pandas``); without pyarrow a plain reader gives the same
        DataFrame, more slowly."""
        return self._load_df(None)

    def load_metrics_arrow(self):
        """This run's metrics as a ``pyarrow.Table``: int64, double (NaN and infinities
        included), bool and string columns, null where every cell is empty; empty cells are
        nulls. Zero-copy from the library (the Arrow C stream interface); needs pyarrow."""
        return self._load_arrow(None)

    def load_metrics_dict(self):
        """This run's metrics as a list of dicts, one per row, ``timestamp`` and ``run_id``
        included; empty cells are ``None``."""
        return self._load(None).to_dicts()

    def load_table(self, name):
        """Another table of this experiment (a named one, or another run's such as
        ``run_0001``) as a list of dicts."""
        return self._load(name).to_dicts()

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
        return ("Pending", "Running", "Finished", "Error")[out.value]

    def status(self):
        """``status.json`` as a dict (``status``: Pending, Running, Finished or Error).

        Raises ``CorruptError`` naming the file when it is not a JSON object (damaged, or
        written by something else), ``IoError`` when it cannot be read."""
        return _read_status(self._dir / "status.json")

    def set_sync(self, mode, interval=None):
        """How hard ``save_row`` works to keep rows through a power loss: ``"write_through"``
        (the default: rows survive a killed process), ``"every_row"`` (fsync each row), or
        ``"interval"`` (fsync at most every ``interval`` seconds)."""
        modes = {"write_through": 0, "every_row": 1, "interval": 2}
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
                f"experiment {self._name!r} ({self.current_run_id}) was closed; use "
                "Experiment.open(path) to start a new run"
            )

    def _start_capture(self):
        """Tees fds 1 and 2 into the run's log (see the class documentation)."""
        _flush_std_streams()  # what Python buffered so far was printed before the run
        _ffi.check(lib.expman_experiment_capture_output(self._ptr))
        self._capturing = True

    def close(self):
        """Releases the library handle (and its tables), stops the output capture once
        everything printed before is in the log, and removes the logging handler installed by
        ``add_log_handler``. Saved rows are already in the files; the status is left as it is.
        Called by the garbage collector too."""
        for target, handler in getattr(self, "_log_handlers", ()):
            target.removeHandler(handler)
        self._log_handlers = []
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr is None:
            return
        self._t = None
        for table in self._tables.values():
            table._t = None
        if getattr(self, "_capturing", False):
            self._capturing = False
            _flush_std_streams()
        lib.expman_experiment_free(ptr)

    def __del__(self):
        try:
            self.close()
        except Exception:  # never raise from a finaliser
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self._owned or self._ptr is None:
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


# ---------------------------------------------------------------------------------------------
# Marking runs at interpreter exit (the seed's example never calls set_finished)


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


def _read_status(path):
    """``status.json`` at ``path`` as a dict; a typed expman error naming the file otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise IoError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        status = json.loads(data)
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        line = f":{e.lineno}" if hasattr(e, "lineno") else ""
        raise CorruptError(
            f"{path}{line}: not valid expman JSON ({getattr(e, 'msg', e)}); restore it or "
            "delete the experiment"
        ) from None
    if not isinstance(status, dict):
        kinds = {type(None): "null", bool: "a boolean", list: "an array", str: "a string"}
        kind = kinds.get(type(status), "a number")
        raise CorruptError(
            f"{path}:1: not valid expman JSON ({kind}, not an object); restore it or delete "
            "the experiment"
        )
    return status


def _running(dir_path, run_id):
    """Whether ``run_id`` still shows Running (raises like ``_read_status``)."""
    path = os.path.join(dir_path, "status.json")
    if not os.path.exists(path):  # the experiment was deleted: nothing is left to mark
        return False
    status = _read_status(path)
    return status.get("status") == "Running" and status.get("run_id") == run_id


@atexit.register
def _mark_at_exit():
    """Ends every run this process created that still shows Running. Never raises: a run it
    cannot mark (its status.json damaged, say) is reported on stderr and the others are still
    marked."""
    with _tracked_lock:
        entries = list(_tracked.values())
        _tracked.clear()
    for pid, dir_path, run_id, ref in entries:
        if pid != os.getpid():  # inherited through fork: the parent's business
            continue
        try:
            if not _running(dir_path, run_id):
                continue
            exp = ref()
            if exp is None or exp._ptr is None:
                exp = Experiment.attach(dir_path, run_id)
            if _uncaught is None:
                exp.set_finished()
            else:
                exp.set_error(_uncaught)
        except Exception as e:  # at exit there is nobody left to raise to
            print(f"expman: could not mark {run_id} of {dir_path} at exit: {e}", file=sys.stderr)
