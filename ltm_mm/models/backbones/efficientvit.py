"""EfficientViT backbone (B0-B3) for OpenMMLab.

Paper: Cai et al., *EfficientViT: Lightweight Multi-Scale Attention for
High-Resolution Dense Prediction*, ICCV 2023.  Structure and parameter names
follow the authors' implementation (github.com/mit-han-lab/efficientvit) as
packaged by timm (``timm/models/efficientvit_mit.py``, ``efficientvit_b*``):
``stem.in_conv``, ``stem.res<i>``, ``stages.<s>.blocks.<j>``, so a timm
state dict maps onto this backbone key for key once its classifier ``head``
is dropped (``tools/convert_checkpoint.py efficientvit``).

Layout: a stem (3x3 conv, stride 2, then residual DSConv blocks) and four
stages at strides 4, 8, 16 and 32.  Every stage starts with a downsampling
MBConv; stages 1-2 continue with residual MBConvs, stages 3-4 with
:class:`~ltm_mm.models.layers.EfficientViTBlock` s (LiteMLA context module +
MBConv local module).
"""
from collections import OrderedDict
from typing import Sequence, Union

import torch
from mmengine.model import BaseModule
from torch import nn
from torch.utils import checkpoint as cp

from ltm_mm.registry import MODELS
from ..layers.efficientvit_blocks import (BN, HSWISH, ConvLayer, DSConv,
                                          EfficientViTBlock, MBConv,
                                          ResidualBlock)
from .utils import (batchnorms_to_eval, check_frozen_stages,
                    normalize_out_indices)


class EfficientViTStage(nn.Module):
    """A sequence of blocks, each gradient-checkpointed when ``with_cp``.

    Holds them as ``blocks`` (the authors' name), so keys read
    ``stages.<s>.blocks.<j>...``.
    """

    def __init__(self, blocks: Sequence[nn.Module], with_cp: bool = False):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            if self.with_cp and self.training:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


