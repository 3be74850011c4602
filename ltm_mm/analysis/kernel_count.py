"""Kernels launched by one forward: what an LTM layer adds, counted.

On a GPU every kernel costs a launch (a few microseconds) whatever its
size, so a small model's latency follows its kernel count; on a CPU every
operator costs its dispatch.  Counting them catches a regression without
timing anything:

* CUDA: kernels recorded by the profiler (eager or compiled);
* CPU: compute operators reaching the dispatcher (views, reshapes, other
  metadata-only operators and conversions to the same dtype are not
  counted: they launch nothing).
"""
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

#: Operators that only build a view or read metadata.
_METADATA_OPS = {
    'view', '_unsafe_view', 'reshape', 'expand', 'permute', 'transpose', 't',
    'unsqueeze', 'squeeze', 'slice', 'select', 'as_strided', 'alias',
    'detach', 'split', 'split_with_sizes', 'unbind', 'chunk', 'narrow',
    'lift_fresh', 'flatten', 'unflatten', 'view_as', 'expand_as',
    'contiguous', 'numpy_T', 'sym_size', 'sym_stride', 'sym_numel',
    'dim', 'size', 'stride', 'is_same_size', 'item', '_local_scalar_dense',
}


class _OperatorCounter(TorchDispatchMode):

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # a conversion to the tensor's own dtype returns it: no kernel
        no_op = bool(args) and out is args[0]
        if func.overloadpacket.__name__ not in _METADATA_OPS and not no_op:
            self.count += 1
        return out


def count_cpu_operators(fn: Callable[[], object]) -> int:
    """Compute operators dispatched while ``fn()`` runs (eager code)."""
    with _OperatorCounter() as counter:
        fn()
    return counter.count


def cuda_events(prof) -> list:
    """The device-side events (kernels, copies) a profiler recorded."""
    return [event for event in prof.events()
            if event.device_type == torch.autograd.DeviceType.CUDA]


def count_cuda_kernels(fn: Callable[[], object]) -> int:
    """CUDA kernels launched while ``fn()`` runs (profiler, synchronised)."""
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return len(cuda_events(prof))


def count_kernels(fn: Callable[[], object], device: torch.device) -> int:
    """Kernels (CUDA) or compute operators (CPU) of one call of ``fn``."""
    if torch.device(device).type == 'cuda':
        return count_cuda_kernels(fn)
    return count_cpu_operators(fn)
