"""EfficientViT block with Learnable Token Merging (DESIGN section 3).

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
"""
import torch

from ltm_mm.ops import check_ratio
from .efficientvit_blocks import EfficientViTBlock
from .merge_mask import LearnableMergeMask
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
        **kwargs: the arguments of :class:`EfficientViTBlock`.
    """

    def __init__(self,
                 in_channels: int,
                 merge_ratio: float = 1.0,
                 restore_resolution: bool = True,
                 window_size: int = 3,
                 num_classes: int = 1000,
                 **kwargs):
        super().__init__(in_channels, **kwargs)
        self.merge_ratio = check_ratio(merge_ratio)
        self.restore_resolution = restore_resolution
        self.merge_mask = LearnableMergeMask(
            in_channels, self.merge_ratio, window_size, num_classes) \
            if self.merge_ratio < 1.0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merge_mask is None:
            return super().forward(x)
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
