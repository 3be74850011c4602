"""LTM-EfficientViT: EfficientViT with Learnable Token Merging.

Paper: *Efficient Visual Transformer by Learnable Token Merging*.  The
network is :class:`EfficientViT` (Cai et al., ICCV 2023) with every
EfficientViTBlock whose merge ratio is below 1 replaced by an
:class:`~ltm_mm.models.layers.LTMEfficientViTBlock` (same parameter names,
so EfficientViT checkpoints load with only LTM keys missing).  With every
ratio 1 it is exactly EfficientViT.
"""
from typing import Sequence, Union

from ltm_mm.registry import MODELS
from ..layers.mergers import check_merger
from ..layers.ltm_efficientvit_block import LTMEfficientViTBlock
from .efficientvit import EfficientViT
from .ltm_mixin import LTMBackboneMixin
from .merge_ratios import expand_merge_ratios


@MODELS.register_module()
class LTMEfficientViT(LTMBackboneMixin, EfficientViT):
    """EfficientViT backbone with Learnable Token Merging.

    Args:
        arch (str | dict): as :class:`EfficientViT` ('b0'..'b3').
        merge_ratios (float | Sequence[float]): a scalar r puts r on the
            first EfficientViTBlock of each attention stage and 1.0 on the
            others; a sequence gives one ratio per EfficientViTBlock in
            network order (B1: 3 + 4 = 7). Defaults to 0.7.
        restore_resolution (bool): run only each LTM block's MBConv branch
            on the merged grid and add its unmerged output to the residual
            stream, which keeps the input grid, so outputs have the plain
            backbone's shapes (detection, segmentation). False lets the
            merged grid flow on (classification). Defaults to True.
        window_size (int): k of the merging windows. Defaults to 3.
        num_classes (int): K of the class statistics. Defaults to 1000.
        train_merging_only (bool): only the mask modules train.
        merger (str): how each merging block chooses ``G``: 'ltm' (the
            learned mask with the IB step), 'pool' (fixed area pooling) or
            'tome' (ToMe's bipartite matching; needs restore_resolution).
            Same merged grids and unmerge for all. Defaults to 'ltm'.
        detach_score_inputs (bool): as in
            :class:`~ltm_mm.models.backbones.LTMMobileViT`: the IB step's
            scores from detached tokens while training. Defaults to False.
        eval_cuda_graphs (bool): on a GPU, replay each mask module's eval
            forward from a CUDA graph once an input shape repeats (fewer
            host-side launches; same results). Defaults to False.
        **kwargs: the other arguments of :class:`EfficientViT`
            (``out_indices``, ``frozen_stages``, ``norm_eval``, ``with_cp``,
            ``init_cfg``, ...).
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b1',
                 merge_ratios: Union[float, Sequence[float]] = 0.7,
                 restore_resolution: bool = True,
                 window_size: int = 3,
                 num_classes: int = 1000,
                 train_merging_only: bool = False,
                 merger: str = 'ltm',
                 detach_score_inputs: bool = False,
                 eval_cuda_graphs: bool = False,
                 **kwargs):
        # read by make_attention_block while EfficientViT.__init__ builds the
        # stages, so set before it (plain attributes, allowed before
        # nn.Module.__init__)
        self.merger = check_merger(merger, restore_resolution,
                                   train_merging_only, detach_score_inputs)
        depths = self._parse_arch(arch)['depths']
        self._block_ratios = self._per_block_ratios(merge_ratios, depths)
        self._ltm_cfg = dict(restore_resolution=restore_resolution,
                             window_size=window_size,
                             num_classes=num_classes, merger=merger)
        super().__init__(arch=arch, **kwargs)
        self.merge_ratios = tuple(self._block_ratios.values())
        self.restore_resolution = restore_resolution
        self.train_merging_only = train_merging_only
        self._freeze_all_but_merging()
        self.detach_ib_score_inputs(detach_score_inputs)
        self.use_eval_cuda_graphs(eval_cuda_graphs)

    def _per_block_ratios(self, merge_ratios, depths) -> dict:
        """``{(stage, block): r}`` over the attention stages."""
        keys = [(stage, block) for stage in self.attention_stages
                for block in range(depths[stage + 1])]
        ratios = expand_merge_ratios(
            merge_ratios, [depths[stage + 1]
                           for stage in self.attention_stages],
            'EfficientViTBlock')
        return dict(zip(keys, ratios))

    def make_attention_block(self, in_channels: int, stage_index: int,
                             block_index: int) -> LTMEfficientViTBlock:
        return LTMEfficientViTBlock(
            in_channels,
            merge_ratio=self._block_ratios[(stage_index, block_index)],
            head_dim=self.head_dim, expand_ratio=self.expand_ratio,
            norm_cfg=self.norm_cfg, act_cfg=self.act_cfg, **self._ltm_cfg)

    def train(self, mode: bool = True) -> 'LTMEfficientViT':
        super().train(mode)
        self._freeze_all_but_merging()
        return self
