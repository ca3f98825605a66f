"""A W&B-compatible subset over expman: ``import expman.wandb as wandb`` and a script written for
Weights & Biases records into a local expman experiment instead (no account, no server).

What maps where:

- ``wandb.init(project=, name=, config=, tags=, notes=, dir=, group=, job_type=, resume=)``
  creates an ``Experiment`` named ``name`` (default: the project) in ``<dir or cwd>/<project>/``;
  ``notes`` is its description, ``group`` and ``job_type`` become the tags ``group:<g>`` and
  ``job_type:<j>``. Started by ``EXP run``, it attaches to the scheduler's run as
  ``Experiment`` does.
- ``wandb.config`` / ``run.config``: attribute and item access, ``update``, ``as_dict``; every
  change is recorded as parameters (``log_params``; nested dicts flattened with dots, values
  the parameters cannot hold, such as lists, as text).
- ``wandb.log(data, step=None, commit=None)``: W&B's step rules. Each committed row gets
  ``_step`` (0, 1, 2, ...); ``commit=False`` merges into the pending row; an explicit ``step``
  larger than the current one commits the pending row first; a smaller one is ignored with a
  warning, as W&B does. Nested dicts are flattened with dots.
- ``wandb.summary`` / ``run.summary``: the last logged value of each metric (or the aggregate
  asked for with ``define_metric(name, summary="min")``) plus what is set on it; recorded as
  parameters named ``summary.<key>`` (so the UI's parameter columns show them) when set and at
  ``finish``.
- ``wandb.finish(exit_code=None)``: flushes the pending row, records the summary, marks the run
  Finished (exit code 0 or None) or Error, and closes the experiment. A run never finished is
  flushed at exit and marked by expman's exit hook (Error after an uncaught exception).
- ``run.id`` (the run id, ``run_0001``), ``run.name``, ``run.dir`` (the experiment directory),
  ``run.project``, ``run.experiment`` (the ``expman.Experiment``).

What is not here raises ``NotImplementedError`` naming the expman way instead (media such as
``wandb.Image``, ``wandb.Table``, artifacts, ``watch``, sweeps, the public API): a call that
would do nothing must not look as if it worked.
"""

import atexit
import fnmatch
import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

from .experiment import Experiment
from .integrations._common import command_line, flatten_params, metric_value

__all__ = [
    "init", "log", "finish", "define_metric", "login", "run", "config", "summary", "Run",
    "Config", "Summary",
]

run = None  # the active Run, as in W&B (None before init and after finish)


class _PreInit:
    """What ``wandb.config``/``wandb.summary`` are before ``init``: any use says to call init."""

    def __init__(self, name):
        object.__setattr__(self, "_name", name)

    def _fail(self, *args, **kwargs):
        if args and isinstance(args[0], str) and args[0].startswith("__"):
            raise AttributeError(args[0])  # copy, pickle and inspect probe dunders: not a use
        raise RuntimeError(
            f"wandb.{self._name} is used before wandb.init(): call wandb.init(...) first "
            "(expman.wandb starts an expman experiment there)"
        )

    __getattr__ = __setattr__ = __getitem__ = __setitem__ = __call__ = _fail
    __contains__ = __iter__ = __len__ = _fail


config = _PreInit("config")
summary = _PreInit("summary")


# -- not supported: each says what to do instead ------------------------------------------------

_MEDIA = ("use Experiment files instead: save the file under run.dir (the experiment "
          "directory, e.g. checkpoints/ or a folder of your own) and log its path or a number "
          "summarising it with wandb.log")
