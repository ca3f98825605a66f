"""expman: a fast, crash-safe experiment manager (Python bindings over the Rust library).

    from expman import Experiment

    exp = Experiment(name="my_experiment", command="python train.py",
                     base_dir="./experiments", tags=["baseline"])
    exp.upd_row(epoch=1, loss=0.5, accuracy=0.85)
    exp.save_row()
    df = exp.load_metrics_df()

The seed framework's import path works too:
``from experiment_manager.core.experiment import Experiment``.
"""

from . import _errors, _ffi
from ._errors import (
    ConfigError,
    CorruptError,
    EncodingError,
    ExpmanError,
    InvalidArgumentError,
    InvalidNameError,
    InvalidStateError,
    InvalidValueError,
    IoError,
    NotFoundError,
    NullArgumentError,
    PanicError,
    UnsupportedError,
)
from ._listing import list_experiments
from .experiment import ENV_EXPERIMENT_DIR, ENV_RUN_ID, Experiment, LogHandler, Table, pick_gpus
from .server import Server, serve

__version__ = "0.1.0"

#: The version of the bundled Rust library.
library_version = _ffi.version()

#: Absolute path of the loaded native library.
library_path = _ffi.LIBRARY_PATH

#: Longest accepted field name, in bytes of UTF-8; a longer one raises InvalidNameError.
MAX_FIELD_NAME_LEN = _ffi.MAX_FIELD_NAME_LEN


def load_experiments(base_dir, name=None, status=None, tag=None, where=None):
    """Every run of the experiments under ``base_dir`` (or of one experiment directory) as
    one pandas DataFrame, one row per saved row: ``experiment`` (directory name), ``name``,
    ``status`` (the run's: Pending, Running, Finished or Error) and ``tags`` (joined with
    ","), as categoricals, then ``timestamp``, ``run_id`` and every field of any run, typed
    as ``pandas.read_csv`` would type them (NaN where a run lacks a field).

    Filters: ``name`` a glob on the experiment's name or directory name (``*``, ``?``),
    ``status`` the run's state, ``tag`` a tag the experiment has; ``where`` a query in the
    language of ``EXP ls --where`` and the web UI's filter (``"params.lr < 1e-3 and
    metrics.val_acc.max >= 0.85"``), which keeps the experiments it matches (judged by their
    latest run). Needs pyarrow; for a ``pyarrow.Table`` use ``expman.arrow.read_dir`` with the
    same arguments (without ``where``)."""
    from . import arrow

    table = arrow.read_dir(base_dir, name=name, status=status, tag=tag)
    if where is not None:
        import pyarrow.compute as pc

        from ._listing import matching_ids

        ids = matching_ids(base_dir, where)
        keep = pc.is_in(table.column("experiment").cast("string"), value_set=arrow._pyarrow().array(ids, "string"))
        table = table.filter(keep)
    return arrow.to_pandas(table)


def features():
    """The optional features compiled into the library, as a set of names."""
    bits = _ffi.features()
    names = {
        _ffi.FEATURE_GPU: "gpu",
        _ffi.FEATURE_SCHEDULER: "scheduler",
        _ffi.FEATURE_SERVER: "server",
        _ffi.FEATURE_ARROW: "arrow",
    }
    return {name for bit, name in names.items() if bits & bit}


__all__ = [
    "Experiment",
    "load_experiments",
    "list_experiments",
    "Table",
    "LogHandler",
    "Server",
    "serve",
    "pick_gpus",
    "ENV_EXPERIMENT_DIR",
    "ENV_RUN_ID",
    "features",
    "library_version",
    "library_path",
    "MAX_FIELD_NAME_LEN",
]
__all__ += _errors.__all__
