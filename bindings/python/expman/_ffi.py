"""The native layer: load ``libexpman`` and declare every C function of ``include/expman.h``.

Nothing here is Pythonic on purpose (wasmtime-py's ``_ffi.py`` split): this module knows the C
signatures and the status codes, ``experiment.py`` builds the API on top. A test parses the
header and checks that every ``expman_*`` function is declared below with the same number of
parameters, so the two cannot drift apart silently.

The library is the copy bundled inside this package, loaded by absolute path (never through the
dynamic loader's search path, so another ``libexpman`` on the system cannot be picked up). For
development, ``EXPMAN_LIBRARY=/path/to/libexpman.so`` overrides it.
"""

import ctypes
import glob
import os
from ctypes import (
    POINTER,
    Structure,
    c_char_p,
    c_double,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)

from ._errors import error_for, shown

#: The C ABI version these bindings are written for (``EXPMAN_ABI_VERSION`` in the header).
ABI_VERSION = 1

# Status codes (``expman_status``).
OK = 0
STATUS_NULL = 1

#: Longest accepted field name in bytes of UTF-8 (``EXPMAN_MAX_FIELD_NAME_LEN``).
MAX_FIELD_NAME_LEN = 256

# Bits of ``expman_features()``.
FEATURE_GPU = 1
FEATURE_SCHEDULER = 2
FEATURE_SERVER = 4
FEATURE_ARROW = 8

# ``expman_experiment_set_sync`` modes (``EXPMAN_SYNC_*``).
SYNC_WRITE_THROUGH = 0
SYNC_EVERY_ROW = 1
SYNC_INTERVAL = 2

# ``expman_experiment_state`` values (``EXPMAN_STATE_*``), and their names by value.
STATE_PENDING = 0
STATE_RUNNING = 1
STATE_FINISHED = 2
STATE_ERROR = 3
STATE_NAMES = ("Pending", "Running", "Finished", "Error")

# ``expman_value.kind`` and ``expman_metrics_column_type``.
KIND_NULL = 0
KIND_BOOL = 1
KIND_INT = 2
KIND_FLOAT = 3
KIND_STR = 4


class ExpmanValue(Structure):
    """``expman_value``: one cell. ``s`` is read as an address because strings may hold NULs."""

    _fields_ = [
        ("kind", c_int32),
        ("i", c_int64),
        ("f", c_double),
        ("s", c_void_p),
        ("s_len", c_size_t),
    ]


class ExpmanText(Structure):
    """``expman_text``: a text column as one buffer (see ``expman_columns_text``)."""

    _fields_ = [
        ("data", c_void_p),
        ("data_len", c_size_t),
        ("offsets", c_void_p),
        ("n_values", c_size_t),
        ("codes", c_void_p),
        ("sep", c_int32),
    ]


# Opaque handles are plain addresses on the Python side.
_handle = c_void_p
_out_handle = POINTER(c_void_p)
_str = c_char_p
_status = c_int32
# Arrays (ids, doubles, values) are declared as ``void *`` so the hot path can hand over a
# ``bytes`` object built by ``struct.pack`` without any copy or ctypes array construction.
_array = c_void_p


