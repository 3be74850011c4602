"""What every LTM backbone shares: its mask modules, merging-only mode and
CUDA graphs of the mask modules' eval forwards."""
from typing import List

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers import LearnableMergeMask, find_mergers
from ..layers.eval_graphs import install_eval_cuda_graphs


class LTMBackboneMixin:
    """Mixin for an ``nn.Module`` backbone that holds LTM mask modules.

    ``train_merging_only`` (the paper's fine-tuning setup, Table I) freezes
    every parameter outside the mask modules and keeps the backbone's norm
    and dropout layers in eval mode, so only the masks change.

    ``eval_cuda_graphs`` replays each mask module's eval forward on a GPU
    from a CUDA graph per input shape (:mod:`..layers.eval_graphs`): an
    eager forward then launches a few kernels per LTM layer for the mask
    module instead of twenty-odd, each of which costs host time.
    """
    train_merging_only: bool = False

    def merge_mask_modules(self) -> List[LearnableMergeMask]:
        """The mask modules of every LTM layer, in network order (unlike
        :func:`~ltm_mm.models.layers.find_merge_masks`, their statistics'
        layer names, relative to the whole model, are left as they are)."""
        return [m for _, m in find_mergers(self, [LearnableMergeMask])]

    def detach_ib_score_inputs(self, enabled: bool = True) -> None:
        """Set every mask module's ``detach_score_inputs``: while
        training, the IB step's scores are computed from detached tokens and
        direction, so no gradient reaches the backbone through them."""
        for mask in self.merge_mask_modules():
            mask.detach_score_inputs = bool(enabled)

    def use_eval_cuda_graphs(self, enabled: bool = True) -> None:
        """Turn CUDA graphs of the mask modules' eval forwards on or off."""
        for mask in self.merge_mask_modules():
            install_eval_cuda_graphs(mask, bool(enabled))

    def _freeze_all_but_merging(self) -> None:
        if not self.train_merging_only:
            return
        trainable = {id(p) for mask in self.merge_mask_modules()
                     for p in mask.parameters()}
        for module in self.modules():
            if isinstance(module, (_BatchNorm, nn.Dropout)):
                module.eval()
        for param in self.parameters():
            if id(param) not in trainable:
                param.requires_grad = False
