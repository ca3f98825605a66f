"""expman as a Hugging Face ``Trainer`` callback: ``Trainer(..., callbacks=[ExpmanCallback()])``.

- ``on_train_begin`` creates the experiment (on the main process only) and records the
  ``TrainingArguments`` as parameters (tokens masked, as ``to_dict()`` does) and the model's
  config under ``model.`` (``model.hidden_size``...).
- ``on_log`` writes one row per ``global_step``, ``step`` first: the logs of one step (the
  training loss, then an evaluation at the same step) merge into one row, written when a later
  step is logged or at the end of training.
- ``on_save``: the Trainer saved ``<output_dir>/checkpoint-<step>``; a row in the named table
  ``checkpoints`` (``metrics/checkpoints.csv``: ``step``, ``epoch``, ``path``) records it. The
  files stay where ``TrainingArguments.output_dir`` put them: pass
  ``output_dir=str(callback.experiment.dir / "checkpoints")`` (after creating the experiment
  with ``callback.setup(args, model)``) to keep them in the experiment.
- ``on_train_end`` writes the pending row and marks the run Finished. The Trainer has no hook
  for an exception: an exception that ends the program marks the run Error through expman's
  exit hook (as for any ``Experiment``). A run attached to the scheduler's (``EXP run``)
  leaves its status to the scheduler.
"""

from pathlib import Path

from ._common import ExperimentSettings, flatten_params, metric_value, require

require("transformers", "transformers", "expman.integrations.transformers")

from transformers import TrainerCallback  # noqa: E402


__all__ = ["ExpmanCallback"]


class ExpmanCallback(TrainerCallback):
    """Records a ``Trainer`` run into an expman experiment.

    ``ExpmanCallback(name="bert", base_dir="experiments", tags=None)`` creates the experiment at
    the start of training (default name: the run name of ``TrainingArguments`` when it is set,
    else ``"transformers"``); ``ExpmanCallback(experiment=exp)`` records into yours."""

    def __init__(self, name=None, base_dir="experiments", tags=None, params=None,
                 description="", capture_output=True, experiment=None):
        self._settings = ExperimentSettings(name, base_dir, tags, params, description,
                                            capture_output)
        self._exp = experiment
        self._step = None
        self._pending = {}
        self._checkpoints = None

    @property
    def experiment(self):
        """The ``expman.Experiment`` (None until training starts, on other processes too)."""
        return self._exp

    def setup(self, args, model=None):
        """Creates the experiment (once) and records the arguments and the model config."""
        if self._exp is None:
            name = self._settings.name or getattr(args, "run_name", None) or "transformers"
            if Path(str(name)).name != str(name):  # run_name defaults to output_dir: a path
                name = Path(str(name)).name or "transformers"
            self._exp = self._settings.create(name)
        params = flatten_params(args)
        config = getattr(model, "config", None)
        if config is not None:
            params.update(flatten_params(config, prefix="model"))
        if params:
            self._exp.log_params(params)
        return self._exp

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.is_world_process_zero:
            self.setup(args, model)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or self._exp is None:
            return
        step = state.global_step
        if step != self._step and self._pending:
            self._write()
        self._step = step
        for key, value in logs.items():
            self._pending[key] = metric_value(key, value)

    def _write(self):
        row, self._pending = self._pending, {}
        self._exp.upd_row(step=self._step)  # `step` first in a new table's header
        self._exp.upd_row(**row)
        self._exp.save_row()

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or self._exp is None:
            return
        path = Path(args.output_dir).resolve() / f"checkpoint-{state.global_step}"
        if self._checkpoints is None:
            self._checkpoints = self._exp.table("checkpoints")
        self._checkpoints.upd_row(step=state.global_step, epoch=float(state.epoch or 0.0),
                                  path=str(path))
        self._checkpoints.save_row()

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or self._exp is None:
            return
        if self._pending:
            self._write()
        if not self._exp.attached:
            self._exp.set_finished()
