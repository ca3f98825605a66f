"""Value packing: which Python values expman stores, and how they become ``expman_value`` cells.

The fast paths (``_rows.py``) pack whole rows with ``struct``: the cell formats here mirror the
C layout of ``expman_value``; ``_fill_cell`` is the general path for rows with text.
"""

import ctypes
import sys

from ._errors import shown
from ._ffi import KIND_BOOL, KIND_FLOAT, KIND_INT, KIND_NULL, KIND_STR, ExpmanValue

_c_void_p = ctypes.c_void_p

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


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
