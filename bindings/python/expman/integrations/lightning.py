"""expman as a Lightning logger: ``Trainer(logger=ExpmanLogger(name="mlp", base_dir="runs"))``.

- ``log_hyperparams`` records parameters (dicts, ``Namespace``, omegaconf configs flattened with
  dots; lists, ``None`` and other objects as text).
- ``log_metrics(metrics, step)`` writes one row per step, ``step`` first: calls for the same step
  (a training step's metrics, then the validation metrics of that step) merge into one row,
  written when a later step arrives or at ``finalize``. ``save()`` does not cut the row short:
  Lightning calls it after every ``log_metrics``, which would split every step. Each written
  row is in the file at once (a killed process loses at most the step still being gathered).
- Where things go: ``save_dir`` and ``log_dir`` (and so ``trainer.log_dir``) are the experiment
  directory. Lightning's ``ModelCheckpoint`` saves into ``<save_dir>/<name>/<version>/
  checkpoints``, so ``name`` and ``version`` are empty strings and checkpoints land in the
  experiment's ``checkpoints/``; the experiment's name and run id are ``experiment_name`` and
  ``run_id`` (and ``logger.experiment`` is the ``expman.Experiment``).
- ``finalize("success")`` marks the run Finished, ``finalize("failed")`` Error with the
  exception Lightning is handling; a run attached to the scheduler's (started by ``EXP run``)
  leaves its status to the scheduler, as ``Experiment`` does.
- Under DDP only global rank 0 creates the experiment and writes (``rank_zero_only``); the other
  ranks' ``experiment`` is Lightning's dummy.
"""

import sys

from ._common import ExperimentSettings, flatten_params, metric_value, require

require("lightning", "lightning", "expman.integrations.lightning")

from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment  # noqa: E402
from lightning.pytorch.utilities import rank_zero_only  # noqa: E402

from ..experiment import Experiment  # noqa: E402

__all__ = ["ExpmanLogger"]

_NO_STEP = object()


class ExpmanLogger(Logger):
    """A Lightning ``Logger`` recording into an expman experiment.

    ``ExpmanLogger(name="mlp", base_dir="experiments", tags=["baseline"])`` creates
    ``experiments/mlp_<date>__<time>/`` on first use (global rank 0 only);
    ``ExpmanLogger(experiment=exp)`` records into an ``Experiment`` you made. ``params`` are
    recorded at creation, before Lightning's ``log_hyperparams``. ``description`` and
    ``capture_output`` are passed to ``Experiment``."""

    def __init__(self, name="lightning", base_dir="experiments", tags=None, params=None,
                 description="", capture_output=True, experiment=None):
        super().__init__()
        self._settings = ExperimentSettings(name, base_dir, tags, params, description,
                                            capture_output)
        self._exp = experiment
        self._step = _NO_STEP  # the step of the pending row
        self._pending = {}

    # -- the experiment ------------------------------------------------------------------------

    @property
    @rank_zero_experiment
    def experiment(self):
        """The ``expman.Experiment`` (created on first use, on global rank 0)."""
        if self._exp is None:
            self._exp = self._settings.create()
        return self._exp

    @property
    def name(self):
        """Empty: Lightning joins ``save_dir/name/version/checkpoints`` for ModelCheckpoint, and
        the experiment directory is ``save_dir`` already (see ``experiment_name``)."""
        return ""

    @property
    def version(self):
        """Empty, for the same reason as ``name`` (see ``run_id``)."""
        return ""

    @property
    def experiment_name(self):
        """The experiment's name (``name=``)."""
        return self._exp.name if self._exp is not None else self._settings.name

    @property
    def run_id(self):
        """The run this logger records, such as ``run_0001`` (None on ranks other than 0)."""
        exp = self.experiment
        return getattr(exp, "run_id", None)

    @property
    def save_dir(self):
        """The experiment directory (``ModelCheckpoint`` saves into its ``checkpoints/``)."""
        exp = self.experiment
        return str(exp.dir) if isinstance(exp, Experiment) else None

    @property
    def log_dir(self):
        """The experiment directory."""
        return self.save_dir

    @property
    def root_dir(self):
        return self.save_dir

    # -- recording -----------------------------------------------------------------------------

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs):
        """Records ``params`` (dict, Namespace, omegaconf config) as the run's parameters."""
        flat = flatten_params(params)
        if flat:
            self.experiment.log_params(flat)

    @rank_zero_only
    def log_metrics(self, metrics, step=None):
        """Adds ``metrics`` to the row of ``step``; the row is written when the step changes."""
        if step != self._step and self._pending:
            self._write()
        self._step = step
        pending = self._pending
        for key, value in metrics.items():
            tp = type(value)
            pending[key] = value if (tp is float or tp is int) else metric_value(key, value)
        if step is None:  # no step to merge on: each call is its own row
            self._write()

    def _write(self):
        row = self._pending
        self._pending = {}
        exp = self.experiment
        if self._step is not None and self._step is not _NO_STEP:
            # `step` first in a new table's header; the argument wins over a "step" metric.
            exp.upd_row(step=self._step)
        exp.upd_row(**row)
        exp.save_row()

    @rank_zero_only
    def save(self):
        """Nothing to do: written rows are in the file already, and the pending step's row
        waits for the step to end (see the module documentation)."""

    @rank_zero_only
    def finalize(self, status):
        """Writes the pending row and marks the run: Finished for ``"success"``/``"finished"``,
        Error for ``"failed"`` (with the exception being handled, when there is one)."""
        if self._exp is None:
            return  # never used: nothing was created, nothing to mark
        if self._pending:
            self._write()
        exp = self._exp
        if exp.attached or exp._ptr is None:
            return
        if status == "failed":
            exc_type, exc, _ = sys.exc_info()
            if exc_type is None:
                message = "Lightning finalized the run as failed"
            else:
                text = str(exc)
                message = f"{exc_type.__name__}: {text}" if text else exc_type.__name__
            exp.set_error(message)
        else:
            # Lightning finalizes after fit and again after a later test(): the run is
            # Finished each time, and rows logged in between still go into it.
            exp.set_finished()

    def after_save_checkpoint(self, checkpoint_callback):
        """Nothing to record: ModelCheckpoint wrote into the experiment's ``checkpoints/``."""
