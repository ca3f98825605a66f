"""Reading a table back: an ``expman_metrics`` handle converted to dicts or a DataFrame."""

import ctypes
import struct

from . import _ffi
from ._ffi import KIND_BOOL, KIND_FLOAT, KIND_INT, KIND_NULL, KIND_STR, ExpmanValue, lib
from ._handle import Handle

_byref = ctypes.byref
_c_void_p = ctypes.c_void_p


def _pandas_missing():
    return ImportError(
        "load_metrics_df() needs pandas: `pip install pandas` (or use load_metrics_dict(), "
        "which needs nothing else)"
    )


class _Metrics(Handle):
    """Owns an expman_metrics pointer; converts it to dicts or a DataFrame, then frees it."""

    def __init__(self, ptr):
        self._ptr = ptr
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

    def _free(self, ptr):
        lib.expman_metrics_free(ptr)

    free = Handle.close

    def cell(self, row, col, value):
        _ffi.check(lib.expman_metrics_get(self._ptr, row, col, _byref(value)))
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
        _ffi.check(lib.expman_metrics_column_f64(self._ptr, col, buf, self.n_rows))
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
            lib.expman_metrics_column_f64(self._ptr, col, floats.ctypes.data_as(_c_void_p), n)
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


class _Columns(Handle):
    """Owns an ``expman_columns`` pointer: a table as one buffer per column, wrapped by numpy
    without a Python object per number (``numpy.frombuffer``) and with one ``str`` per text
    cell made in bulk (one ``decode`` and one ``split`` per column).

    Numeric arrays are views of the library's buffers: each keeps this object, and so the
    buffers, alive (``_view``), and the finaliser frees them once the last view is gone."""

    def __init__(self, ptr):
        self._ptr = ptr
        try:
            self.n_cols = lib.expman_columns_n_columns(ptr)
            self.n_rows = lib.expman_columns_n_rows(ptr)
            self.names = [_ffi.decode(lib.expman_columns_name(ptr, c)) for c in range(self.n_cols)]
            self.types = [lib.expman_columns_type(ptr, c) for c in range(self.n_cols)]
        except BaseException:
            self.close()
            raise

    def _free(self, ptr):
        lib.expman_columns_free(ptr)

    def _view(self, address, dtype, np, n=None):
        """``n`` (default ``n_rows``) values of ``dtype`` at ``address`` as a read-only numpy
        array that keeps this object alive."""
        n = self.n_rows if n is None else n
        if not address or not n:
            return np.zeros(n, dtype)
        raw = (ctypes.c_char * (n * np.dtype(dtype).itemsize)).from_address(address)
        raw._owner = self  # the buffers live as long as any view of them
        view = np.frombuffer(raw, dtype)
        # The library's buffers are immutable: pandas copies before any write.
        view.flags.writeable = False
        return view

    def values(self, col, np):
        """Column ``col``'s values as a numpy array (bool, int64 or float64; NaN where a float
        cell is empty, 0 or False where an int or bool cell is)."""
        out = _c_void_p()
        _ffi.check(lib.expman_columns_values(self._ptr, col, _byref(out)))
        dtype = {KIND_BOOL: np.bool_, KIND_INT: np.int64, KIND_FLOAT: np.float64}[self.types[col]]
        return self._view(out.value, dtype, np)

    def valid(self, col, np):
        """Which cells of column ``col`` hold a value (numpy bool), or None when all do."""
        out = _c_void_p()
        _ffi.check(lib.expman_columns_valid(self._ptr, col, _byref(out)))
        return None if not out.value else self._view(out.value, np.bool_, np)

    def text(self, col, np, missing, na=frozenset()):
        """Column ``col``'s text as a numpy object array of ``str``, ``missing`` where a cell
        is empty or its text is in ``na``."""
        t = _ffi.ExpmanText()
        _ffi.check(lib.expman_columns_text(self._ptr, col, _byref(t)))
        values = _split_values(t)
        if t.codes:
            # A dictionary: each distinct value is one str, shared by all its cells (-1, an
            # empty cell, picks the `missing` appended last).
            table = np.empty(len(values) + 1, dtype=object)
            table[:-1] = values
            table[-1] = missing
            for i, value in enumerate(values):
                if value in na:
                    table[i] = missing
            return table[self._view(t.codes, np.int32, np)]
        out = np.empty(self.n_rows, dtype=object)
        out[:] = values
        valid = self.valid(col, np)
        if valid is not None:
            out[~valid] = missing
        if na:
            # Only short cells can be one of the NA words: look at those alone.
            lengths = np.diff(self._view(t.offsets, np.int64, np, t.n_values + 1)) - 1
            longest = max(len(word.encode()) for word in na)
            for i in np.flatnonzero(lengths <= longest).tolist():
                if out[i] in na:
                    out[i] = missing
        return out

    def dataframe_column(self, col, np):
        """Column ``col`` as ``pandas.read_csv`` types it: int64 (float64 with NaN when a cell
        is empty), float64, bool (object with NaN when a cell is empty), text as objects with
        NaN (pandas infers its string dtype) for empty cells and for the words read_csv reads
        as missing (``NA``, ``nan``, ``None``, ...), float64 NaN for a column of empty cells."""
        ty = self.types[col]
        if ty == KIND_NULL:
            return np.full(self.n_rows, np.nan)
        if ty == KIND_STR:
            return self.text(col, np, np.nan, _pandas_na_words())
        values = self.values(col, np)
        valid = self.valid(col, np)
        if valid is None or ty == KIND_FLOAT:  # floats carry NaN in their empty cells already
            return values
        if ty == KIND_INT:
            floats = values.astype(np.float64)
            floats[~valid] = np.nan
            return floats
        out = values.astype(object)
        out[~valid] = np.nan
        return out

    def _list(self, address, fmt, n=None):
        """``n`` (default ``n_rows``) values of struct format ``fmt`` at ``address`` as a list
        (one copy of the bytes; no numpy, so dicts need nothing but the standard library)."""
        n = self.n_rows if n is None else n
        size = struct.calcsize(fmt)
        raw = ctypes.string_at(address, n * size) if address and n else bytes(n * size)
        return memoryview(raw).cast(fmt).tolist()

    def python_column(self, col):
        """Column ``col`` as a list of Python values, None for empty cells."""
        ty = self.types[col]
        if ty == KIND_NULL:
            return [None] * self.n_rows
        if ty == KIND_STR:
            return self.text_list(col)
        out = _c_void_p()
        _ffi.check(lib.expman_columns_values(self._ptr, col, _byref(out)))
        values = self._list(out.value, {KIND_BOOL: "?", KIND_INT: "q", KIND_FLOAT: "d"}[ty])
        _ffi.check(lib.expman_columns_valid(self._ptr, col, _byref(out)))
        if not out.value:
            return values
        return [v if ok else None for v, ok in zip(values, self._list(out.value, "?"))]

    def text_list(self, col):
        """Column ``col``'s text as a list of ``str``, None where a cell is empty."""
        t = _ffi.ExpmanText()
        _ffi.check(lib.expman_columns_text(self._ptr, col, _byref(t)))
        values = _split_values(t)
        if t.codes:
            values.append(None)  # code -1, an empty cell
            return [values[code] for code in self._list(t.codes, "i")]
        out = _c_void_p()
        _ffi.check(lib.expman_columns_valid(self._ptr, col, _byref(out)))
        if not out.value:
            return values
        return [v if ok else None for v, ok in zip(values, self._list(out.value, "?"))]

    def to_dataframe(self):
        import numpy as np
        import pandas as pd

        data = {name: self.dataframe_column(c, np) for c, name in enumerate(self.names)}
        return pd.DataFrame(data, columns=self.names)

    def to_dicts(self):
        columns = [self.python_column(c) for c in range(self.n_cols)]
        names = self.names
        return [dict(zip(names, row)) for row in zip(*columns)]


