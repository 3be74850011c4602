"""Process-wide caches of tensors that depend only on shapes.

Window tables (:mod:`.windows`) and area-pooling operators
(:mod:`.area_pool`) are built once per grid shape and reused by every model
in the process.  Whoever asks first, the cache must hold ordinary tensors:

* an eval forward under ``torch.inference_mode`` would otherwise cache
  inference tensors, which a later training forward cannot save for
  backward;
* ``torch.export`` (and the ONNX exporter built on it) runs the model's
  Python code on fake tensors: a table first built there would be a fake
  tensor, and every later eager forward of any model would fail on it.

:func:`building_constants` is the context both caches build in.  Under a
trace the cached tensors enter the graph as constants, as they do under
``torch.compile``.
"""
from contextlib import contextmanager

import torch
from torch._subclasses.fake_tensor import unset_fake_temporarily


@contextmanager
def building_constants():
    """Make real, autograd-ready tensors: outside any fake-tensor mode and
    outside inference mode."""
    with unset_fake_temporarily(), torch.inference_mode(False):
        yield
