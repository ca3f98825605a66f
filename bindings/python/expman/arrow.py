"""Metrics as Arrow tables: the library parses the CSV files into Arrow buffers and hands them
over through the Arrow C stream interface, which pyarrow imports without copying a value.

    import expman.arrow
    table = expman.arrow.read_table("experiments/base_.../metrics/run_0001.csv")  # pyarrow.Table
    runs = expman.arrow.read_dir("experiments", name="resnet*", status="Finished")
    df = expman.arrow.to_pandas(runs)

Needs pyarrow, and a library built with the ``arrow`` feature (the default of
``pip install ./bindings/python``); ``available()`` says whether both are there.

Column types: int64, double (NaN and infinities included), bool, string (``timestamp``,
``run_id`` and text), and null where every cell is empty; empty cells are nulls. ``read_dir``
adds ``experiment``, ``name``, ``status`` (the run's) and ``tags`` (joined with ",") as
dictionary-encoded strings, which pandas turns into categoricals.
"""

import ctypes
from ctypes import CFUNCTYPE, Structure, c_void_p

from . import _ffi
from ._errors import UnsupportedError
from ._ffi import lib

__all__ = ["available", "read_table", "read_dir", "to_pandas", "SkippedTableWarning"]


class ArrowArrayStream(Structure):
    """``struct ArrowArrayStream`` of the Arrow C stream interface."""

    _fields_ = [
        ("get_schema", c_void_p),
        ("get_next", c_void_p),
        ("get_last_error", c_void_p),
        ("release", c_void_p),
        ("private_data", c_void_p),
    ]


_RELEASE = CFUNCTYPE(None, c_void_p)


def available():
    """Whether Arrow reading works here: pyarrow imports and the library has the feature."""
    if not _ffi.features() & _ffi.FEATURE_ARROW:
        return False
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _pyarrow():
    if not _ffi.features() & _ffi.FEATURE_ARROW:
        raise UnsupportedError(
            "this build of expman lacks the `arrow` feature: reinstall it with "
            "`pip install ./bindings/python` (arrow is on by default) or "
            "EXPMAN_FEATURES=arrow"
        )
    try:
        import pyarrow
    except ImportError:
        raise ImportError(
            "reading metrics as Arrow needs pyarrow: `pip install pyarrow` (load_metrics_df() "
            "and load_metrics_dict() work without it)"
        ) from None
    return pyarrow


def _import_stream(function, *args):
    """Calls ``function(*args, &stream)`` and imports the stream as a pyarrow.Table."""
    pa = _pyarrow()
    stream = ArrowArrayStream()
    address = ctypes.addressof(stream)
    _ffi.check(function(*args, address))
    try:
        # Moves the stream: pyarrow sets our release to NULL and releases it when done.
        reader = pa.RecordBatchReader._import_from_c(address)
    except BaseException:
        if stream.release:  # not moved: ours to release
            _RELEASE(stream.release)(address)
        raise
    return reader.read_all()


def read_table(csv_path):
    """The metrics table at ``csv_path`` as a ``pyarrow.Table`` (one chunk per part parsed in
    parallel). Safe while another process writes it: a row being written is left out."""
    return _import_stream(lib.expman_arrow_read_table, _ffi.encode(csv_path, "csv_path"))


class SkippedTableWarning(UserWarning):
    """A run table that ``read_dir`` (and ``expman.load_experiments``) left out because it
    could not be read; the message names the file and why."""


#: The schema metadata key under which the library lists the tables it left out.
_SKIPPED_KEY = b"expman:skipped"


def read_dir(base_dir, name=None, status=None, tag=None):
    """Every run table of the experiments under ``base_dir`` (or of one experiment directory)
    as one long ``pyarrow.Table``: ``experiment``, ``name``, ``status``, ``tags``, then the
    union of the tables' columns. Filters: ``name`` a glob on the experiment's name or
    directory name (``*``, ``?``), ``status`` the run's state (Pending, Running, Finished,
    Error), ``tag`` a tag the experiment has. A table that cannot be read (a damaged row, text
    that is not UTF-8) is left out with a ``SkippedTableWarning`` naming it, so that one
    damaged run does not hide the others."""

    def opt(value, what):
        return None if value is None else _ffi.encode(value, what)

    table = _import_stream(
        lib.expman_arrow_read_dir,
        _ffi.encode(base_dir, "base_dir"),
        opt(name, "name"),
        opt(status, "status"),
        opt(tag, "tag"),
    )
    metadata = table.schema.metadata or {}
    if _SKIPPED_KEY in metadata:
        import json
        import warnings

        for message in json.loads(metadata[_SKIPPED_KEY]):
            warnings.warn(f"left out {message}", SkippedTableWarning, stacklevel=2)
        rest = {k: v for k, v in metadata.items() if k != _SKIPPED_KEY}
        table = table.replace_schema_metadata(rest or None)
    return table


def _na_words(pa):
    """The texts ``pandas.read_csv`` reads as missing, as a pyarrow array."""
    from ._readback import _pandas_na_words

    return pa.array(sorted(_pandas_na_words()), pa.string())


