"""EfficientViT block with Learnable Token Merging (docs/restore_mode.md).

The context module ``Z = X + LiteMLA(X)`` runs on all N tokens; the mask
module then merges Z (one G for X and Z is merging their residual sum) and
the local MBConv module runs on the merged grid.

With ``restore_resolution`` (detection, segmentation) only the MBConv branch
runs on the merged grid: its output is unmerged and added to ``Z`` on the
input grid, so the residual stream itself is never merged.  Sending the
whole stream through merge and unmerge in every block low-passes the
feature map block after block; SSDLite trained from scratch then did not
learn to regress boxes (box loss still 2.00 after 250 iterations; plain
1.51, this design 1.65; docs/restore_mode.md).

``merger`` chooses how ``G`` is made (:mod:`.mergers`): ``ltm`` (default),
``pool`` or ``tome``.  ``tome`` matches on the LiteMLA keys; its merged
tokens are a set, so the MBConv runs its 1x1 convolutions on them and its
depthwise conv on the unmerged map (:mod:`.set_merged_mbconv`).
"""
from functools import partial

import torch

from ltm_mm.ops import check_ratio
from .attention_keys import captured_output, lite_mla_keys
from .efficientvit_blocks import EfficientViTBlock
from .merged_branch import MapPlans, add_merged_branch
from .merger_contract import MergeInputs
from .mergers import build_merger, check_merger
from .set_merged_mbconv import set_merged_mbconv
from .token_maps import map_to_tokens, tokens_to_map


class LTMEfficientViTBlock(EfficientViTBlock):
    """EfficientViTBlock that merges tokens between its two modules.

    Args:
        in_channels (int): channels (unchanged by the block).
        merge_ratio (float): r in (0, 1]; 1.0 = a plain block (no mask
            module, no extra keys).
        restore_resolution (bool): unmerge the output to the input grid.
        window_size (int): k of the merging windows.
        num_classes (int): K of the class statistics.
        merger (str): 'ltm', 'pool' or 'tome' (:mod:`.mergers`).
        **kwargs: the arguments of :class:`EfficientViTBlock`.
    """

    def __init__(self,
                 in_channels: int,
                 merge_ratio: float = 1.0,
                 restore_resolution: bool = True,
                 window_size: int = 3,
                 num_classes: int = 1000,
                 merger: str = 'ltm',
                 **kwargs):
        super().__init__(in_channels, **kwargs)
        self.merger = check_merger(merger, restore_resolution)
        self.merge_ratio = check_ratio(merge_ratio)
        self.restore_resolution = restore_resolution
        self.merge_mask = build_merger(
            merger, in_channels, self.merge_ratio, window_size, num_classes) \
            if self.merge_ratio < 1.0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merge_mask is None:
            return super().forward(x)
        merger = self.merge_mask
        z, keys = self._context(x, merger.uses_attention_keys)
        source_hw = tuple(z.shape[-2:])
        tokens = map_to_tokens(z)  # (B, C, H, W) -> (B, N, C)
        plan = merger(tokens, source_hw, MergeInputs(
            input_tokens=map_to_tokens(x), attention_keys=keys))
        if plan is None:  # grid too small to shrink, or merging disabled
            return self.local_module(z)
        plans = MapPlans([plan])
        # (B, P, C) -> (B, C, h', w'); a layout only for a set merge (tome)
        merged = tokens_to_map(plan.merge(tokens), plan.merged_hw)
        if not self.restore_resolution:  # the merged grid flows on
            return self.local_module(merged)
        # only the MBConv branch runs merged; its output is unmerged and
        # added to the residual stream, which stays on the input grid
        mbconv = self.local_module.main
        branch = mbconv if plan.keeps_grid else \
            partial(set_merged_mbconv, mbconv, plan=plan)
        return add_merged_branch(z, merged, branch, plans)

    def _context(self, x: torch.Tensor, with_keys: bool):
        """``Z = X + LiteMLA(X)`` ``(B, C, H, W)`` and, ``with_keys``, the
        LiteMLA keys ``(B, N, d)`` a ``tome`` merger matches on."""
        if not with_keys:
            return self.context_module(x), None
        attention = self.context_module.main
        with captured_output(attention.qkv) as qkv:
            z = self.context_module(x)
        return z, lite_mla_keys(qkv[0], attention.head_dim)