_UNSUPPORTED = {
    "Image": _MEDIA, "Video": _MEDIA, "Audio": _MEDIA, "Html": _MEDIA, "Object3D": _MEDIA,
    "Molecule": _MEDIA, "Plotly": _MEDIA, "Histogram": (
        "log summaries of the values instead (e.g. {'w_mean': float(w.mean()), "
        "'w_std': float(w.std())})"),
    "Table": ("log one row per record with wandb.log (each call is a row of metrics/<run_id>.csv), "
              "or write a named table with run.experiment.table('name').upd_row(...)/save_row()"),
    "Artifact": "copy the files into run.dir (the experiment directory) and log their paths",
    "log_artifact": "copy the files into run.dir (the experiment directory) and log their paths",
    "use_artifact": "read the files from the experiment directory that produced them",
    "log_model": "save the model under run.dir + '/checkpoints' (the experiment's checkpoints/)",
    "use_model": "load the model from the producing experiment's checkpoints/ directory",
    "link_model": "save the model under run.dir + '/checkpoints' (the experiment's checkpoints/)",
    "save": "write the file under run.dir (the experiment directory); expman keeps it there",
    "restore": "read the file from the experiment directory (run.dir)",
    "watch": ("log gradient or weight statistics yourself with wandb.log (e.g. the gradient "
              "norm), or use expman's Lightning/Keras/transformers integrations"),
    "unwatch": "there is no watch to undo: expman.wandb does not support watch",
    "log_code": "the command line is in config.json and the output in logs/<run_id>.log",
    "alert": "print the message: it is captured into the run's log (logs/<run_id>.log)",
    "sweep": "use expman's scheduler: `EXP run` with a [sweep] section (see the README)",
    "agent": "use expman's scheduler: `EXP run` with a [sweep] section (see the README)",
    "controller": "use expman's scheduler: `EXP run` with a [sweep] section (see the README)",
    "Api": "read experiments with expman.load_experiments(base_dir) or the web UI (`EXP <dir>`)",
    "plot": "log the numbers with wandb.log; the expman web UI charts every metric",
    "plot_table": "log the numbers with wandb.log; the expman web UI charts every metric",
    "mark_preempting": "jobs started by `EXP run` are requeued by the scheduler",
    "tensorboard": "log the metrics with wandb.log (or expman's framework integrations)",
}


def _unsupported(name):
    def call(*args, **kwargs):
        raise NotImplementedError(
            f"wandb.{name} is not supported by expman.wandb: {_UNSUPPORTED[name]}"
        )

    call.__name__ = name
    call.__qualname__ = name
    call.__doc__ = f"Not supported: raises NotImplementedError ({_UNSUPPORTED[name]})."
    return call


for _name in _UNSUPPORTED:
    globals()[_name] = _unsupported(_name)
del _name


def __getattr__(name):
    # Any other public W&B name fails loudly at use, naming itself, instead of an obscure
    # AttributeError deep in a script (hasattr() still sees an AttributeError).
    if name.startswith("__"):
        raise AttributeError(name)
    raise _Missing(
        f"wandb.{name} is not part of expman.wandb's W&B-compatible subset (init, config, log, "
        "summary, define_metric, finish, run, login); see the README's 'Switching from wandb'"
    )


class _Missing(NotImplementedError, AttributeError):
    """A W&B name expman.wandb does not have (both so that hasattr() answers False)."""


# -- config and summary ---------------------------------------------------------------------------


class Config:
    """``wandb.config``: the run's configuration, as given (nested dicts stay nested here), each
    change recorded as parameters of the experiment (flattened with dots)."""

    def __init__(self, run):
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_data", {})

    def _record(self, items):
        items = dict(items)
        self._data.update(items)
        flat = flatten_params(items)
        if flat and self._run._exp is not None:
            self._run._exp.log_params(flat)

    def update(self, d=None, allow_val_change=None, **kwargs):
        """Sets several keys (a dict, an ``argparse.Namespace`` or keywords)."""
        items = {}
        if d is not None:
            if not isinstance(d, Mapping):
                d = vars(d) if hasattr(d, "__dict__") else d
            if not isinstance(d, Mapping):
                raise TypeError(f"config.update takes a dict or a namespace, got {type(d).__name__}")
            items.update(d)
        items.update(kwargs)
        self._record(items)

    def setdefaults(self, d):
        """Sets the keys of ``d`` that are not set yet."""
        self._record({k: v for k, v in d.items() if k not in self._data})

    def as_dict(self):
        """The configuration as a plain dict."""
        return dict(self._data)

    def keys(self):
        return self._data.keys()

    def items(self):
        return self._data.items()

    def values(self):
        return self._data.values()

    def get(self, key, default=None):
        return self._data.get(key, default)

    def __getitem__(self, key):
        return self._data[key]

    def __setitem__(self, key, value):
        self._record({key: value})

    def __getattr__(self, name):
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"wandb.config has no key {name!r}") from None

    def __setattr__(self, name, value):
        self._record({name: value})

    def __contains__(self, key):
        return key in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        return f"<expman.wandb.Config {self._data!r}>"


