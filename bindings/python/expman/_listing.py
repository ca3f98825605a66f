"""Listing experiments with their parameters and metric summaries, filtered and sorted by the
query language (``src/query/GRAMMAR.md``): the same rules as ``EXP ls`` and the web UI, since
the work is done by the library (``expman_list_experiments_json``)."""

import ctypes
import json
import warnings

from . import _ffi
from ._ffi import lib

#: The summaries of a metric column, in the order their columns appear.
AGGREGATES = ("last", "min", "max", "count")

_NON_FINITE = {"NaN": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def _sort_text(sort):
    if sort is None:
        return None
    keys = [sort] if isinstance(sort, str) else list(sort)
    for key in keys:
        if not isinstance(key, str):
            raise TypeError(f"sort keys must be str, got {type(key).__name__}: {key!r}")
        if "," in key:
            # The C call separates keys with commas; a list is the Python way to give several.
            raise ValueError(f"give several sort keys as a list, not one string with commas: {key!r}")
    return ",".join(keys)


def list_records(base_dir, where=None, sort=None):
    """The experiments under ``base_dir`` as the library describes them: a list of dicts with
    ``id``, ``name``, ``status``, ``tags``, ``created_at``, ``runs``, ``params`` and ``metrics``
    (per column ``last``, ``min``, ``max``, ``count``, ``min_step``, ``max_step``). Raises
    ``ConfigError`` (with the query and a caret under the spot) for a bad ``where`` or
    ``sort``, ``NotFoundError`` for a missing ``base_dir``."""
    out = ctypes.c_void_p()
    opt = lambda value, what: None if value is None else _ffi.encode(value, what)  # noqa: E731
    sort_text = _sort_text(sort)
    _ffi.check(
        lib.expman_list_experiments_json(
            _ffi.encode(base_dir, "base_dir"),
            opt(where, "where"),
            opt(sort_text, "sort"),
            ctypes.byref(out),
        )
    )
    try:
        text = ctypes.string_at(out.value)
    finally:
        lib.expman_string_free(out)
    return json.loads(text)


def _number(value):
    return _NON_FINITE.get(value, value) if isinstance(value, str) else value


def list_experiments(base_dir, where=None, sort=None):
    """The experiments under ``base_dir`` as a pandas DataFrame, one row per experiment (its
    latest run), in the order of ``sort``.

    Columns: ``name``, ``id`` (directory name), ``status``, ``error`` (why a run in Error
    failed, or why its state files cannot be read; missing otherwise), ``tags`` (a list), ``created``
    (a timestamp), ``runs``, then ``params.<name>`` for every parameter any experiment has
    (effective parameters: ``config.json``'s, overridden by what the run logged, plus the
    run's config-row columns), then ``metrics.<column>.<last|min|max|count>`` for every metric
    column. Missing values are NaN (None for text). An experiment whose latest metrics table
    cannot be read (a row damaged by another program) gets a ``RuntimeWarning`` naming it; its
    metrics are then what was read before, if anything.

    ``where`` is a query such as ``"params.lr < 1e-3 and metrics.val_acc.max >= 0.85"``;
    ``sort`` a field or a list of fields, each descending with a leading ``-``
    (``["-metrics.val_acc.max", "name"]``). Missing values sort last either way."""
    import pandas as pd

    records = list_records(base_dir, where=where, sort=sort)
    params, metrics = [], []
    for record in records:
        for name in record["params"]:
            if name not in params:
                params.append(name)
        for column in record["metrics"]:
            if column not in metrics:
                metrics.append(column)
    params.sort()
    metrics.sort()
    rows = []
    for record in records:
        if record.get("metrics_error"):
            warnings.warn(f"{record['id']}: its metrics cannot be read: {record['metrics_error']}",
                          RuntimeWarning, stacklevel=2)
        row = {
            "name": record["name"],
            "id": record["id"],
            "status": record["status"],
            "error": record.get("error"),
            "tags": list(record["tags"]),
            "created": record["created_at"],
            "runs": record["runs"],
        }
        for name in params:
            row[f"params.{name}"] = record["params"].get(name)
        for column in metrics:
            summary = record["metrics"].get(column)
            for agg in AGGREGATES:
                row[f"metrics.{column}.{agg}"] = None if summary is None else _number(summary[agg])
        rows.append(row)
    columns = ["name", "id", "status", "error", "tags", "created", "runs"]
    columns += [f"params.{p}" for p in params]
    columns += [f"metrics.{m}.{a}" for m in metrics for a in AGGREGATES]
    frame = pd.DataFrame(rows, columns=columns)
    frame["created"] = pd.to_datetime(frame["created"], utc=True, errors="coerce", format="ISO8601")
    for column in columns:
        if column.startswith("metrics."):
            frame[column] = pd.to_numeric(frame[column])
    return frame


def matching_ids(base_dir, where):
    """The directory names of the experiments under ``base_dir`` that ``where`` matches."""
    return [record["id"] for record in list_records(base_dir, where=where)]
