"""Loggers and callbacks that let training frameworks record into expman, each an optional extra:

- ``expman.integrations.lightning.ExpmanLogger``: a Lightning ``Logger`` (``expman[lightning]``)
- ``expman.integrations.transformers.ExpmanCallback``: a Hugging Face ``TrainerCallback``
  (``expman[transformers]``)
- ``expman.integrations.keras.ExpmanCallback``: a Keras 3 ``Callback`` (``expman[keras]``)

``import expman.wandb as wandb`` is the W&B-compatible API (no extra needed).

Importing this package imports no framework: each module imports its own when it is imported,
and says which extra to install when the framework is missing.
"""
