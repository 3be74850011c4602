"""What one LTM layer's eval forwards reuse instead of recomputing.

In eval, with gradients off and nothing traced, the parts of an LTM layer
that depend only on its weights, its statistics and the grid are the same
for every forward: the window logits of each grid, the IB step's prepared
statistics, the score projection, and (without statistics) the merging
weights themselves.  They are computed on the first such forward and kept
here until something that can change them happens:

* ``train(mode)`` in either direction, so ``model.eval()`` starts from the
  current weights.  mmengine's loops call it after their ``before_val_epoch``
  / ``before_test_epoch`` hooks, where ``EMAHook`` swaps the averaged
  parameters in with ``p.data.copy_()``: every validation and test pass
  computes its constants from the weights it evaluates;
* loading a state dict, moving or casting the module (``.to()``), and
  writing new class statistics.

Changing a weight in place while the model stays in eval mode is not seen:
call ``model.eval()`` again afterwards (as after mmpretrain's
``switch_to_deploy()``).  Training forwards, forwards with gradients and
traced forwards (``torch.compile``, ONNX export) never read or fill the
store: they compute everything from the parameters, and a compiled graph
fuses it.

One store serves a mask module and its :class:`ClassStatistics`, so either
can drop what both derived.  Copies and pickles start empty (values are
derived, and CUDA graphs cannot be copied).
"""
from typing import Callable, Dict, Hashable

import torch
from torch import nn


def reusable_now(training: bool) -> bool:
    """Whether a forward may read and fill the store: eval, no gradients,
    not traced."""
    return not (training or torch.is_grad_enabled()
                or torch.compiler.is_compiling())


class InferenceConstants:
    """Values derived from a layer's weights, by key (module docstring)."""

    def __init__(self):
        self._values: Dict[Hashable, object] = {}

    def get(self, key: Hashable, compute: Callable[[], object]) -> object:
        """The value stored under ``key``, computed and stored first when
        there is none."""
        value = self._values.get(key)
        if value is None:
            value = self._values[key] = compute()
        return value

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def __getstate__(self) -> dict:
        return {'_values': {}}


class WithInferenceConstants(nn.Module):
    """An ``nn.Module`` with an :class:`InferenceConstants` store, dropped
    by ``train()`` / ``eval()``, ``.to()`` and loading a state dict."""

    def __init__(self):
        super().__init__()
        self.inference_constants = InferenceConstants()

    def constant(self, key: Hashable, compute: Callable[[], object]):
        """``compute()``, kept under ``key`` while eval forwards may reuse
        it (:func:`reusable_now`)."""
        if not reusable_now(self.training):
            return compute()
        return self.inference_constants.get(key, compute)

    def drop_inference_constants(self) -> None:
        self.inference_constants.clear()

    def train(self, mode: bool = True):
        self.drop_inference_constants()
        return super().train(mode)

    def _apply(self, fn, recurse=True):
        self.drop_inference_constants()
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs):
        self.drop_inference_constants()
        super()._load_from_state_dict(*args, **kwargs)
