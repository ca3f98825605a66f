"""The seed framework's import path for ``Experiment``; the implementation is ``expman``."""

from expman.experiment import Experiment

__all__ = ["Experiment"]
