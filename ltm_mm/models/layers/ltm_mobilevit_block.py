"""MobileViT block with Learnable Token Merging (paper Fig. 1b).

Builds on mmpretrain's ``MobileVitBlock`` (same submodules and parameter
names, so its checkpoints load) and adds one :class:`LearnableMergeMask` per
transformer layer whose ratio is below 1.  Such an LTM layer runs attention
on the N tokens of each sequence, merges them, and runs its MLP and every
later layer on the P merged tokens.

MobileViT attends over ``p_h * p_w`` sequences per image (one per pixel
position inside a patch); each sequence gets its own ``G``.  What happens
after the transformer depends on ``restore_resolution``:

* False (classification, the paper): the shortcut is merged with the same
  plans, the fusion convolution runs on the merged grid and the merged grid
  flows on.
* True (detection, segmentation): the shortcut never leaves the input
  grid.  The fusion convolution over ``cat(shortcut, x)`` is split into its
  shortcut part, run on the input grid, and its transformer part, run on
  the merged grid and unmerged; their sum goes through the fusion's norm
  and activation.  Merging the shortcut instead (and unmerging the fused
  output) sends the whole feature map through merge and unmerge, a
  low-pass filter, and with per-sequence windows a dilated one (a sequence
  holds every ``p``-th pixel of the map).  Trained from scratch, SSDLite
  then never learned to regress boxes (box loss flat at its initial 2.0
  while the plain detector reached 0.4 in 250 iterations); with the
  shortcut kept at full resolution it learns (docs/restore_mode.md).

``merger`` chooses how ``G`` is made (:mod:`.mergers`): ``ltm`` (default),
``pool`` or ``tome``.  ``tome`` matches on the LTM layer's attention keys
and its merged tokens are a set: the later transformer layers and the 1x1
``conv_proj`` run on them (per-token operations), and the output is
unmerged before the 3x3 fusion conv, which runs on the input grid.
"""
import math
from typing import List, Sequence

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.mobilevit import MobileVitBlock
from torch import nn

from ltm_mm.ops import check_ratio
from .attention_keys import captured_output, multihead_keys
from .merged_branch import MapPlans, add_merged_branch
from .merger_contract import MergeInputs, MergerPlan
from .mergers import build_merger, check_merger
from .token_maps import fold_patches, unfold_patches


