"""The step both LTM blocks share: merge a feature map, run one branch on
the merged map, unmerge the branch's output and add it to a residual that
never left the input grid (docs/restore_mode.md).

:class:`MapPlans` applies a block's plans (any merger's,
:mod:`.merger_contract`) to feature maps: MobileViT's maps are unfolded
into one token sequence per pixel position of a patch, EfficientViT's are
one sequence per image (``patch_size=None``).
"""
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .merger_contract import MergerPlan
from .token_maps import (fold_patches, map_to_tokens, tokens_to_map,
                         unfold_patches)


@dataclass
class MapPlans:
    """A block's plans, in the order they merged, applied to maps.

    Attributes:
        plans: at least one plan; each merges the previous one's output.
        patch_size: MobileViT's ``(p_h, p_w)``; None for one sequence per
            image.
    """
    plans: Sequence[MergerPlan]
    patch_size: Optional[Tuple[int, int]] = None

    def __post_init__(self):
        if not self.plans:
            raise ValueError('MapPlans needs at least one plan')

    @property
    def keeps_grid(self) -> bool:
        return self.plans[-1].keeps_grid

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        if self.patch_size is None:
            return map_to_tokens(x)  # (B, C, H, W) -> (B, N, C)
        return unfold_patches(x, self.patch_size)  # -> (B*p_h*p_w, N, C)

    def _map(self, tokens: torch.Tensor, grid_hw) -> torch.Tensor:
        if self.patch_size is None:
            return tokens_to_map(tokens, grid_hw)  # (B, N, C) -> (B, C, h, w)
        # (B*p_h*p_w, N, C) -> (B, C, p_h*h, p_w*w)
        return fold_patches(tokens, grid_hw, self.patch_size)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        """Source map -> merged map, through every plan."""
        tokens = self._tokens(x)
        for plan in self.plans:
            tokens = plan.merge(tokens)
        return self._map(tokens, self.plans[-1].merged_hw)

    def unmerge(self, x: torch.Tensor,
                out_hw: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Merged map -> source map, plans in reverse; resized (bilinear) to
        ``out_hw`` when that differs from the source grid (MobileViT pads
        maps to a multiple of its patch)."""
        tokens = self._tokens(x)
        for plan in reversed(self.plans):
            tokens = plan.unmerge(tokens)
        x = self._map(tokens, self.plans[0].source_hw)
        if out_hw is not None and tuple(x.shape[-2:]) != tuple(out_hw):
            x = F.interpolate(x, size=tuple(out_hw), mode='bilinear',
                              align_corners=False)
        return x


def add_merged_branch(residual: torch.Tensor, merged: torch.Tensor,
                      branch: Callable[[torch.Tensor], torch.Tensor],
                      plans: MapPlans) -> torch.Tensor:
    """``residual + unmerge(branch(merged))``.

    Only ``branch`` runs on the merged map; ``residual`` (``(B, C, H, W)``)
    stays on the input grid, so the feature map is not low-passed by merge
    and unmerge block after block.
    """
    return residual + plans.unmerge(branch(merged), residual.shape[-2:])
