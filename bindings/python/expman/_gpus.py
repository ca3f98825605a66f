"""GPU selection for an Experiment: ``pick_gpus``, the ``gpu_ids`` argument, and the seed's
automatic ``CUDA_VISIBLE_DEVICES``."""

import ctypes
import os
import sys
import warnings

from . import _ffi
from ._errors import UnsupportedError, shown
from ._ffi import lib

__all__ = ["pick_gpus"]


def pick_gpus(count=1):
    """The ``count`` GPUs with the most free memory (NVML, or the inventory file named by
    ``EXPMAN_GPU_INVENTORY``), as a sorted list of indices. Raises ``InvalidStateError`` when
    there is no GPU inventory (no driver) or too few GPUs."""
    count = int(count)
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    out = (ctypes.c_uint32 * max(count, 1))()
    _ffi.check(lib.expman_gpu_pick(count, ctypes.cast(out, ctypes.c_void_p) if count else None))
    return list(out[:count])


def _gpu_list(gpu_ids):
    """Validates gpu_ids: None, an int, or a sequence of non-negative ints."""
    if gpu_ids is None:
        return []
    if isinstance(gpu_ids, str):
        if gpu_ids == "auto":
            if not _ffi.features() & _ffi.FEATURE_GPU:
                raise UnsupportedError(
                    "gpu_ids='auto' needs GPU discovery, which this build of expman lacks: "
                    "reinstall with the `gpu` feature (EXPMAN_FEATURES=gpu pip install "
                    "./bindings/python), or pass explicit ids such as gpu_ids=[0, 1]"
                )
            return pick_gpus(1)
        raise TypeError(f"gpu_ids must be a list of ints or 'auto', got {shown(gpu_ids)}")
    if isinstance(gpu_ids, int) and not isinstance(gpu_ids, bool):
        gpu_ids = [gpu_ids]
    ids = []
    for g in gpu_ids:
        if isinstance(g, bool) or not hasattr(g, "__index__"):
            raise TypeError(f"gpu_ids must be ints, got {shown(g)} in {shown(gpu_ids)}")
        g = g.__index__()
        if not 0 <= g < 2**32:
            raise ValueError(
                f"gpu_ids must be GPU indices (0, 1, ...), got {g} in {shown(gpu_ids)}"
            )
        ids.append(g)
    return ids


def _export_gpus(ids):
    """The seed's automatic GPU set-up: make only ``ids`` visible to CUDA in this process.

    Only when CUDA_VISIBLE_DEVICES is not set already (by the user or the scheduler), and it
    only helps if no CUDA library has initialised yet, so it runs when the Experiment is made.
    """
    if not ids or "CUDA_VISIBLE_DEVICES" in os.environ:
        return
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in ids)
    # The ids are the ones nvidia-smi and NVML show, which are in PCI bus order; CUDA's own
    # default order (fastest first) may differ.
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    torch = sys.modules.get("torch")
    try:
        initialised = torch is not None and torch.cuda.is_initialized()
    except Exception:  # an odd torch build: we only wanted to warn
        initialised = False
    if initialised:
        warnings.warn(
            f"expman set CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}, but torch "
            "had initialised CUDA already, so it has no effect in this process; create the "
            "Experiment before touching CUDA",
            RuntimeWarning,
            stacklevel=3,
        )