class Summary:
    """``wandb.summary``: each metric's last logged value (or the ``define_metric`` aggregate),
    plus what is set here; recorded as parameters ``summary.<key>`` when set and at finish."""

    def __init__(self, run):
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_set", {})  # set explicitly: wins over the logged values

    def _values(self):
        return {**self._run._aggregates(), **self._set}

    def update(self, d=None, **kwargs):
        items = dict(d or {}, **kwargs)
        self._set.update(items)
        self._run._record_summary(items)

    def __getitem__(self, key):
        return self._values()[key]

    def __setitem__(self, key, value):
        self.update({key: value})

    def __getattr__(self, name):
        try:
            return self._values()[name]
        except KeyError:
            raise AttributeError(f"wandb.summary has no key {name!r}") from None

    def __setattr__(self, name, value):
        self.update({name: value})

    def __contains__(self, key):
        return key in self._values()

    def get(self, key, default=None):
        return self._values().get(key, default)

    def keys(self):
        return self._values().keys()

    def items(self):
        return self._values().items()

    def __iter__(self):
        return iter(self._values())

    def __len__(self):
        return len(self._values())

    def __repr__(self):
        return f"<expman.wandb.Summary {self._values()!r}>"


# -- the run -----------------------------------------------------------------------------------

_SUMMARY_KINDS = ("min", "max", "mean", "last", "first", "best", "none")
_UNKNOWN = object()


