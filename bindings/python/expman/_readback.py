"""Reading a table back: an ``expman_metrics`` handle converted to dicts or a DataFrame."""

import ctypes

from . import _ffi
from ._ffi import KIND_BOOL, KIND_FLOAT, KIND_INT, KIND_NULL, KIND_STR, ExpmanValue, lib
from ._handle import Handle

_byref = ctypes.byref
_c_void_p = ctypes.c_void_p


def _pandas_missing():
    return ImportError(
        "load_metrics_df() needs pandas: `pip install pandas` (or use load_metrics_dict(), "
        "which needs nothing)"
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
