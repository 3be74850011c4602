"""EfficientViT's MBConv on ``tome``-merged tokens, which have no grid.

The MBConv is 1x1 expand, k x k depthwise, 1x1 project.  The two 1x1
convolutions act per token, so they run on the P merged tokens (laid out on
the plan's nominal ``(h', w')`` map); the depthwise convolution needs
spatial neighbours, so it runs on the unmerged ``(H, W)`` map and its output
is merged again with the same plan.  The 1x1 convolutions, nearly all of an
MBConv's MACs, are saved as with a grid merger; the depthwise conv is not.
"""
import torch

from .efficientvit_blocks import MBConv
from .token_maps import map_to_tokens, tokens_to_map


def set_merged_mbconv(mbconv: MBConv, merged: torch.Tensor,
                      plan) -> torch.Tensor:
    """``(B, C, h', w') -> (B, C, h', w')``: ``mbconv`` on the merged tokens
    of ``plan`` (a :class:`~ltm_mm.models.layers.tome_merger.ToMePlan`),
    laid out on its nominal grid for the per-token 1x1 convolutions."""
    hidden = mbconv.inverted_conv(merged)
    # (B, M, h', w') -> (B, P, M) -> (B, N, M) -> (B, M, H, W)
    hidden = tokens_to_map(plan.unmerge(map_to_tokens(hidden)),
                           plan.source_hw)
    hidden = mbconv.depth_conv(hidden)
    # (B, M, H, W) -> (B, N, M) -> (B, P, M) -> (B, M, h', w')
    hidden = tokens_to_map(plan.merge(map_to_tokens(hidden)), plan.merged_hw)
    return mbconv.point_conv(hidden)  # (B, C, h', w')