# (name, restype, argtypes) for every function in include/expman.h, in the header's order.
_SIGNATURES = [
    # Library
    ("expman_abi_version", c_uint32, []),
    ("expman_version", c_char_p, []),
    ("expman_features", c_uint32, []),
    ("expman_last_error", c_char_p, []),
    ("expman_string_free", None, [c_void_p]),
    # Experiment
    (
        "expman_experiment_create",
        _status,
        # name, command, base_dir, tags, n_tags, description, gpu_ids, n_gpu_ids, out
        [_str, _str, _str, _array, c_size_t, _str, _array, c_size_t, _out_handle],
    ),
    (
        "expman_experiment_create_with_params",
        _status,
        # name, command, base_dir, tags, n_tags, description, gpu_ids, n_gpu_ids, params_json, out
        [_str, _str, _str, _array, c_size_t, _str, _array, c_size_t, _str, _out_handle],
    ),
    ("expman_experiment_open", _status, [_str, _out_handle]),
    ("expman_experiment_attach", _status, [_str, _str, _out_handle]),
    ("expman_experiment_free", None, [_handle]),
    ("expman_experiment_run_id", c_char_p, [_handle]),
    ("expman_experiment_dir", c_char_p, [_handle]),
    ("expman_experiment_name", c_char_p, [_handle]),
    ("expman_experiment_set_sync", _status, [_handle, c_int32, c_uint64]),
    ("expman_experiment_set_running", _status, [_handle, c_uint32]),
    ("expman_experiment_set_finished", _status, [_handle]),
    ("expman_experiment_set_error", _status, [_handle, _str]),
    ("expman_experiment_append_log", _status, [_handle, _str]),
    ("expman_experiment_capture_output", _status, [_handle]),
    ("expman_experiment_stop_capture", _status, [_handle]),
    ("expman_experiment_start_system_metrics", _status, [_handle, c_double]),
    ("expman_experiment_stop_system_metrics", _status, [_handle]),
    ("expman_experiment_metrics", _status, [_handle, _out_handle]),
    ("expman_experiment_table", _status, [_handle, _str, _out_handle]),
    ("expman_experiment_load_metrics", _status, [_handle, _str, _out_handle]),
    ("expman_experiment_attached", _status, [_handle, POINTER(ctypes.c_bool)]),
    ("expman_experiment_state", _status, [_handle, POINTER(c_int32)]),
    ("expman_experiment_status_json", _status, [_handle, _out_handle]),
    ("expman_experiment_set_param_f64", _status, [_handle, _str, c_double]),
    ("expman_experiment_set_param_i64", _status, [_handle, _str, c_int64]),
    ("expman_experiment_set_param_bool", _status, [_handle, _str, ctypes.c_bool]),
    ("expman_experiment_set_param_str", _status, [_handle, _str, _str]),
    ("expman_experiment_log_params_json", _status, [_handle, _str]),
    ("expman_experiment_params_json", _status, [_handle, _out_handle]),
    ("expman_list_experiments_json", _status, [c_char_p, c_char_p, c_char_p, _out_handle]),
    # Table
    ("expman_table_field_id", _status, [_handle, _str, POINTER(c_uint32)]),
    ("expman_table_set_f64", _status, [_handle, _str, c_double]),
    ("expman_table_set_i64", _status, [_handle, _str, c_int64]),
    ("expman_table_set_bool", _status, [_handle, _str, ctypes.c_bool]),
    ("expman_table_set_str", _status, [_handle, _str, _str]),
    ("expman_table_set_null", _status, [_handle, _str]),
    ("expman_table_save_row", _status, [_handle]),
    ("expman_table_clear_row", _status, [_handle]),
    ("expman_table_sync", _status, [_handle]),
    ("expman_table_save_row_f64", _status, [_handle, _array, _array, c_size_t]),
    ("expman_table_save_row_values", _status, [_handle, _array, _array, c_size_t]),
    ("expman_table_set_values", _status, [_handle, _array, _array, c_size_t]),
    # Metrics (read back)
    ("expman_metrics_read", _status, [_str, _out_handle]),
    ("expman_metrics_free", None, [_handle]),
    ("expman_metrics_n_columns", c_size_t, [_handle]),
    ("expman_metrics_n_rows", c_size_t, [_handle]),
    ("expman_metrics_column_name", c_char_p, [_handle, c_size_t]),
    ("expman_metrics_column_type", c_int32, [_handle, c_size_t]),
    ("expman_metrics_get", _status, [_handle, c_size_t, c_size_t, POINTER(ExpmanValue)]),
    ("expman_metrics_column_f64", _status, [_handle, c_size_t, _array, c_size_t]),
    # Columns (read back as buffers, in every build)
    ("expman_columns_read", _status, [_str, _out_handle]),
    ("expman_columns_free", None, [_handle]),
    ("expman_columns_n_columns", c_size_t, [_handle]),
    ("expman_columns_n_rows", c_size_t, [_handle]),
    ("expman_columns_name", c_char_p, [_handle, c_size_t]),
    ("expman_columns_type", c_int32, [_handle, c_size_t]),
    ("expman_columns_values", _status, [_handle, c_size_t, POINTER(c_void_p)]),
    ("expman_columns_valid", _status, [_handle, c_size_t, POINTER(c_void_p)]),
    ("expman_columns_text", _status, [_handle, c_size_t, POINTER(ExpmanText)]),
    # Server (EXPMAN_ERR_UNSUPPORTED without the `server` feature)
    ("expman_server_start", _status, [_str, _str, ctypes.c_uint16, _out_handle]),
    ("expman_server_url", c_char_p, [_handle]),
    ("expman_server_stop", None, [_handle]),
    # GPUs
    ("expman_gpu_pick", _status, [c_size_t, _array]),
    # Arrow (EXPMAN_ERR_UNSUPPORTED without the `arrow` feature); `out` is the address of a
    # struct ArrowArrayStream (see expman/arrow.py)
    ("expman_arrow_read_table", _status, [_str, c_void_p]),
    ("expman_arrow_read_dir", _status, [_str, _str, _str, _str, c_void_p]),
]