@MODELS.register_module()
class EfficientViT(BaseModule):
    """EfficientViT-B backbone (Cai et al., ICCV 2023).

    Args:
        arch (str | dict): 'b0', 'b1', 'b2' or 'b3', or a dict with the
            columns of :attr:`arch_settings`. Defaults to 'b1'.
        in_channels (int): input channels. Defaults to 3.
        out_indices (int | Sequence[int]): stages to output, 0..3 at strides
            4, 8, 16, 32 (negatives count from the end). Defaults to
            (0, 1, 2, 3).
        frozen_stages (int): -1 freezes nothing; 0 the stem; i in 1..4 the
            stem and stages 1..i (``self.stages[:i]``): parameters get
            ``requires_grad=False`` and the modules stay in eval mode.
            Defaults to -1.
        expand_ratio (float): MBConv expansion. Defaults to 4.
        norm_cfg (dict): Defaults to ``dict(type='BN')``.
        act_cfg (dict): Defaults to ``dict(type='HSwish')``.
        norm_eval (bool): keep BatchNorm layers in eval mode while training.
            Defaults to False.
        with_cp (bool): gradient checkpointing of every stage block while
            training (the stem is not checkpointed). Defaults to False.
        init_cfg (dict | list[dict], optional): initialisation config.

    Attributes:
        out_channels (tuple[int]): channels of each output, in order.
        out_strides (tuple[int]): stride of each output, in order.

    Subclassing: the network is built by :meth:`make_stem`,
    :meth:`make_stage`, :meth:`make_local_block` and
    :meth:`make_attention_block`; override the last to put another block
    in stages 3-4 (it must map (B, C, H, W) to (B, C, H, W)).  They run
    inside ``__init__``, so set any attribute an override reads *before*
    calling ``super().__init__()`` (as mmdet's ResNeXt does).
    """

    #: Columns:
    #:   widths   - output channels of (stem, stage 1, 2, 3, 4);
    #:   depths   - (DSConv blocks of the stem, blocks of stage 1, 2 (the
    #:              first one downsamples), EfficientViTBlocks of stage
    #:              3, 4 (after a downsampling MBConv));
    #:   head_dim - channels per LiteMLA attention head.
    arch_settings = {
        'b0': dict(widths=(8, 16, 32, 64, 128), depths=(1, 2, 2, 2, 2),
                   head_dim=16),
        'b1': dict(widths=(16, 32, 64, 128, 256), depths=(1, 2, 3, 3, 4),
                   head_dim=16),
        'b2': dict(widths=(24, 48, 96, 192, 384), depths=(1, 3, 4, 4, 6),
                   head_dim=32),
        'b3': dict(widths=(32, 64, 128, 256, 512), depths=(1, 4, 6, 6, 9),
                   head_dim=32),
    }
    num_stages = 4
    #: 0-based indices of the stages built from attention blocks.
    attention_stages = (2, 3)

    def __init__(self,
                 arch: Union[str, dict] = 'b1',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 expand_ratio: float = 4,
                 norm_cfg: dict = BN,
                 act_cfg: dict = HSWISH,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg=[
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(type='Constant', val=1,
                          layer=['_BatchNorm', 'GroupNorm'])
                 ]):
        super().__init__(init_cfg)
        settings = self._parse_arch(arch)
        self.arch = arch if isinstance(arch, str) else 'custom'
        self.widths = tuple(settings['widths'])
        self.depths = tuple(settings['depths'])
        self.head_dim = settings['head_dim']
        self.out_indices = normalize_out_indices(out_indices,
                                                 self.num_stages)
        self.frozen_stages = check_frozen_stages(frozen_stages,
                                                 self.num_stages)
        self.expand_ratio = expand_ratio
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp

        self.stem = self.make_stem(in_channels, self.widths[0],
                                   self.depths[0])
        stages, strides, stride = [], [], 2
        for index in range(self.num_stages):
            stages.append(
                self.make_stage(index, self.widths[index],
                                self.widths[index + 1],
                                self.depths[index + 1]))
            stride *= 2
            strides.append(stride)
        self.stages = nn.ModuleList(stages)
        self.out_channels = tuple(self.widths[i + 1]
                                  for i in self.out_indices)
        self.out_strides = tuple(strides[i] for i in self.out_indices)
        self._freeze_stages()

    def _parse_arch(self, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            if arch not in self.arch_settings:
                raise ValueError(f'unknown EfficientViT arch {arch!r}; '
                                 f'choose from {sorted(self.arch_settings)} '
                                 f'or pass a dict with keys widths, depths, '
                                 f'head_dim')
            return self.arch_settings[arch]
        if not isinstance(arch, dict) or set(arch) != {
                'widths', 'depths', 'head_dim'}:
            raise ValueError(f'a custom arch must be a dict with exactly the '
                             f'keys widths, depths, head_dim; got {arch!r}')
        for key in ('widths', 'depths'):
            if len(arch[key]) != self.num_stages + 1:
                raise ValueError(f'arch[{key!r}] needs {self.num_stages + 1} '
                                 f'values (stem + {self.num_stages} stages), '
                                 f'got {arch[key]!r}')
        return arch

    # ------------------------------------------------------------------
    # Building blocks (override these in subclasses)
    # ------------------------------------------------------------------
    def make_stem(self, in_channels: int, out_channels: int,
                  depth: int) -> nn.Sequential:
        """3x3 conv at stride 2, then ``depth`` residual DSConv blocks."""
        layers = OrderedDict(in_conv=ConvLayer(
            in_channels, out_channels, 3, stride=2, norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg))
        for i in range(depth):
            layers[f'res{i}'] = ResidualBlock(
                DSConv(out_channels, out_channels, norm_cfg=self.norm_cfg,
                       act_cfg=(self.act_cfg, None)))
        return nn.Sequential(layers)

    def make_stage(self, stage_index: int, in_channels: int,
                   out_channels: int, depth: int) -> EfficientViTStage:
        """Stage ``stage_index`` (0-based): downsampling MBConv, then
        ``depth - 1`` residual MBConvs (stages 0-1) or ``depth`` attention
        blocks (stages in :attr:`attention_stages`)."""
        is_attention = stage_index in self.attention_stages
        blocks = [
            self.make_local_block(in_channels, out_channels, stride=2,
                                  fewer_norm=is_attention)
        ]
        if is_attention:
            blocks += [
                self.make_attention_block(out_channels, stage_index, i)
                for i in range(depth)
            ]
        else:
            blocks += [
                self.make_local_block(out_channels, out_channels, stride=1)
                for _ in range(depth - 1)
            ]
        return EfficientViTStage(blocks, with_cp=self.with_cp)

    def make_local_block(self,
                         in_channels: int,
                         out_channels: int,
                         stride: int,
                         fewer_norm: bool = False) -> ResidualBlock:
        """MBConv; residual iff it keeps the shape.  ``fewer_norm`` (the
        downsampling block of attention stages) drops the norms of the
        first two convs, which then get biases."""
        if fewer_norm:
            cfg = dict(bias=(True, True, False),
                       norm_cfg=(None, None, self.norm_cfg))
        else:
            cfg = dict(bias=False, norm_cfg=self.norm_cfg)
        body = MBConv(in_channels, out_channels, stride=stride,
                      expand_ratio=self.expand_ratio,
                      act_cfg=(self.act_cfg, self.act_cfg, None), **cfg)
        shortcut = stride == 1 and in_channels == out_channels
        return ResidualBlock(body, shortcut=shortcut)

    def make_attention_block(self, in_channels: int, stage_index: int,
                             block_index: int) -> nn.Module:
        """Block ``block_index`` (0-based, among the attention blocks) of
        stage ``stage_index``; maps (B, C, H, W) to the same shape."""
        return EfficientViTBlock(in_channels, head_dim=self.head_dim,
                                 expand_ratio=self.expand_ratio,
                                 norm_cfg=self.norm_cfg,
                                 act_cfg=self.act_cfg)

    # ------------------------------------------------------------------
    # OpenMMLab contract
    # ------------------------------------------------------------------
    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        for module in [self.stem, *self.stages[:self.frozen_stages]]:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'EfficientViT':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            batchnorms_to_eval(self)
        return self

    def forward(self, x: torch.Tensor) -> tuple:
        """(B, in_channels, H, W) -> one (B, C_i, ~H/s_i, ~W/s_i) map per
        output index (sizes round up: every stride-2 conv pads by 1)."""
        x = self.stem(x)
        outs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)
