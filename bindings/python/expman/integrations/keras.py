"""expman as a Keras 3 callback: ``model.fit(..., callbacks=[ExpmanCallback(name="mlp")])``.

- ``on_train_begin`` creates the experiment and records parameters: the model's
  ``get_config()`` under ``model.`` (the list of layers as JSON text), the compile settings
  (``optimizer.*`` from the optimizer's config, ``loss``, ``metrics``) and ``fit``'s (``fit.epochs``,
  ``fit.steps``).
- ``on_epoch_end`` writes one row per epoch into the run's table: ``epoch`` (Keras' 0-based
  index, as its CSVLogger writes it) then the logs (``loss``, ``val_loss``...).
- ``batches=True`` (or ``batches=N``: every N-th batch) also writes a row per training batch into
  the named table ``batches`` (``metrics/batches.csv``: ``step`` counted over the whole fit,
  ``epoch``, then the logs), kept apart so that the run's table stays one row per epoch.
- ``on_train_end`` marks the run Finished. Keras has no hook for an exception: one that ends
  the program marks the run Error through expman's exit hook. A run attached to the
  scheduler's (``EXP run``) leaves its status to the scheduler.
"""

from ._common import ExperimentSettings, flatten_params, metric_value, param_value, require

keras = require("keras", "keras", "expman.integrations.keras")


__all__ = ["ExpmanCallback"]


class ExpmanCallback(keras.callbacks.Callback):
    """Records a Keras ``fit`` into an expman experiment (see the module documentation)."""

    def __init__(self, name="keras", base_dir="experiments", tags=None, params=None,
                 batches=False, description="", capture_output=True, experiment=None):
        super().__init__()
        if batches is True:
            batches = 1
        if batches is not False and (type(batches) is not int or batches < 1):
            raise ValueError(f"batches must be True, False or a positive int, got {batches!r}")
        self._every = batches or 0
        self._settings = ExperimentSettings(name, base_dir, tags, params, description,
                                            capture_output)
        self._exp = experiment
        self._batch_table = None
        self._epoch = 0
        self._global_batch = 0

    @property
    def experiment(self):
        """The ``expman.Experiment`` (None until ``fit`` starts)."""
        return self._exp

    def on_train_begin(self, logs=None):
        if self._exp is None:
            self._exp = self._settings.create()
        self._exp.log_params(self._model_params())

    def _model_params(self):
        model = self.model
        params = {}
        try:
            params.update(flatten_params(model.get_config(), prefix="model"))
        except NotImplementedError:  # a subclassed model without get_config
            params["model.class"] = type(model).__name__
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            params.update(flatten_params(optimizer.get_config(), prefix="optimizer"))
        loss = getattr(model, "loss", None)
        if loss is not None:
            params["loss"] = _name_of(loss)
        metrics = getattr(model, "_compile_metrics", None)
        names = _metric_names(metrics)
        if names:
            params["metrics"] = param_value(names)
        for key in ("epochs", "steps", "batch_size"):
            value = (self.params or {}).get(key)
            if value is not None:
                params[f"fit.{key}"] = param_value(value)
        return params

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._global_batch += 1
        if not self._every or self._global_batch % self._every or self._exp is None:
            return
        if self._batch_table is None:
            self._batch_table = self._exp.table("batches")
        table = self._batch_table
        table.upd_row(step=self._global_batch, epoch=self._epoch)
        table.upd_row(**{k: metric_value(k, v) for k, v in (logs or {}).items()})
        table.save_row()

    def on_epoch_end(self, epoch, logs=None):
        exp = self._exp
        exp.upd_row(epoch=epoch)
        exp.upd_row(**{k: metric_value(k, v) for k, v in (logs or {}).items()})
        exp.save_row()

    def on_train_end(self, logs=None):
        if self._exp is not None and not self._exp.attached:
            self._exp.set_finished()


def _name_of(obj):
    if isinstance(obj, str):
        return obj
    if isinstance(obj, (list, tuple)):
        return param_value([_name_of(o) for o in obj])
    if isinstance(obj, dict):
        return param_value({k: _name_of(v) for k, v in obj.items()})
    name = getattr(obj, "name", None)
    return name if isinstance(name, str) else getattr(obj, "__name__", type(obj).__name__)


def _metric_names(metrics):
    """The metric names given to ``compile`` (Keras keeps them in a CompileMetrics object)."""
    if metrics is None:
        return []
    given = getattr(metrics, "_user_metrics", None)
    if given is None:
        return []
    if isinstance(given, dict):
        return {k: _name_of(v) for k, v in given.items()}
    return [_name_of(m) for m in given]
