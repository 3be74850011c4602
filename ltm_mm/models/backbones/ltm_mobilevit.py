"""LTM-MobileViT: MobileViT with Learnable Token Merging.

Paper: *Efficient Visual Transformer by Learnable Token Merging* (LTM-
Transformer).  The network is mmpretrain's MobileViT (Mehta & Rastegari,
ICLR 2022) composed from its own building blocks and arch table, so
mmpretrain MobileViT checkpoints load unchanged (only LTM keys are
missing); every transformer layer whose merge ratio is below 1 becomes an
LTM layer (see :class:`~ltm_mm.models.layers.LTMMobileVitBlock`).  With
every ratio 1 the outputs equal mmpretrain's.
"""
from typing import Sequence, Union

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmpretrain.models.backbones.mobilenet_v2 import InvertedResidual
from mmpretrain.models.backbones.mobilevit import MobileViT
from torch import nn
from torch.utils import checkpoint as cp

from ltm_mm.registry import MODELS
from ..layers.mergers import check_merger
from ..layers.ltm_mobilevit_block import LTMMobileVitBlock
from .dilation import dilate_last_stages
from .ltm_mixin import LTMBackboneMixin
from .merge_ratios import expand_merge_ratios
from .utils import (batchnorms_to_eval, check_frozen_stages,
                    normalize_out_indices)

#: Columns of ``MobileViT.arch_settings`` for a ``mobilevit`` layer:
#: type, out channels, stride, transformer dim, ffn dim, num transformer
#: layers, expand ratio; for a ``mobilenetv2`` layer: type, out channels,
#: stride, num blocks, expand ratio.  Reused from mmpretrain, not copied.
ARCH_SETTINGS = MobileViT.arch_settings