def _library_path():
    """The absolute path of the library to load."""
    override = os.environ.get("EXPMAN_LIBRARY")
    if override:
        return os.path.abspath(override)
    here = os.path.dirname(os.path.abspath(__file__))
    # setuptools-rust names the bundled cdylib like an extension module
    # (libexpman.cpython-311-x86_64-linux-gnu.so); a hand-copied libexpman.so works too.
    patterns = ["libexpman*.so", "libexpman*.dylib", "expman*.dll", "libexpman*.pyd"]
    for pattern in patterns:
        found = sorted(glob.glob(os.path.join(here, pattern)))
        if found:
            return found[0]
    raise ImportError(
        f"expman: the native library is missing from {here}. Install the package with "
        "`pip install ./bindings/python` (it builds the Rust crate), or point EXPMAN_LIBRARY "
        "at a built libexpman.so (`cargo build --release` writes target/release/libexpman.so)."
    )


def _load():
    path = _library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(f"expman: cannot load the native library {path}: {e}") from e
    # The version first: a library from another ABI may lack symbols, and the version is the
    # more useful message.
    try:
        abi_version = lib.expman_abi_version
    except AttributeError:
        raise ImportError(f"expman: {path} is not an expman library (no expman_abi_version)") from None
    abi_version.restype, abi_version.argtypes = c_uint32, []
    found = abi_version()
    if found != ABI_VERSION:
        raise ImportError(
            f"expman: {path} implements C ABI version {found}, but these Python bindings "
            f"need version {ABI_VERSION}. Reinstall the package (pip install ./bindings/python) "
            "so the library and the bindings come from the same source tree."
        )
    for name, restype, argtypes in _SIGNATURES:
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise ImportError(
                f"expman: {path} has no symbol {name}; the library is older or newer than "
                "these bindings. Reinstall the package so both come from the same build."
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes
    return path, lib


LIBRARY_PATH, lib = _load()


def unchecked(name, restype=c_int32):
    """A second function object for ``name`` with ``restype`` and no ``argtypes``, for hot paths
    whose callers pass only ctypes instances and ``bytes`` (converted in C, with no Python-level
    ``from_param`` call per argument). Its signature is declared in ``_SIGNATURES`` like every
    other function's; this only skips the conversion step."""
    fn = lib._FuncPtr((name, lib))
    fn.restype = restype
    return fn

_last_error = lib.expman_last_error


def last_error_message():
    """The calling thread's last error message, decoded."""
    raw = _last_error()
    return raw.decode("utf-8", "replace") if raw else "unknown error"


def error(status):
    """The exception for a non-zero status, with this thread's last error message."""
    return error_for(status, last_error_message())


def check(status):
    """Raises the exception for a non-zero status."""
    if status:
        raise error(status)


def encode(text, what):
    """``str`` (or ``os.PathLike``) to NUL-terminated UTF-8 bytes for a ``const char *``."""
    if isinstance(text, bytes):
        data = text
    elif isinstance(text, str):
        data = text.encode("utf-8", "surrogateescape")
    elif hasattr(text, "__fspath__"):
        data = os.fsencode(text)
    else:
        raise TypeError(f"{what} must be a str, got {type(text).__name__}: {shown(text)}")
    if b"\0" in data:
        raise ValueError(f"{what} must not contain NUL characters: {shown(text)}")
    return data


def decode(raw):
    """``const char *`` result to ``str`` (``None`` stays ``None``)."""
    if raw is None:
        return None
    return raw.decode("utf-8", "surrogateescape")


def version():
    """The library's version string."""
    return decode(lib.expman_version())


def features():
    """The optional features compiled into the library, as a bit set."""
    return lib.expman_features()