def _na_as_null(pa, pc, column):
    """A string column with read_csv's NA words (``NA``, ``nan``, ``None``, ...) as nulls.
    Cells are looked up only when one could be a word: as short as the longest, and starting
    with a byte that some word starts with (most text columns have none, and the lookup costs a
    hash per cell)."""
    words = _na_words(pa)
    if not _may_hold(pc, column, [w.as_py().encode() for w in words]):
        return column
    found = pc.is_in(column, value_set=words)
    if not pc.any(found).as_py():
        return column
    return pc.if_else(found, pa.scalar(None, pa.string()), column)


def _may_hold(pc, column, words):
    """Whether a string column may hold one of ``words`` (bytes): False when no cell starts
    with a first byte of one, or none is as short as the longest. The first bytes come from
    each chunk's offsets and bytes in place (numpy, no object per cell)."""
    import numpy as np

    first_bytes = np.zeros(256, dtype=bool)
    first_bytes[[w[0] for w in words if w]] = True
    for chunk in column.chunks:
        _, offsets, data = chunk.buffers()
        if data is None or len(chunk) == 0 or data.size == 0:
            continue
        starts = np.frombuffer(offsets, dtype=np.int32)[chunk.offset:chunk.offset + len(chunk)]
        text = np.frombuffer(data, dtype=np.uint8)
        # An empty cell's start is the next cell's (or the end, clipped): at worst a false
        # "may", which only costs the exact lookup.
        if first_bytes[text.take(starts, mode="clip")].any():
            break
    else:
        return False
    longest = max(len(w) for w in words)
    return pc.any(pc.less_equal(pc.binary_length(column), longest)).as_py()


def _categorical(column):
    """A dictionary column whose chunks share one dictionary (``read_dir``'s meta columns) as a
    pandas Categorical, its codes copied chunk by chunk into the integer type pandas picks for
    that many categories; ``None`` for other dictionary columns. pyarrow would first unify a
    dictionary per chunk, then concatenate the keys, then pandas would narrow them: three
    passes over every row where this makes one."""
    import numpy as np
    import pandas as pd

    chunks = column.chunks
    if not chunks:
        return None
    first = chunks[0].dictionary
    if not all(c.dictionary.equals(first) for c in chunks[1:]):
        return None
    categories = pd.Index(first.to_pandas())
    if categories.hasnans or not categories.is_unique:
        return None
    kinds = (np.int8, np.int16, np.int32, np.int64)
    kind = next(k for k in kinds if len(categories) < np.iinfo(k).max)
    codes = np.empty(len(column), dtype=kind)
    at = 0
    for chunk in chunks:
        keys = chunk.indices
        if keys.null_count:
            keys = keys.fill_null(-1)
        codes[at:at + len(keys)] = keys.to_numpy(zero_copy_only=False)
        at += len(keys)
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories), validate=False)


def to_pandas(table):
    """A ``pyarrow.Table`` from this module as a pandas DataFrame typed as ``pandas.read_csv``
    types the same CSV: int64 columns without empty cells stay int64, those with empty cells
    become float64 with NaN; doubles float64; booleans bool (object with NaN where cells are
    empty); text as pandas' default string dtype with NaN for empty cells and for the words
    read_csv reads as missing (``NA``, ``nan``, ``None``, ...); a column of nothing
    but empty cells float64 NaN. Dictionary columns (``experiment``, ``status``, ...) become
    categoricals. For nullable or Arrow-backed dtypes instead, call ``table.to_pandas()``
    yourself (for example with ``types_mapper=pandas.ArrowDtype``)."""
    pa = _pyarrow()
    import numpy as np
    import pyarrow.compute as pc

    fixes = []
    categoricals = []
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            # read_csv reads a column of empty cells as float64 NaN.
            float_field = pa.field(field.name, pa.float64())
            table = table.set_column(i, float_field, pa.nulls(table.num_rows, pa.float64()))
            continue
        if pa.types.is_dictionary(field.type):
            categorical = _categorical(table.column(i))
            if categorical is not None:
                categoricals.append((i, field.name, categorical))
            continue
        # expman writes timestamp and run_id itself: never one of read_csv's NA words, and
        # looking them up costs a hash per cell.
        if pa.types.is_string(field.type) and field.name not in ("timestamp", "run_id"):
            table = table.set_column(i, field, _na_as_null(pa, pc, table.column(i)))
        if (pa.types.is_boolean(field.type) or pa.types.is_string(field.type)) and (
            table.column(i).null_count
        ):
            fixes.append(field.name)
    # split_blocks: one block per column, so numeric columns without nulls need no copy into
    # a consolidated 2-D block.
    if categoricals:
        table = table.drop_columns([name for _, name, _ in categoricals])
    df = table.to_pandas(split_blocks=True)
    for i, name, categorical in categoricals:
        df.insert(i, name, categorical)
    for name in fixes:
        column = df[name]
        if column.dtype == object:
            # pyarrow writes None for a null; read_csv writes NaN.
            df[name] = column.where(column.notna(), np.nan)
    return df