class Run:
    """The object ``wandb.init`` returns (also ``wandb.run``)."""

    def __init__(self, experiment, project, name, tags, notes, group, job_type, first_step=0):
        self._exp = experiment
        self.project = project
        self._name = name
        self.tags = tuple(tags)
        self.notes = notes
        self.group = group
        self.job_type = job_type
        self.config = Config(self)
        self.summary = Summary(self)
        self._step = first_step  # the step of the pending row
        self._pending = {}
        self._last = {}  # metric -> its last committed value
        self._agg = {}  # metric -> [min, max, sum, count, first], for define_metric summaries
        self._metrics = []  # (glob, summary kinds, goal) from define_metric
        self._kinds_cache = {}  # metric -> (kinds, goal) of the first matching define_metric
        self._finished = False

    # identity, as W&B names it
    @property
    def id(self):
        """The expman run id (``run_0001``)."""
        return self._exp.run_id

    @property
    def name(self):
        return self._name

    @property
    def dir(self):
        """The experiment directory, as a str (W&B's run files directory)."""
        return str(self._exp.dir)

    @property
    def path(self):
        return f"{self.project}/{self.id}"

    @property
    def step(self):
        """The step the next committed row gets."""
        return self._step

    @property
    def experiment(self):
        """The ``expman.Experiment`` this run records into."""
        return self._exp

    @property
    def offline(self):
        return True  # nothing is sent anywhere

    def __repr__(self):
        return f"<expman.wandb.Run {self._name!r} {self.id} in {self.dir!r}>"

    # logging
    def log(self, data, step=None, commit=None):
        """W&B's ``run.log``: see the module documentation for the step rules."""
        self._check_live("log")
        if not isinstance(data, Mapping):
            raise TypeError(f"wandb.log takes a dict of metric names to values, got {type(data).__name__}")
        if step is not None:
            step = int(step)
            if step < self._step:
                warnings.warn(
                    f"wandb.log: step {step} is less than the current step {self._step}; steps "
                    "must increase, so this data is ignored (as W&B does)",
                    UserWarning, stacklevel=2,
                )
                return
            if step > self._step:
                self._commit()
                self._step = step
        values = {}
        _flatten_metrics(data, "", values)
        self._pending.update(values)
        if commit is None:
            commit = step is None  # an explicit step waits for a later step or commit=True
        if commit:
            self._commit()

    def _commit(self):
        pending = self._pending
        if not pending:
            return
        # One row through log_metrics, which drops a row the library refuses (as W&B drops a
        # log it refuses: the error says why, and the next log and finish go through).
        try:
            self._exp.log_metrics({"_step": self._step, **pending})  # `_step` first in a header
        except BaseException:
            self._pending = {}
            raise
        self._last.update(pending)
        if self._metrics:
            self._observe(pending)
        self._pending = {}
        self._step += 1

    def _observe(self, pending):
        """Running min/max/sum/count/first, only for metrics a define_metric summary names (the
        last value alone costs nothing: it is ``_last``)."""
        kinds_of = self._kinds_cache
        for key, value in pending.items():
            kinds = kinds_of.get(key, _UNKNOWN)
            if kinds is _UNKNOWN:
                kinds = kinds_of[key] = self._kinds_for(key)
            if kinds[0] is None or type(value) is bool or not isinstance(value, (int, float)):
                continue
            s = self._agg.get(key)
            if s is None:
                self._agg[key] = [value, value, float(value), 1, value]
                continue
            if value < s[0]:
                s[0] = value
            if value > s[1]:
                s[1] = value
            s[2] += value
            s[3] += 1

    def _kinds_for(self, key):
        for pattern, kinds, goal in self._metrics:
            if kinds is not None and fnmatch.fnmatchcase(key, pattern):
                return kinds, goal
        return None, None

    def _aggregates(self):
        out = {}
        for key, last in self._last.items():
            kinds, goal = self._kinds_cache.get(key) or self._kinds_for(key)
            if kinds is None:
                out[key] = last
                continue
            lo, hi, total, n, first = self._agg.get(key) or (None, None, 0.0, 0, None)
            for kind in kinds:
                if kind == "none":
                    continue
                if kind == "best":
                    kind = "min" if goal in (None, "minimize", "min") else "max"
                    name = f"{key}.best"
                else:
                    name = f"{key}.{kind}"
                value = {"last": last, "first": first, "min": lo, "max": hi,
                         "mean": total / n if n else None}[kind]
                if value is not None:
                    out[name] = value
        return out

    def _record_summary(self, items):
        if self._exp is None or self._exp._ptr is None:
            return
        flat = flatten_params(items, prefix="summary")
        if flat:
            self._exp.log_params(flat)

    def define_metric(self, name, step_metric=None, step_sync=None, hidden=None, summary=None,
                      goal=None, overwrite=None, **kwargs):
        """Accepted: ``summary`` (``"min"``, ``"max"``, ``"mean"``, ``"last"``, ``"first"``,
        ``"best"`` with ``goal``, ``"none"``, or several joined with commas) chooses what
        ``summary`` records for the metrics ``name`` matches (a glob such as ``"val/*"``).
        ``step_metric`` and ``hidden`` only steer W&B's charts: the expman UI charts every
        column against any other, so they change nothing on disk."""
        self._check_live("define_metric")
        if kwargs:
            raise TypeError(f"define_metric got unexpected arguments {sorted(kwargs)}")
        kinds = None
        if summary is not None:
            kinds = tuple(k.strip() for k in str(summary).split(",") if k.strip())
            bad = [k for k in kinds if k not in _SUMMARY_KINDS]
            if bad:
                raise ValueError(
                    f"define_metric({name!r}, summary={summary!r}): unknown summary {bad}; use "
                    f"one or more of {', '.join(_SUMMARY_KINDS)}"
                )
        if goal not in (None, "minimize", "maximize", "min", "max"):
            raise ValueError(f"define_metric goal must be 'minimize' or 'maximize', got {goal!r}")
        self._metrics.insert(0, (name, kinds, goal))
        self._kinds_cache.clear()
        return _MetricHandle(name, step_metric, summary, goal)

    # end of the run
    def finish(self, exit_code=None, quiet=None):
        """Flushes the pending row, records the summary, marks the run (Finished for exit code
        0 or None, else Error) and closes the experiment."""
        error = None if exit_code in (None, 0) else f"wandb.finish(exit_code={exit_code})"
        self._finish(error)

    def _flush(self):
        """The pending row and the summary into the files (at finish, and at exit)."""
        if self._exp is None or self._exp._ptr is None:
            return
        self._commit()
        values = self.summary._values()
        if values:
            self._record_summary(values)  # non-finite values are recorded as text

    def _finish(self, error):
        global run, config, summary
        if self._finished:
            return
        self._finished = True
        try:
            self._flush()
            if not self._exp.attached:  # an attached run's status is the scheduler's
                if error is None:
                    self._exp.set_finished()
                else:
                    self._exp.set_error(error)
        finally:
            self._exp.close()
            if run is self:
                run, config, summary = None, _PreInit("config"), _PreInit("summary")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None or (issubclass(exc_type, SystemExit) and exc.code in (None, 0)):
            self._finish(None)
        else:
            text = str(exc)
            self._finish(f"{exc_type.__name__}: {text}" if text else exc_type.__name__)
        return False

    def _check_live(self, what):
        if self._finished:
            raise RuntimeError(
                f"wandb.{what} after this run finished: call wandb.init() to start another run"
            )

    # W&B methods that expman does not have: each names what to do instead.
    def __getattr__(self, name):
        if name in _UNSUPPORTED:
            return _unsupported(name)
        raise AttributeError(
            f"expman.wandb.Run has no attribute {name!r} (the W&B-compatible subset: id, name, "
            "dir, project, config, summary, log, define_metric, finish)"
        )


