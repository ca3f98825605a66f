"""What the integrations share: a framework's configuration objects become expman parameters,
its metric values become row values, and a missing framework names the extra to install.

Parameters are a flat map of int, float, bool and str (see ``Experiment.log_params``), while a
framework hands over namespaces, dataclasses, config objects, lists, ``None`` and tensors. A
training run must not die because its learning-rate schedule is a list, so everything that is
not a parameter type is recorded as text (``[64, 32]``, ``None``, ``torch.float32``) rather than
refused; metric values, on the other hand, must be numbers (or text), and anything else is
refused naming the metric, as ``upd_row`` does.
"""

import dataclasses
import enum
import json
import math
import shlex
import sys
from collections.abc import Mapping

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_DEPTH = 16  # nested configs deeper than this are recorded as text, never recursed forever


def require(module, extra, what):
    """Imports ``module`` or raises an ImportError saying which extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{what} needs the {module!r} package, which is not installed ({e}); install it "
            f"with `pip install 'expman[{extra}]'` (or `pip install {extra}`)"
        ) from e


class ExperimentSettings:
    """The ``Experiment`` arguments an integration was given, kept until the framework says
    training starts (on rank 0 only, for Lightning): then ``create`` makes the experiment, the
    same way for every integration."""

    def __init__(self, name, base_dir, tags, params, description, capture_output):
        self.name = name
        self.base_dir = base_dir
        self.tags = tags
        self.params = params
        self.description = description
        self.capture_output = capture_output

    def create(self, name=None):
        """A new ``Experiment`` named ``name`` (default: the given name) for this process's
        command line, with the given parameters flattened."""
        from ..experiment import Experiment

        return Experiment(
            name=name or self.name, command=command_line(), base_dir=self.base_dir,
            tags=self.tags, description=self.description, capture_output=self.capture_output,
            params=flatten_params(self.params) if self.params else None,
        )


def command_line():
    """This process's command line, as the experiment's ``command``."""
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    return shlex.join(str(a) for a in argv)


def flatten_params(obj, prefix=""):
    """``obj`` (a dict, ``argparse.Namespace``, dataclass, omegaconf config or an object with
    ``to_dict()``) as a flat dict of dotted names to int, float, bool or str."""
    out = {}
    _flatten_into(out, _as_mapping(obj), prefix, 0)
    return out


def _as_mapping(obj):
    """The mapping behind a configuration object, or None when it is a leaf value."""
    if isinstance(obj, Mapping):
        omegaconf = sys.modules.get("omegaconf")
        if omegaconf is not None and isinstance(obj, omegaconf.DictConfig):
            # Resolves ${...} interpolations: the values the run used, not their recipes.
            return omegaconf.OmegaConf.to_container(obj, resolve=True)
        return obj
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict) and not isinstance(obj, type):
        # transformers' TrainingArguments (tokens masked) and PretrainedConfig have to_dict().
        d = to_dict()
        if isinstance(d, Mapping):
            return d
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if type(obj).__name__ == "Namespace" and hasattr(obj, "__dict__"):
        return vars(obj)  # argparse.Namespace and lookalikes (jsonargparse, SimpleNamespace)
    return None


def _flatten_into(out, mapping, prefix, depth):
    if mapping is None:
        return
    for key, value in mapping.items():
        # A key of "" or a non-string key (id2label's ints) still names a parameter.
        name = str(key) if str(key) != "" else "_"
        full = f"{prefix}.{name}" if prefix else name
        nested = None if depth >= _MAX_DEPTH else _as_mapping(value)
        if nested is not None:
            if not nested:
                out[full] = "{}"  # an empty section is still worth seeing
            _flatten_into(out, nested, full, depth + 1)
        else:
            out[full] = param_value(value)


def param_value(value):
    """``value`` as a parameter: numbers, booleans and text as they are; everything else as
    text, since a parameter the library cannot store must not stop the run."""
    tp = type(value)
    if tp is bool or tp is str:
        return value
    if tp is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if tp is float:
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return param_value(value.value) if isinstance(value.value, (int, float, str)) else value.name
    item = _item(value)
    if item is not None:
        return param_value(item)
    if isinstance(value, (list, tuple)):
        try:
            return json.dumps(value, default=_json_leaf)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def _json_leaf(value):
    item = _item(value)
    return item if item is not None else str(value)


def _item(value):
    """A one-element tensor or a numpy scalar as a Python number, else None."""
    tp = type(value)
    if tp.__module__.split(".")[0] not in ("numpy", "torch", "jax", "jaxlib", "tensorflow"):
        return None
    size = getattr(value, "size", None)
    n = size() if callable(size) and tp.__module__.startswith("torch") else size
    if hasattr(n, "numel"):  # torch.Size
        n = n.numel()
    try:
        if n == 1 or n is None or n == ():
            item = value.item()
            if isinstance(item, (bool, int, float, str)):
                return item
    except Exception:
        return None
    return None


def metric_value(name, value):
    """``value`` as a row value: numbers, booleans, text and None as they are, a one-element
    tensor or numpy scalar as a number; anything else raises a TypeError naming the metric."""
    tp = type(value)
    if tp is float or tp is int or tp is bool or tp is str or value is None:
        return value
    item = _item(value)
    if item is not None:
        return item
    if isinstance(value, (int, float)):  # numpy scalars and other number subclasses
        return value
    raise TypeError(
        f"metric {name!r}: expman cannot store a value of type {tp.__qualname__} "
        f"({value!r:.80}); log a number (for a tensor or array, a summary such as "
        f"float(x.mean()))"
    )
