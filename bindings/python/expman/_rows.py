"""Rows and tables: ``upd_row``/``save_row`` over one table handle, and reading tables back.

Hot path: ``upd_row`` keeps the keyword dict it was given (no copy) and the tuple of its value
types; ``save_row`` makes exactly one call into the library. For each row shape (field names and
value types) it caches the field ids (packed ``uint32`` bytes) and a ``struct.Struct``; a row of
floats is then one ``struct.pack`` plus ``expman_table_save_row_f64``, and a row of numbers,
booleans and ``None`` one ``struct.pack`` of ``expman_value`` records plus
``expman_table_save_row_values``. The ``bytes`` objects go to C as pointers, without a copy.
Only rows with strings build a ctypes array.

Where the time goes (``benches/python_bench.py --profile`` prints it): the row's type check is
one ``tuple(map(type, ...))`` compared with the last row's (the set of accepted types is
consulted only when the shape changes), and the two hot calls are made through function
objects without ``argtypes``, so ctypes converts their arguments in C instead of calling one
``from_param`` per argument in Python (a third of the binding's cost per row before). That is
safe because every argument they get is a ctypes instance or ``bytes``, never a bare ``int``
(which ctypes would pass as a C ``int``).
"""

import ctypes
import itertools
import struct
import threading
from array import array

from . import _ffi
from ._errors import InvalidStateError, IoError, UnsupportedError, shown
from ._ffi import KIND_FLOAT, KIND_STR, ExpmanValue, lib
from ._readback import _Metrics, _pandas_missing, read_columns
from ._values import (
    _ACCEPTED,
    _CELL_FORMATS,
    _KINDS,
    _PACKED_LAYOUT_OK,
    _fill_cell,
    _reject_values,
)

__all__ = ["Table"]

# Bound once: the hot path looks these up as globals, never through attribute access. The two
# save functions without argtypes (see the module documentation).
_save_f64 = _ffi.unchecked("expman_table_save_row_f64")
_save_values = _ffi.unchecked("expman_table_save_row_values")
_clear_row = lib.expman_table_clear_row
_field_id = lib.expman_table_field_id
_chain = itertools.chain.from_iterable
_byref = ctypes.byref
_c_void_p = ctypes.c_void_p

