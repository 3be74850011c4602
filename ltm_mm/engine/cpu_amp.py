"""Mixed-precision training on CPU (``tools/train.py --amp`` without a GPU).

mmengine 0.10.7's ``AmpOptimWrapper`` asserts that a GPU (or NPU, MLU,
MUSA) is available, and its loss scaler is ``torch.cuda.amp.GradScaler``,
so ``--amp`` stopped at start-up on a CPU machine.  On CPU, torch's autocast
supports only bfloat16, which has float32's exponent range: gradients do not
underflow, so no loss scaling is needed.  :class:`CPUAmpOptimWrapper` is a
plain ``OptimWrapper`` whose ``optim_context`` (the forward of every
training step) runs under ``torch.autocast('cpu', dtype=torch.bfloat16)``.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from ltm_mm.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` with bfloat16 autocast on CPU, without loss scaling.

    Args:
        dtype (str | torch.dtype): autocast dtype; only bfloat16 (CPU
            autocast supports nothing else).
        **kwargs: the arguments of :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self, dtype='bfloat16', **kwargs):
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError(f'CPU autocast supports only bfloat16, got '
                             f'dtype={dtype!r}')
        super().__init__(**kwargs)

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=torch.bfloat16):
            yield
