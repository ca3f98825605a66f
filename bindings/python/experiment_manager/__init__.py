"""The seed framework's package name, kept so existing scripts run unchanged.

``from experiment_manager.core.experiment import Experiment`` gives ``expman.Experiment``.
"""

from expman import Experiment

__all__ = ["Experiment"]
