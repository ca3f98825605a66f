"""The seed framework's ``experiment_manager.core`` (see ``experiment_manager.core.experiment``)."""