class _MetricHandle:
    """What ``define_metric`` returns (W&B returns a metric object)."""

    def __init__(self, name, step_metric, summary, goal):
        self.name, self.step_metric, self.summary, self.goal = name, step_metric, summary, goal

    def __repr__(self):
        return f"<expman.wandb metric {self.name!r} summary={self.summary!r}>"


def _flatten_metrics(data, prefix, out):
    for key, value in data.items():
        tp = type(value)
        if (tp is float or tp is int) and not prefix and type(key) is str:
            out[key] = value  # the common case, kept cheap
            continue
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            _flatten_metrics(value, name, out)
        else:
            out[name] = metric_value(name, value)


# -- module-level API --------------------------------------------------------------------------

_IGNORED = ("entity", "save_code", "anonymous", "force", "settings", "allow_val_change",
            "magic", "reinit")  # no meaning without a server; reinit is handled below
_REFUSED = {
    "sync_tensorboard": "log the metrics with wandb.log or expman's framework integrations",
    "tensorboard": "log the metrics with wandb.log or expman's framework integrations",
    "monitor_gym": "log the episode statistics with wandb.log",
    "fork_from": "start a new run with wandb.init(resume='allow') instead",
    "resume_from": "start a new run with wandb.init(resume='allow') instead",
}


def init(project=None, name=None, config=None, tags=None, notes=None, dir=None, group=None,
         job_type=None, resume=None, id=None, mode=None, config_exclude_keys=None,
         config_include_keys=None, reinit=None, **kwargs):
    """Starts a run: an expman experiment named ``name`` (default: the project) in
    ``<dir or cwd>/<project or "uncategorized">/`` (see the module documentation).

    ``resume``: ``None``/``False``/``"never"`` starts a new experiment; ``True``, ``"allow"``
    or ``"auto"`` starts the next run (``run_0002``...) of the newest experiment of that name
    in the project directory (``id=`` picks the experiment directory by its name), continuing
    its ``_step``; else a new one; ``"must"`` raises when there is none."""
    global run, summary
    module = globals()
    for key in kwargs:
        if key in _REFUSED:
            raise NotImplementedError(f"wandb.init({key}=...) is not supported by expman.wandb: {_REFUSED[key]}")
        if key not in _IGNORED:
            raise TypeError(f"wandb.init() got an unexpected keyword argument {key!r}")
    if mode == "disabled":
        raise NotImplementedError(
            "wandb.init(mode='disabled') is not supported by expman.wandb: import the real "
            "wandb for a disabled run, or leave out the init call"
        )
    if mode not in (None, "online", "offline", "shared"):
        raise ValueError(f"wandb.init mode must be 'online', 'offline' or 'disabled', got {mode!r}")
    if run is not None and not run._finished:
        if reinit in (None, False, "default", "return_previous"):
            return run
        run.finish()

    project = project or os.environ.get("WANDB_PROJECT") or "uncategorized"
    base = Path(dir if dir is not None else os.environ.get("WANDB_DIR") or os.getcwd()) / project
    exp_name = name or os.environ.get("WANDB_NAME") or project
    tag_list = list(tags or ())
    if group:
        tag_list.append(f"group:{group}")
    if job_type:
        tag_list.append(f"job_type:{job_type}")

    cfg = _config_dict(config)
    if config_include_keys is not None:
        cfg = {k: v for k, v in cfg.items() if k in set(config_include_keys)}
    if config_exclude_keys is not None:
        cfg = {k: v for k, v in cfg.items() if k not in set(config_exclude_keys)}

    first_step = 0
    exp = None
    if resume not in (None, False, "never"):
        if resume not in (True, "allow", "auto", "must"):
            raise ValueError(f"wandb.init resume must be True, 'allow', 'auto', 'must' or 'never', got {resume!r}")
        previous = _latest_experiment(base, exp_name, id)
        if previous is not None:
            exp = Experiment.open(previous)
            first_step = _next_step(exp)
        elif resume == "must":
            raise FileNotFoundError(
                f"wandb.init(resume='must'): no experiment {id or exp_name!r} under {base} to "
                "resume; start it without resume='must' first"
            )
    elif id is not None:
        raise ValueError(
            "wandb.init(id=...) without resume: expman picks run ids itself (run_0001, ...); "
            "pass resume='allow' with id=<experiment directory name> to continue an experiment"
        )
    if exp is None:
        exp = Experiment(name=exp_name, command=command_line(), base_dir=base, tags=tag_list,
                         description=notes or "", params=flatten_params(cfg) or None)
    new = Run(exp, project, exp_name, tag_list, notes, group, job_type, first_step)
    new.config._data.update(cfg)
    if exp.current_run_id != "run_0001" and cfg:
        exp.log_params(flatten_params(cfg))  # a resumed run records its config as its own
    run = new
    module["config"] = new.config  # `config` is the argument's name here
    summary = new.summary
    return new