# Plan modes.
_F64, _PACKED, _GENERIC = 0, 1, 2
_MAX_PLANS = 256  # row shapes cached per table; a program with more just rebuilds plans


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
        self._types = None  # the value types of _row when one upd_row made it, else None
        self._plans = {}
        self._last = ((), (), None, None, None, None, None)
        self._ids = {}
        # Taken by save_row (and by log_metrics around its whole row, hence re-entrant): two
        # threads never save the same pending row, and one log_metrics call is one row
        # whatever other threads do.
        self._lock = threading.RLock()

    def upd_row(self, **fields):
        """Sets fields of the pending row (later values for the same field win)."""
        if self._row:
            if not _ACCEPTED.issuperset(map(type, fields.values())):
                _reject_values(fields)
            self._row.update(fields)
            self._types = None  # save_row works them out for the merged row
            return
        types = tuple(map(type, fields.values()))
        # The same types as the last saved row (compared by identity, element by element) are
        # accepted types; only a new shape needs the set.
        if types != self._last[1] and not _ACCEPTED.issuperset(types):
            _reject_values(fields)
        # The kwargs dict is ours alone: keep it instead of copying it.
        self._row = fields
        self._types = types

    def save_row(self):
        """Appends the pending row to the table (one line, one library call) and clears it.

        When this returns, the row is in the file (in the kernel: it survives this process
        being killed). An empty pending row writes nothing. If it raises, the row stays
        pending: retry, change fields with ``upd_row``, or drop it with ``clear_row()``
        (a Ctrl-C that lands as the row is written leaves nothing pending, so the row is not
        written twice). Threads share the pending row; for rows from several threads use
        ``log_metrics``, one call per row.
        """
        with self._lock:
            row = self._row
            if not row:
                return
            keys = tuple(row)
            types = self._types or tuple(map(type, row.values()))
            # Cleared before the library call: a KeyboardInterrupt raised as the call returns
            # must not leave a written row pending, to be written again with the next one.
            self._row = {}
            self._types = None
            try:
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
                        self._check_generic(row, kinds)  # finds the field, raises OverflowError
                        raise
                    status = _save_values(self._t, ids, data, n)
                else:
                    status = self._save_generic(row, ids, kinds, n)
                if status:
                    self._failed(status)
            except BaseException as e:
                if not isinstance(e, KeyboardInterrupt) and not self._row:
                    self._row, self._types = row, types  # for a retry, as documented
                raise

    def clear_row(self):
        """Drops the pending row without saving it."""
        self._row = {}
        self._types = None

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

    def _check_generic(self, row, kinds):
        arr = (ExpmanValue * len(kinds))()
        for cell, kind, (name, value) in zip(arr, kinds, row.items()):
            _fill_cell(cell, kind, name, value, [])

    def _save_generic(self, row, ids, kinds, n):
        arr = (ExpmanValue * n.value)()
        keep = []
        for cell, kind, (name, value) in zip(arr, kinds, row.items()):
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

    def _arrow_or_empty(self, table):
        """The table (``None``: the run's own) as a pyarrow.Table, or, for a table never
        written, the library's empty table as a _Metrics (the library decides what is empty)."""
        from . import arrow

        self._owner()._check_open()
        try:
            return arrow.read_table(self._table_path(table))
        except IoError:
            metrics = self._load(table)  # raises what the library raises for this table
            if metrics.n_rows:  # written in between: read it again
                metrics.free()
                return arrow.read_table(self._table_path(table))
            return metrics

    def _load_arrow(self, table):
        """Reads a table back (``None``: the run's own) as a pyarrow.Table."""
        from . import arrow

        pa = arrow._pyarrow()
        loaded = self._arrow_or_empty(table)
        if isinstance(loaded, _Metrics):
            names = loaded.names
            loaded.free()
            empty = pa.array([], pa.string())
            return pa.table({name: empty for name in names})
        return loaded

    def _load_df(self, table):
        """A table as a DataFrame: through Arrow when pyarrow is there, else from the
        library's column buffers; both type the columns as pandas.read_csv would."""
        from . import arrow

        try:
            import pandas  # noqa: F401
        except ImportError:
            raise _pandas_missing() from None
        if not arrow.available():
            return self._load_columns(table).to_dataframe()
        loaded = self._arrow_or_empty(table)
        if isinstance(loaded, _Metrics):
            return loaded.to_dataframe()
        return arrow.to_pandas(loaded)

    def _load_dicts(self, table):
        """A table as a list of dicts, one per row, typed values, None for empty cells."""
        return self._load_columns(table).to_dicts()

    def _load_columns(self, table):
        """Reads a table back (``None``: the run's own) as column buffers (a _Columns), or as
        a _Metrics (same conversions, cell by cell) for a table never written (the library's
        rule decides what it reads as) and from a library too old to have the column reader."""
        self._owner()._check_open()
        try:
            return read_columns(self._table_path(table))
        except (IoError, UnsupportedError):
            return self._load(table)  # raises what the library raises for this table

    def _load(self, table):
        """Reads a table back (``None``: the run's own) as a _Metrics to convert; a table never
        written reads as empty (the library's rule)."""
        exp = self._owner()
        exp._check_open()
        out = _c_void_p()
        name = None if table is None else _ffi.encode(table, "table name")
        _ffi.check(lib.expman_experiment_load_metrics(exp._ptr, name, _byref(out)))
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
        return self._load_dicts(self.name)

    def sync(self):
        """fsyncs the rows this table has written, whatever the sync policy."""
        self._exp._check_open()
        _ffi.check(lib.expman_table_sync(self._t))

    def __repr__(self):
        return f"<expman.Table {self.name!r} of {self._exp.current_run_id}>"
