"""torch >= 2.6: ``torch.load`` defaults to ``weights_only=True``.

mmengine 0.10.7 calls ``torch.load(filename, map_location=...)`` without
``weights_only``, and a checkpoint written by its Runner holds the message
hub's ``HistoryBuffer`` objects (numpy arrays inside) and numpy scalars in
``meta``.  The restricted unpickler rejects them, so ``tools/test.py CFG CKPT``,
``load_from`` and ``--resume`` fail.  We allow exactly those types.

``builtins.getattr`` is needed because ``HistoryBuffer.__getstate__`` stores
its statistics functions, which pickle as ``getattr(HistoryBuffer, 'mean')``.
The restricted unpickler still only *calls* allow-listed callables.
"""
import builtins

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def _numpy_globals() -> list:
    multiarray = getattr(np, '_core', None) or np.core
    dtype_classes = [
        cls for cls in vars(np.dtypes).values()
        if isinstance(cls, type) and issubclass(cls, np.dtype)
    ]
    return [
        np.ndarray, np.dtype, multiarray.multiarray._reconstruct,
        multiarray.multiarray.scalar, *dtype_classes
    ]


def register_checkpoint_safe_globals() -> None:
    """Allow mmengine Runner checkpoints under ``weights_only=True``."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4 loads everything anyway
        return
    add_safe_globals([HistoryBuffer, builtins.getattr, *_numpy_globals()])
