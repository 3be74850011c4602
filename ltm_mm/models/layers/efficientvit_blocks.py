"""Building blocks of EfficientViT (Cai et al., ICCV 2023).

Paper: *EfficientViT: Lightweight Multi-Scale Attention for High-Resolution
Dense Prediction*.  Structure and parameter names follow the authors'
implementation (github.com/mit-han-lab/efficientvit, as packaged by timm in
``timm/models/efficientvit_mit.py``): ``conv``/``norm`` inside a
:class:`ConvLayer`, ``depth_conv``/``point_conv`` in :class:`DSConv`,
``inverted_conv``/``depth_conv``/``point_conv`` in :class:`MBConv`,
``qkv``/``aggreg``/``proj`` in :class:`LiteMLA`, ``main`` in a
:class:`ResidualBlock` and ``context_module``/``local_module`` in an
:class:`EfficientViTBlock`, so timm checkpoints map onto them key for key.

Every block takes and returns feature maps of shape (B, C, H, W).
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from torch import nn

#: Config of the activation used throughout EfficientViT-B (hard swish).
HSWISH = dict(type='HSwish')
BN = dict(type='BN')


def _per_layer(value, num: int) -> tuple:
    """``value`` for each of ``num`` layers (a scalar or dict is repeated)."""
    if isinstance(value, (list, tuple)):
        if len(value) != num:
            raise ValueError(f'expected {num} per-layer values, got '
                             f'{len(value)}: {value!r}')
        return tuple(value)
    return (value, ) * num


def relu_linear_attention(q: torch.Tensor,
                          k: torch.Tensor,
                          v: torch.Tensor,
                          eps: float = 1e-5) -> torch.Tensor:
    """ReLU linear attention of EfficientViT (paper Eq. 2), in float32.

    ``out_n = sum_m (q_n . k_m) v_m / (sum_m q_n . k_m + eps)`` with
    ``q = ReLU(Q)``, ``k = ReLU(K)``, computed as ``q (k^T v)`` so the cost
    is linear in the number of tokens N.  Gradients flow to q, k and v.

    Args:
        q, k, v: (B, heads, N, d) queries, keys, values (before the ReLU
            kernel for q and k).
        eps: added to the normaliser (timm's value; the authors use 1e-15).

    Returns:
        (B, heads, N, d) in the dtype of ``v``.
    """
    dtype = v.dtype
    # Autocast off: the normaliser sums N products and overflows in fp16.
    with torch.autocast(device_type=v.device.type, enabled=False):
        q, k, v = F.relu(q.float()), F.relu(k.float()), v.float()
        # (B, h, d, N) @ (B, h, N, d) -> (B, h, d, d)
        kv = k.transpose(-1, -2) @ v
        k_sum = k.sum(dim=-2, keepdim=True)  # (B, h, N, d) -> (B, h, 1, d)
        numerator = q @ kv  # (B, h, N, d)
        denominator = q @ k_sum.transpose(-1, -2)  # (B, h, N, 1)
        out = numerator / (denominator + eps)
    return out.to(dtype)


class ConvLayer(nn.Module):
    """Conv2d -> optional norm -> optional activation (``same`` padding).

    Args:
        in_channels, out_channels (int): channels.
        kernel_size (int): odd kernel size. Defaults to 3.
        stride (int): Defaults to 1.
        groups (int): Defaults to 1.
        bias (bool | str): conv bias; ``'auto'`` = bias iff no norm.
        norm_cfg (dict | None): mmcv norm config; None = no norm.
        act_cfg (dict | None): mmcv activation config; None = no activation.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 groups: int = 1,
                 bias: Union[bool, str] = 'auto',
                 norm_cfg: Optional[dict] = BN,
                 act_cfg: Optional[dict] = HSWISH):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        if bias == 'auto':
            bias = norm_cfg is None
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                              stride=stride, padding=kernel_size // 2,
                              groups=groups, bias=bias)
        self.norm = build_norm_layer(norm_cfg, out_channels)[1] \
            if norm_cfg is not None else nn.Identity()
        self.act = build_activation_layer(act_cfg) \
            if act_cfg is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class DSConv(nn.Module):
    """Depthwise-separable conv: depthwise k x k, then pointwise 1 x 1.

    ``bias``, ``norm_cfg`` and ``act_cfg`` are one value for both layers or
    a pair (depth_conv, point_conv).  Default: BN on both, activation on the
    depthwise conv only (the authors' stem block).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 bias: Union[bool, str, Sequence] = 'auto',
                 norm_cfg: Union[Optional[dict], Sequence] = BN,
                 act_cfg: Union[Optional[dict], Sequence] = (HSWISH, None)):
        super().__init__()
        bias = _per_layer(bias, 2)
        norm_cfg = _per_layer(norm_cfg, 2)
        act_cfg = _per_layer(act_cfg, 2)
        self.depth_conv = ConvLayer(in_channels, in_channels, kernel_size,
                                    stride, groups=in_channels, bias=bias[0],
                                    norm_cfg=norm_cfg[0], act_cfg=act_cfg[0])
        self.point_conv = ConvLayer(in_channels, out_channels, 1,
                                    bias=bias[1], norm_cfg=norm_cfg[1],
                                    act_cfg=act_cfg[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class MBConv(nn.Module):
    """Inverted residual body: 1x1 expand, k x k depthwise, 1x1 project.

    ``bias``, ``norm_cfg`` and ``act_cfg`` are one value for all three
    layers or a triple (inverted_conv, depth_conv, point_conv).  The
    residual, where there is one, is added by :class:`ResidualBlock`.

    Args:
        expand_ratio (float): hidden channels = round(in * expand_ratio).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 expand_ratio: float = 4,
                 bias: Union[bool, str, Sequence] = 'auto',
                 norm_cfg: Union[Optional[dict], Sequence] = BN,
                 act_cfg: Union[Optional[dict], Sequence] = (HSWISH, HSWISH,
                                                             None)):
        super().__init__()
        bias = _per_layer(bias, 3)
        norm_cfg = _per_layer(norm_cfg, 3)
        act_cfg = _per_layer(act_cfg, 3)
        mid_channels = round(in_channels * expand_ratio)
        self.inverted_conv = ConvLayer(in_channels, mid_channels, 1,
                                       bias=bias[0], norm_cfg=norm_cfg[0],
                                       act_cfg=act_cfg[0])
        self.depth_conv = ConvLayer(mid_channels, mid_channels, kernel_size,
                                    stride, groups=mid_channels, bias=bias[1],
                                    norm_cfg=norm_cfg[1], act_cfg=act_cfg[1])
        self.point_conv = ConvLayer(mid_channels, out_channels, 1,
                                    bias=bias[2], norm_cfg=norm_cfg[2],
                                    act_cfg=act_cfg[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(self.inverted_conv(x)))


class GroupedPointwiseConv(nn.Conv2d):
    """A grouped 1x1 convolution without bias, computed as one batched
    matrix product.

    PyTorch's CPU convolution runs a grouped 1x1 conv as a loop over its
    groups, one im2col convolution each: 24 calls in a LiteMLA of
    EfficientViT-B1's stride-16 stage, 48 at stride 32.  As one ``matmul``
    it computes the same sums (equal to the last bit in float32 here),
    several times faster on the CPU (docs/speed.md, "Measurements behind
    the code").  Same parameter (``weight``, ``(out, in / groups, 1, 1)``) and module
    type as ``nn.Conv2d(in, out, 1, groups=groups, bias=False)``, so
    checkpoints load unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__(in_channels, out_channels, 1, groups=groups,
                         bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        if channels != self.in_channels:
            raise ValueError(f'expected {self.in_channels} input channels, '
                             f'got input of shape {tuple(x.shape)}')
        groups = self.groups
        # (out, in / g, 1, 1) -> (g, out / g, in / g)
        weight = self.weight.view(groups, -1, channels // groups)
        # (B, C, H, W) -> (B, g, C / g, H * W)
        x = x.reshape(batch, groups, channels // groups, height * width)
        # (g, out / g, in / g) @ (B, g, in / g, N) -> (B, g, out / g, N)
        # -> (B, out, H, W)
        return torch.matmul(weight, x).reshape(batch, -1, height, width)


class LiteMLA(nn.Module):
    """Lightweight multi-scale linear attention (paper Sec. 3.1, Fig. 4).

    A 1x1 conv produces Q/K/V; each aggregation branch (depthwise s x s conv
    then grouped 1x1 conv, one group per head and per Q/K/V) adds a
    multi-scale copy of them; every branch's heads run ReLU linear
    attention (:func:`relu_linear_attention`), and a 1x1 conv + norm
    projects the concatenated heads back.

    Args:
        in_channels, out_channels (int): channels.
        head_dim (int): channels per head (``dim`` in the authors' code).
        heads (int, optional): number of heads; default
            ``in_channels // head_dim * heads_ratio``.
        heads_ratio (float): Defaults to 1.0.
        scales (Sequence[int]): kernel sizes of the aggregation branches.
            Defaults to (5, ).
        norm_cfg (dict | None): norm after the projection. Defaults to BN.
        eps (float): normaliser epsilon of the attention. Defaults to 1e-5.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 head_dim: int = 8,
                 heads: Optional[int] = None,
                 heads_ratio: float = 1.0,
                 scales: Sequence[int] = (5, ),
                 norm_cfg: Optional[dict] = BN,
                 eps: float = 1e-5):
        super().__init__()
        heads = heads or int(in_channels // head_dim * heads_ratio)
        if heads < 1:
            raise ValueError(f'LiteMLA needs at least one head: in_channels '
                             f'{in_channels}, head_dim {head_dim}')
        total_dim = heads * head_dim
        self.head_dim = head_dim
        self.eps = eps
        self.qkv = ConvLayer(in_channels, 3 * total_dim, 1, bias=False,
                             norm_cfg=None, act_cfg=None)
        self.aggreg = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(3 * total_dim, 3 * total_dim, scale,
                          padding=scale // 2, groups=3 * total_dim,
                          bias=False),
                GroupedPointwiseConv(3 * total_dim, 3 * total_dim,
                                     groups=3 * heads))
            for scale in scales
        ])
        self.proj = ConvLayer(total_dim * (1 + len(scales)), out_channels, 1,
                              bias=False, norm_cfg=norm_cfg, act_cfg=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        qkv = self.qkv(x)  # (B, 3 * heads * d, H, W)
        qkv = torch.cat([qkv] + [aggreg(qkv) for aggreg in self.aggreg],
                        dim=1)  # (B, (1 + S) * 3 * heads * d, H, W)
        # Channels are laid out per head as [q | k | v], d each.
        # (B, (1 + S) * heads * 3d, H, W) -> (B, h, 3d, N) -> (B, h, N, 3d)
        # with h = (1 + S) * heads heads over all scales, N = H * W.
        qkv = qkv.reshape(B, -1, 3 * self.head_dim, H * W).transpose(-1, -2)
        q, k, v = qkv.chunk(3, dim=-1)  # 3 x (B, h, N, d)
        out = relu_linear_attention(q, k, v, self.eps)  # (B, h, N, d)
        # (B, h, N, d) -> (B, h, d, N) -> (B, h * d, H, W)
        out = out.transpose(-1, -2).reshape(B, -1, H, W)
        return self.proj(out)


class ResidualBlock(nn.Module):
    """``main(x) + x``, or just ``main(x)`` when ``shortcut`` is False.

    Keeps the authors' ``main`` name so parameter keys read
    ``...blocks.<i>.main.<layer>``.
    """

    def __init__(self, main: nn.Module, shortcut: bool = True):
        super().__init__()
        self.main = main
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.main(x)
        return out + x if self.shortcut else out


class EfficientViTBlock(nn.Module):
    """EfficientViT block: context module, then local module.

    ``context_module`` = ``x + LiteMLA(x)`` (global context over all N
    tokens), ``local_module`` = ``z + MBConv(z)`` (local information, no
    norm before the projection, as the authors' ``fewer_norm``).  Both are
    public so a subclass (e.g. an LTM block that merges tokens between
    them) can run them separately; :meth:`forward` is exactly
    ``local_module(context_module(x))``.

    Args:
        in_channels (int): channels (unchanged by the block).
        head_dim (int): channels per attention head. Defaults to 32.
        heads_ratio (float): Defaults to 1.0.
        expand_ratio (float): MBConv expansion. Defaults to 4.
        scales (Sequence[int]): LiteMLA aggregation kernels. Defaults (5, ).
        norm_cfg (dict): Defaults to BN.
        act_cfg (dict): activation of the MBConv. Defaults to HSwish.
    """

    def __init__(self,
                 in_channels: int,
                 head_dim: int = 32,
                 heads_ratio: float = 1.0,
                 expand_ratio: float = 4,
                 scales: Sequence[int] = (5, ),
                 norm_cfg: dict = BN,
                 act_cfg: dict = HSWISH):
        super().__init__()
        self.context_module = ResidualBlock(
            LiteMLA(in_channels, in_channels, head_dim=head_dim,
                    heads_ratio=heads_ratio, scales=scales,
                    norm_cfg=norm_cfg))
        self.local_module = ResidualBlock(
            MBConv(in_channels, in_channels, expand_ratio=expand_ratio,
                   bias=(True, True, False),
                   norm_cfg=(None, None, norm_cfg),
                   act_cfg=(act_cfg, act_cfg, None)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local_module(self.context_module(x))


__all__ = ['relu_linear_attention', 'ConvLayer', 'DSConv', 'MBConv',
           'LiteMLA', 'ResidualBlock', 'EfficientViTBlock']
