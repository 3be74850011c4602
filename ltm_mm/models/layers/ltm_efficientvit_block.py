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
import torch

from ltm_mm.ops import check_ratio
from .attention_keys import captured_output, lite_mla_keys
from .efficientvit_blocks import EfficientViTBlock
from .mergers import build_merger, check_merger, keeps_grid
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
        if not keeps_grid(self.merge_mask):
            return self._forward_set_merged(x)
        z = self.context_module(x)  # (B, C, H, W)
        source_hw = tuple(z.shape[-2:])
        tokens = map_to_tokens(z)  # (B, C, H, W) -> (B, N, C)
        plan = self.merge_mask(tokens, source_hw,
                               input_tokens=map_to_tokens(x))
        if plan is None:  # grid too small to shrink, or merging disabled
            return self.local_module(z)
        # (B, P, C) -> (B, C, h', w')
        merged = tokens_to_map(plan.merge(tokens), plan.merged_hw)
        if not self.restore_resolution:  # the merged grid flows on
            return self.local_module(merged)
        # only the MBConv branch runs merged; its output is unmerged
        # (B, C, h', w') -> (B, P, C) -> (B, N, C) -> (B, C, H, W) and added
        # to the residual stream, which stays on the input grid
        update = self.local_module.main(merged)
        return z + tokens_to_map(plan.unmerge(map_to_tokens(update)),
                                 source_hw)

    def _forward_set_merged(self, x: torch.Tensor) -> torch.Tensor:
        """``tome``: match on the LiteMLA keys, run the MBConv branch on the
        merged set (:func:`set_merged_mbconv`), unmerge, add to ``Z``."""
        attention = self.context_module.main
        with captured_output(attention.qkv) as qkv:
            z = self.context_module(x)  # (B, C, H, W)
        source_hw = tuple(z.shape[-2:])
        tokens = map_to_tokens(z)  # (B, C, H, W) -> (B, N, C)
        plan = self.merge_mask(tokens, source_hw,
                               metric=lite_mla_keys(qkv[0],
                                                    attention.head_dim))
        if plan is None:  # grid too small to shrink
            return self.local_module(z)
        # (B, P, C) -> (B, P, C) -> (B, N, C) -> (B, C, H, W)
        update = set_merged_mbconv(self.local_module.main, plan.merge(tokens),
                                   plan)
        return z + tokens_to_map(plan.unmerge(update), source_hw)
