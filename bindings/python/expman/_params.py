"""Hyperparameters on the Python side: a dict (nested or not, ``**kw`` merged in) becomes the
JSON object the C ABI takes (``expman_experiment_log_params_json``); the library flattens nested
dicts with dots and checks names, once, for every binding.

Only what JSON cannot carry is handled here: numpy scalars become Python numbers, integers
outside int64 and non-finite floats are refused naming the parameter (JSON has no NaN, and a
huge integer would come back as a float).
"""

import json
import math
import sys
from collections.abc import Mapping

from ._errors import InvalidValueError, shown

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def params_json(params, what="params"):
    """The JSON text for ``params`` (a mapping of names to values or nested mappings)."""
    if not isinstance(params, Mapping):
        raise TypeError(
            f"{what} must be a dict of parameter names to values, got {type(params).__name__}: "
            f"{shown(params)}"
        )
    return json.dumps(_plain_mapping(params, ""), default=_fallback, allow_nan=False)


def _plain_mapping(params, prefix):
    out = {}
    for key, value in params.items():
        if type(key) is not str:
            raise TypeError(f"parameter names must be str, got {shown(key)}")
        name = f"{prefix}.{key}" if prefix else key
        out[key] = _plain_mapping(value, name) if isinstance(value, Mapping) else _plain(value, name)
    return out


def _plain(value, name):
    """``value`` as a JSON-ready Python value; lists and None pass through for the library to
    refuse with its own message."""
    tp = type(value)
    if tp is bool or tp is str:
        return value
    if tp is float:
        return _finite(value, name)
    if tp is int:
        return _int64(value, name)
    np = sys.modules.get("numpy")  # a numpy scalar means numpy is imported already
    if np is not None and isinstance(value, np.generic):
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, np.integer):
            return _int64(int(value), name)
        if isinstance(value, np.floating):
            return _finite(float(value), name)
        if isinstance(value, np.str_):
            return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _int64(int(value), name)
    if isinstance(value, float):
        return _finite(float(value), name)
    if isinstance(value, str):
        return str(value)
    if value is None or isinstance(value, (list, tuple)):
        return value
    raise TypeError(
        f"parameter {shown(name)}: expman cannot record a value of type {tp.__qualname__} "
        f"({value!r:.80}); use int, float, bool, str or a numpy scalar (str(x) records any "
        "value as text)"
    )


def _finite(value, name):
    if not math.isfinite(value):
        raise InvalidValueError(
            f"invalid value for parameter {shown(name)}: {value} is not finite; parameters "
            "must be finite numbers, booleans or text"
        )
    return value


def _int64(value, name):
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise OverflowError(
            f"parameter {shown(name)}: {value} does not fit in a 64-bit integer; record it as a "
            "float or a str"
        )
    return value


def _fallback(value):
    """Inside a list (which the library refuses anyway): anything as JSON, for the message."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)