class LTMMobileVitBlock(MobileVitBlock):
    """MobileViT block whose transformer layers may merge tokens.

    Args:
        merge_ratios (Sequence[float]): one ratio per transformer layer;
            1.0 = a plain layer (no mask module, no extra keys).
        restore_resolution (bool): unmerge the output to the input grid.
        window_size (int): k of the merging windows.
        num_classes (int): K of the class statistics.
        merger (str): 'ltm', 'pool' or 'tome' (:mod:`.mergers`).
        **kwargs: the arguments of mmpretrain's ``MobileVitBlock``.
    """

    def __init__(self,
                 *args,
                 merge_ratios: Sequence[float] = (),
                 restore_resolution: bool = True,
                 window_size: int = 3,
                 num_classes: int = 1000,
                 merger: str = 'ltm',
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.merger = check_merger(merger, restore_resolution)
        num_layers = len(self.global_rep) - 1  # the last entry is a norm
        ratios = [check_ratio(r) for r in merge_ratios] or [1.0] * num_layers
        if len(ratios) != num_layers:
            raise ValueError(f'this block has {num_layers} transformer '
                             f'layers but got {len(ratios)} merge ratios')
        self.merge_ratios = tuple(ratios)
        self.restore_resolution = restore_resolution
        dim = self.global_rep[0].embed_dims
        self.merge_masks = nn.ModuleDict({
            str(i): build_merger(merger, dim, r, window_size, num_classes,
                                 index=i)
            for i, r in enumerate(ratios) if r < 1.0
        })

    def _attention(self, layer, tokens: torch.Tensor, merger):
        """``Z = tokens + attn(ln1(tokens))`` and, for a merger that matches
        on them, the attention's keys ``(S, N, d)`` (else None)."""
        if not merger.uses_attention_keys:
            return tokens + layer.attn(layer.ln1(tokens)), None
        with captured_output(layer.attn.qkv) as qkv:
            z = tokens + layer.attn(layer.ln1(tokens))
        return z, multihead_keys(qkv[0], layer.attn.num_heads)

    def _transformer(self, tokens: torch.Tensor, grid_hw):
        """Transformer layers with merging.

        ``(S, N, D) -> (S, P, D)``; returns the tokens, the final grid and
        the merge plans in order.
        """
        plans: List[MergerPlan] = []
        for index, layer in enumerate(self.global_rep[:-1]):
            merger = self.merge_masks[str(index)] \
                if str(index) in self.merge_masks else None
            if merger is None:
                tokens = layer(tokens)
                continue
            z, keys = self._attention(layer, tokens, merger)
            plan = merger(z, grid_hw, MergeInputs(
                input_tokens=tokens, attention_keys=keys,
                sizes=plans[-1].merged_sizes if plans else None))
            if plan is not None:
                z = plan.merge(z)  # (S, N, D) -> (S, P, D)
                grid_hw = plan.merged_hw
                plans.append(plan)
            tokens = layer.ffn(layer.ln2(z), identity=z)
        return self.global_rep[-1](tokens), grid_hw, plans

    def _fuse_restoring(self, shortcut: torch.Tensor, x: torch.Tensor,
                        plans: MapPlans) -> torch.Tensor:
        """The fusion conv with the shortcut on the input grid and ``x``, the
        projected transformer output, on the merged grid.

        A convolution over ``cat(shortcut, x)`` is the sum of one over
        ``shortcut`` and one over ``x``: the first runs on the input grid,
        the second is the merged branch (:func:`add_merged_branch`); their
        sum then goes through the fusion's norm and activation.
        """
        if self.conv_fusion is None:
            return plans.unmerge(x, shortcut.shape[-2:])
        fusion = self.conv_fusion
        conv = fusion.conv
        if conv.groups != 1:
            raise NotImplementedError('a grouped fusion conv cannot be split')
        split = shortcut.shape[1]

        def part(inputs, weight, bias=None):
            return F.conv2d(inputs, weight, bias, conv.stride, conv.padding,
                            conv.dilation)

        out = add_merged_branch(
            part(shortcut, conv.weight[:, :split], conv.bias), x,
            lambda merged: part(merged, conv.weight[:, split:]), plans)
        if fusion.with_norm:
            out = getattr(fusion, fusion.norm_name)(out)
        if fusion.with_activation:
            out = fusion.activate(out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.local_rep(x)
        patch_h, patch_w = self.patch_size
        _, _, height, width = x.shape
        padded_hw = (math.ceil(height / patch_h) * patch_h,
                     math.ceil(width / patch_w) * patch_w)
        resized = padded_hw != (height, width)
        if resized:  # as mmpretrain: resample to a multiple of the patch
            x = F.interpolate(x, size=padded_hw, mode='bilinear',
                              align_corners=False)
        grid_hw = (padded_hw[0] // patch_h, padded_hw[1] // patch_w)
        tokens = unfold_patches(x, self.patch_size)  # (B*p_h*p_w, N, D)
        tokens, grid_hw, plans = self._transformer(tokens, grid_hw)
        # (B*p_h*p_w, P, D) -> (B, D, p_h*h', p_w*w')
        x = fold_patches(tokens, grid_hw, self.patch_size)
        if not plans:  # mmpretrain's order: back to the input size first
            if resized:
                x = F.interpolate(x, size=(height, width), mode='bilinear',
                                  align_corners=False)
            x = self.conv_proj(x)
        else:
            x = self.conv_proj(x)  # 1x1: one output per merged token
            plans = MapPlans(plans, self.patch_size)
            if self.restore_resolution and plans.keeps_grid:
                # the shortcut never leaves the input grid (module docstring)
                return self._fuse_restoring(shortcut, x, plans)
            if self.restore_resolution:
                # set-merged tokens (tome): unmerged to the input size
                # before the 3x3 fusion conv
                x = plans.unmerge(x, shortcut.shape[-2:])
            else:  # classification: the fusion conv runs on the merged grid
                if resized:
                    shortcut = F.interpolate(shortcut, size=padded_hw,
                                             mode='bilinear',
                                             align_corners=False)
                shortcut = plans.merge(shortcut)
        if self.conv_fusion is not None:
            x = self.conv_fusion(torch.cat((shortcut, x), dim=1))
        return x