def _pandas_na_words():
    """The texts ``pandas.read_csv`` reads as NaN by default (``na_values``)."""
    try:
        from pandas._libs.parsers import STR_NA_VALUES
    except ImportError:  # moved: the list of pandas 1 to 3
        STR_NA_VALUES = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                         "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None",
                         "n/a", "nan", "null"}
    return frozenset(STR_NA_VALUES)


def _split_values(t):
    """The values of an ``expman_text`` as a list of ``str``."""
    n = t.n_values
    if not n:
        return []
    data = ctypes.string_at(t.data, t.data_len)
    if t.sep >= 0:
        # One decode and one split for the whole column; the separator is a control
        # character no value holds. The buffer ends with one, after the last value.
        return data[:-1].decode("utf-8", "surrogateescape").split(chr(t.sep))
    # Every control character occurs in the text (rare): cut the values out one by one.
    offsets = memoryview(ctypes.string_at(t.offsets, (n + 1) * 8)).cast("q").tolist()
    return [
        data[a : b - 1].decode("utf-8", "surrogateescape") for a, b in zip(offsets, offsets[1:])
    ]


def read_columns(path):
    """The table at ``path`` as a ``_Columns``; raises UnsupportedError without the library's
    ``arrow`` feature and IoError for a missing file."""
    out = _c_void_p()
    _ffi.check(lib.expman_columns_read(_ffi.encode(path, "csv_path"), _byref(out)))
    return _Columns(out.value)
