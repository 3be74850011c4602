"""Early, explicit error for LTM models under DDP without unused-parameter
detection.

The mask parameters of an LTM layer (``theta`` and the mask MLP of
:class:`~ltm_mm.models.layers.LearnableMergeMask`) take no part in the loss
in some iterations: the MLP only runs once the layer has valid class
statistics (never during the first pre-training epoch, never in a model
trained without them), ``theta`` only while the layer merges (not during
warm-up epochs), and neither in a layer whose grid the ratio does not
shrink at the input size (e.g. MobileViT's stride-32 stage at 320x320:
5x5 stays 5x5 at r = 0.7).  ``DistributedDataParallel`` without
``find_unused_parameters=True`` then waits for their gradients forever and
stops at the next iteration with "Expected to have finished reduction in
the prior iteration", which names neither the layers nor the mmengine
setting that fixes it.

:func:`watch_idle_mask_parameters` watches the first training iteration:
when a trainable mask parameter gets no gradient in it, the next training
forward raises a :class:`RuntimeError` that names the layers and the
config line to add, before DDP's own error.  It costs nothing afterwards
(the hooks are removed) and nothing when unused-parameter detection is on.
"""
from typing import List, Optional

from torch.nn.parallel import DistributedDataParallel

from ltm_mm.models.layers import find_merge_masks

FIX = ("model_wrapper_cfg = dict(type='MMDistributedDataParallel', "
       "find_unused_parameters=True)")


class _IdleMaskParameterWatch:
    """Post-accumulate-grad hooks on the mask parameters plus a forward
    pre-hook on the DDP wrapper that checks them before the 2nd forward."""

    def __init__(self, model: DistributedDataParallel):
        self.params = {}  # id -> (layer index, parameter name)
        self.used = set()
        self.calls = 0
        self.handles = []
        masks = find_merge_masks(model)
        for index, mask in enumerate(masks):
            for name, param in mask.named_parameters():
                if param.requires_grad:
                    self.params[id(param)] = (index, name)
                    self.handles.append(
                        param.register_post_accumulate_grad_hook(
                            self._on_grad))
        self.num_masks = len(masks)
        self.handles.append(model.register_forward_pre_hook(self._on_forward))

    def _on_grad(self, param) -> None:
        self.used.add(id(param))

    def _on_forward(self, module, args) -> None:
        if not module.training:
            return
        self.calls += 1
        if self.calls < 2:
            return
        self.remove()
        idle = {}
        for key, (index, name) in self.params.items():
            if key not in self.used:
                idle.setdefault(index, []).append(name)
        if idle:
            raise RuntimeError(idle_mask_parameters_message(
                idle, self.num_masks))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


def idle_mask_parameters_message(idle: dict, num_masks: int) -> str:
    layers = ', '.join(f'{index} ({", ".join(sorted(names))})'
                       for index, names in sorted(idle.items()))
    return (
        f'LTM mask parameters got no gradient in the first training '
        f'iteration (LTM layers {layers}, of {num_masks}) while the model '
        f'is wrapped in DistributedDataParallel without '
        f'find_unused_parameters, so DDP would stop here. '
        f'A mask MLP is unused until its layer has class statistics, theta '
        f'while merging is off (warm-up epochs), both where the ratio does '
        f'not shrink the grid at this input size. Add to the config: '
        f'{FIX} (or, for a config without model_wrapper_cfg, '
        f'--cfg-options find_unused_parameters=True).')


def watch_idle_mask_parameters(
        model) -> Optional[_IdleMaskParameterWatch]:
    """Raise a clear error if trainable LTM mask parameters of ``model``
    get no gradient in its first training iteration while ``model`` is a
    DDP wrapper without ``find_unused_parameters``.

    Returns the watch (None when there is nothing to watch); its
    ``remove()`` uninstalls the hooks.
    """
    if not isinstance(model, DistributedDataParallel) or \
            model.find_unused_parameters:
        return None
    watch = _IdleMaskParameterWatch(model)
    if not watch.params:
        watch.remove()
        return None
    return watch


__all__: List[str] = ['watch_idle_mask_parameters',
                      'idle_mask_parameters_message', 'FIX']