@MODELS.register_module()
class LTMMobileViT(LTMBackboneMixin, BaseModule):
    """MobileViT backbone with Learnable Token Merging.

    Args:
        arch (str): 'xx_small', 'x_small' or 'small'.
        merge_ratios (float | Sequence[float]): a scalar r puts r on the
            first transformer layer of every MobileViT block and 1.0 on the
            others; a sequence gives one ratio per transformer layer in
            network order (9 for every arch).  1.0 everywhere is plain
            MobileViT. Defaults to 0.7.
        restore_resolution (bool): merge only inside the transformers and
            unmerge their output back to the block's input grid (the
            shortcut and fusion conv stay on it), so feature maps have
            exactly the plain backbone's shapes (detection, segmentation).
            False merges the shortcut too and lets the merged grid flow on
            (classification, as in the paper); strides are then nominal.
            Defaults to True.
        window_size (int): k of the k x k merging windows. Defaults to 3.
        num_classes (int): K of the class statistics. Defaults to 1000.
        merger (str): how each merging layer chooses ``G``: 'ltm' (the
            learned mask with the IB step), 'pool' (fixed area pooling) or
            'tome' (ToMe's bipartite matching; needs restore_resolution).
            Same merged grids and unmerge for all. Defaults to 'ltm'.
        train_merging_only (bool): freeze every other weight (and keep its
            norm layers in eval mode); only the mask modules train (the
            paper's fine-tuning setup). Defaults to False.
        detach_score_inputs (bool): while training, compute the IB step's
            scores from detached tokens, so that the loss reaches the
            backbone through the merged tokens' values and not through
            their weights; the mask modules still learn
            (:class:`~ltm_mm.models.layers.LearnableMergeMask`). Only
            ``merger='ltm'``. Defaults to False.
        eval_cuda_graphs (bool): on a GPU, replay each mask module's eval
            forward from a CUDA graph once an input shape repeats (fewer
            host-side launches; same results). Defaults to False.
        in_channels (int): input channels. Defaults to 3.
        stem_channels (int): stem output channels. Defaults to 16.
        last_exp_factor (int): expansion of the final 1x1 conv applied after
            the last stage (part of output 4). Defaults to 4.
        out_indices (int | Sequence[int]): stages to output, 0..4
            (negatives count from the end). Defaults to (4, ).
        output_stride (int): 32, or 16 / 8 to keep the last stage(s) at
            that stride by dilation, as MobileViT's DeepLabv3 does
            (:mod:`.dilation`; weights unchanged). Defaults to 32.
        frozen_stages (int): -1 freezes nothing; 0 the stem; i >= 1 the stem
            and stages 0..i-1 (params fixed, norms in eval). Defaults to -1.
        norm_eval (bool): keep BatchNorm layers in eval mode while training.
        with_cp (bool): gradient checkpointing of each stage while training.
        conv_cfg, norm_cfg, act_cfg: as mmpretrain's MobileViT.
        init_cfg: initialisation config.
    """
    arch_settings = ARCH_SETTINGS

    def __init__(self,
                 arch: str = 'small',
                 merge_ratios: Union[float, Sequence[float]] = 0.7,
                 restore_resolution: bool = True,
                 window_size: int = 3,
                 num_classes: int = 1000,
                 train_merging_only: bool = False,
                 merger: str = 'ltm',
                 detach_score_inputs: bool = False,
                 eval_cuda_graphs: bool = False,
                 in_channels: int = 3,
                 stem_channels: int = 16,
                 last_exp_factor: int = 4,
                 out_indices: Union[int, Sequence[int]] = (4, ),
                 output_stride: int = 32,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 conv_cfg=None,
                 norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='Swish'),
                 init_cfg=[
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(type='Constant', val=1,
                          layer=['_BatchNorm', 'GroupNorm'])
                 ]):
        super().__init__(init_cfg)
        if arch not in self.arch_settings:
            raise ValueError(f'unknown arch {arch!r}; choose from '
                             f'{sorted(self.arch_settings)}')
        self.arch = arch
        self.merger = check_merger(merger, restore_resolution,
                                   train_merging_only, detach_score_inputs)
        settings = self.arch_settings[arch]
        self.num_stages = len(settings)
        self.out_indices = normalize_out_indices(out_indices,
                                                 self.num_stages)
        self.frozen_stages = check_frozen_stages(frozen_stages,
                                                 self.num_stages)
        self.merge_ratios = self._per_layer_ratios(merge_ratios, settings)
        self.restore_resolution = restore_resolution
        self.train_merging_only = train_merging_only
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        block_cfg = dict(restore_resolution=restore_resolution,
                         window_size=window_size, num_classes=num_classes,
                         merger=merger)

        self.stem = ConvModule(in_channels, stem_channels, kernel_size=3,
                               stride=2, padding=1, conv_cfg=conv_cfg,
                               norm_cfg=norm_cfg, act_cfg=act_cfg)
        channels, stride = stem_channels, 2
        ratios = iter(self.merge_ratios)
        layers, out_channels, out_strides = [], [], []
        for layer_type, out_ch, layer_stride, *rest in settings:
            if layer_type == 'mobilevit':
                num_layers = rest[2]
                layer = self.make_mobilevit_layer(
                    channels, out_ch, layer_stride, *rest,
                    merge_ratios=[next(ratios) for _ in range(num_layers)],
                    **block_cfg)
            else:
                layer, _ = MobileViT.make_mobilenetv2_layer(
                    channels, out_ch, layer_stride, *rest)
            layers.append(layer)
            channels, stride = out_ch, stride * layer_stride
            out_channels.append(out_ch)
            out_strides.append(stride)
        self.layers = nn.Sequential(*layers)
        out_strides = dilate_last_stages(self.layers, out_strides,
                                         output_stride)
        self.output_stride = output_stride
        self.conv_1x1_exp = ConvModule(
            channels, last_exp_factor * channels, kernel_size=1,
            conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        out_channels[-1] = last_exp_factor * channels
        self.out_channels = tuple(out_channels[i] for i in self.out_indices)
        self.out_strides = tuple(out_strides[i] for i in self.out_indices)
        self._freeze()
        self.detach_ib_score_inputs(detach_score_inputs)
        self.use_eval_cuda_graphs(eval_cuda_graphs)

    @staticmethod
    def _per_layer_ratios(merge_ratios, settings) -> tuple:
        depths = [s[5] for s in settings if s[0] == 'mobilevit']
        return expand_merge_ratios(merge_ratios, depths, 'transformer layer')

    @staticmethod
    def make_mobilevit_layer(in_channels, out_channels, stride,
                             transformer_dim, ffn_dim, num_transformer_blocks,
                             expand_ratio=4, **block_cfg) -> nn.Sequential:
        """InvertedResidual + LTM MobileViT block (mmpretrain's layout)."""
        return nn.Sequential(
            InvertedResidual(in_channels=in_channels,
                             out_channels=out_channels, stride=stride,
                             expand_ratio=expand_ratio,
                             act_cfg=dict(type='Swish')),
            LTMMobileVitBlock(in_channels=out_channels,
                              transformer_dim=transformer_dim,
                              ffn_dim=ffn_dim, out_channels=out_channels,
                              num_transformer_blocks=num_transformer_blocks,
                              **block_cfg))

    def _freeze(self):
        frozen = []
        if self.frozen_stages >= 0:
            frozen.append(self.stem)
            frozen.extend(self.layers[:self.frozen_stages])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False
        self._freeze_all_but_merging()

    def train(self, mode: bool = True) -> 'LTMMobileViT':
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            batchnorms_to_eval(self)
        return self

    def forward(self, x: torch.Tensor) -> tuple:
        x = self.stem(x)
        outs = []
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(layer, x, use_reentrant=False)
            else:
                x = layer(x)
            if index == last:
                x = self.conv_1x1_exp(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)