def _config_dict(config):
    if config is None:
        return {}
    if isinstance(config, str):
        raise NotImplementedError(
            "wandb.init(config='file.yaml') is not supported by expman.wandb: load the file "
            "yourself (yaml.safe_load) and pass the dict"
        )
    if isinstance(config, Mapping):
        return dict(config)
    if hasattr(config, "__dict__"):  # argparse.Namespace, absl-like flags objects
        return dict(vars(config))
    raise TypeError(f"wandb.init config must be a dict or a namespace, got {type(config).__name__}")


def _latest_experiment(base, name, dirname):
    """The newest experiment directory under ``base`` named ``name`` (or called ``dirname``)."""
    import json

    if not base.is_dir():
        return None
    if dirname is not None:
        path = base / dirname
        return path if (path / "config.json").is_file() else None
    found = []
    for cfg in base.glob("*/config.json"):
        try:
            with open(cfg, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        if meta.get("name") == name:
            found.append((meta.get("created_at", ""), cfg.parent.name, cfg.parent))
    return max(found)[2] if found else None


def _next_step(exp):
    """One past the largest ``_step`` any earlier run of ``exp`` logged (W&B continues the
    step count on resume)."""
    best = -1
    for path in (exp.dir / "metrics").glob("run_*.csv"):
        if path.stem == exp.run_id:
            continue
        for row in exp.load_table(path.stem):
            step = row.get("_step")
            if isinstance(step, (int, float)) and step > best:
                best = int(step)
    return best + 1


def log(data, step=None, commit=None):
    """``wandb.log``: logs into the active run (see ``Run.log``)."""
    if run is None:
        raise RuntimeError("wandb.log called before wandb.init(): call wandb.init(...) first")
    run.log(data, step=step, commit=commit)


def define_metric(name, step_metric=None, step_sync=None, hidden=None, summary=None, goal=None,
                  overwrite=None, **kwargs):
    """``wandb.define_metric`` on the active run (see ``Run.define_metric``)."""
    if run is None:
        raise RuntimeError("wandb.define_metric called before wandb.init(): call wandb.init(...) first")
    return run.define_metric(name, step_metric=step_metric, step_sync=step_sync, hidden=hidden,
                             summary=summary, goal=goal, overwrite=overwrite, **kwargs)


def finish(exit_code=None, quiet=None):
    """``wandb.finish``: finishes the active run, if any (see ``Run.finish``)."""
    if run is not None:
        run.finish(exit_code=exit_code)


def login(*args, **kwargs):
    """Nothing to log in to: expman writes to local files. Returns True, as W&B does once
    logged in, so scripts that call it run unchanged."""
    return True


@atexit.register
def _flush_at_exit():
    # Registered after expman's own exit hook (this module imports expman first), so it runs
    # before it: the pending row and the summary reach the files, then expman marks the run
    # Finished, or Error after an uncaught exception.
    current = run
    if current is None or current._finished:
        return
    try:
        current._flush()
    except Exception as e:  # at exit there is nobody left to raise to
        print(f"expman.wandb: could not flush {current!r} at exit: {e}", file=sys.stderr)
