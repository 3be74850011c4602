"""MACs and parameters of a model, plain and LTM alike (paper Tables I-III).

Counts come from mmengine's :class:`~mmengine.analysis.FlopAnalyzer` (a JIT
trace with one handle per aten op).  Its "flops" are multiply-accumulates:
a ``(M, K) @ (K, N)`` product counts ``M * K * N``.  We report them as MACs,
the paper's "FLOPs" (1 MAC = 2 FLOPs).

Counted:

* convolutions, linear layers, ``mm``/``bmm``/``matmul``/``einsum``
  (mmengine's handles);
* scaled-dot-product attention, which mmengine and torch's
  ``FlopCounterMode`` miss (``F.scaled_dot_product_attention`` traces as
  ``aten::scaled_dot_product_attention``; its CPU/CUDA kernels
  ``_scaled_dot_product_{flash_attention_for_cpu,flash_attention,
  efficient_attention,cudnn_attention,attention_math}`` are handled too):
  ``B * H * N * M * (d + d_v)`` MACs for queries ``(B, H, N, d)``, keys
  ``(B, H, M, d)`` and values ``(B, H, M, d_v)`` (``Q K^T`` and ``A V``);
* token merging / unmerging as written in :mod:`ltm_mm.ops.merge`: one
  ``F.embedding_bag`` weighted row sum, ``I * D`` MACs for ``I`` gathered
  indices of ``D``-dim rows (a merge of ``P`` targets over ``k * k``
  windows: ``P * k * k * D``);
* the baseline mergers (``merger='pool'``/``'tome'``): area pooling as two
  ``einsum`` products (mmengine's handle); ToMe's similarity ``bmm`` of
  every matching round and its size-weighted merge, one ``scatter_add``
  MAC per added element (its unmerge is a ``gather``, a copy);
* ``torch.cdist`` (distances to class centroids, as the analysis tools
  compute them; the mask module's IB step uses ``addmm``, which mmengine
  counts): ``M * K * D`` for ``(M, D)`` against ``(K, D)``;
* pooling and interpolation, by mmengine's per-element handles (tiny).

Not counted:

* normalisation layers by default (``count_norms=False``): BatchNorm folds
  into the preceding convolution at inference and LayerNorm is elementwise.
  ``count_norms=True`` restores mmengine's per-element counts (MobileViT-S
  at 256: 2.03 G, as mmpretrain's metafile; 2.00 G without);
* elementwise ops (``add``, ``mul``, activations, ``softmax``, ``div``,
  ``sum``): listed in :attr:`Complexity.uncounted`.  A merge written as
  gather + ``mul`` + ``sum`` would therefore cost 0 here: write weighted
  sums as ``einsum``/``bmm``/``embedding_bag`` to have them counted;
* pure copies and index bookkeeping (``gather``, ``index``,
  ``index_select``, ``argsort``, ``bincount``, ...): truly 0 MACs;
* the data preprocessor (normalisation of the input) and detector
  post-processing (box decoding, NMS): models run in ``mode='tensor'``.

The count is of the forward that runs: an LTM layer without valid class
statistics (an untrained model, as :func:`build_model` gives) skips its IB
step and token MLP (SSDLite-LTM-MobileViT-S at 320: 2.77 G without, 2.83 G
with statistics).  :func:`load_config_model` therefore fills synthetic
valid statistics by default, so the figure is a trained model's.
"""
import os.path as osp
from dataclasses import dataclass, field
from math import prod
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import MODELS, init_default_scope
from torch import nn

from ltm_mm.apis.cli import CLIError, load_config
from .fixed_proposals import two_stage_tensor_forward
from .synthetic_statistics import fill_synthetic_statistics

#: aten names of scaled-dot-product attention: the public op (what a JIT
#: trace records) and the kernels it dispatches to.  q, k, v come first.
SDPA_OPS = (
    'aten::scaled_dot_product_attention',
    'aten::_scaled_dot_product_flash_attention_for_cpu',
    'aten::_scaled_dot_product_flash_attention',
    'aten::_scaled_dot_product_efficient_attention',
    'aten::_scaled_dot_product_cudnn_attention',
    'aten::_scaled_dot_product_attention_math',
)
#: weighted row sums of :mod:`ltm_mm.ops.merge` (weight, indices, ...)
EMBEDDING_BAG_OPS = ('aten::embedding_bag', 'aten::_embedding_bag',
                     'aten::_embedding_bag_forward_only')
NORM_OPS = ('aten::batch_norm', 'aten::group_norm', 'aten::layer_norm',
            'aten::instance_norm')
#: integer / index bookkeeping and copies: 0 MACs, not "unsupported"
ZERO_COST_OPS = ('aten::numel', 'aten::index_select', 'aten::bincount',
                 'aten::argsort', 'aten::argmax', 'aten::one_hot',
                 'aten::__or__', 'aten::clamp_min', 'aten::clamp_max',
                 'aten::cumsum', 'aten::sort', 'aten::topk', 'aten::gather',
                 'aten::scatter')


def sdpa_macs(query_shape: Sequence[int], key_shape: Sequence[int],
              value_shape: Sequence[int]) -> int:
    """MACs of ``softmax(Q K^T) V``: ``B * H * N * M * (d + d_v)``.

    Args:
        query_shape: ``(..., N, d)``; key_shape: ``(..., M, d)``;
        value_shape: ``(..., M, d_v)``.  Leading dims (batch, heads) are
        those of the query (grouped-query keys broadcast over them).
    """
    *batch, num_queries, dim = query_shape
    num_keys, value_dim = key_shape[-2], value_shape[-1]
    return prod(batch) * num_queries * num_keys * (dim + value_dim)


def _sdpa_handle(inputs: List[Any], outputs: List[Any]) -> int:
    query, key, value = (get_shape(v) for v in inputs[:3])
    return sdpa_macs(query, key, value)


def _embedding_bag_handle(inputs: List[Any], outputs: List[Any]) -> int:
    # (R, D) rows, (I,) flat indices: one MAC per gathered element
    rows, indices = get_shape(inputs[0]), get_shape(inputs[1])
    return prod(indices) * rows[-1]


def _cdist_handle(inputs: List[Any], outputs: List[Any]) -> int:
    # (..., M, D) against (..., K, D): M * K * D
    first, second = get_shape(inputs[0]), get_shape(inputs[1])
    return prod(first) * second[-2]


def _scatter_add_handle(inputs: List[Any], outputs: List[Any]) -> int:
    # (self, dim, index, src): one multiply-accumulate per added element
    return prod(get_shape(inputs[3]))


def _baddbmm_handle(inputs: List[Any], outputs: List[Any]) -> int:
    # bias + (B, M, H) @ (B, H, N): B * M * H * N
    first, second = get_shape(inputs[1]), get_shape(inputs[2])
    return prod(first) * second[-1]


def _no_macs(inputs: List[Any], outputs: List[Any]) -> int:
    return 0


@dataclass
class Complexity:
    """What :func:`count_complexity` measured.

    Attributes:
        macs: multiply-accumulates of one forward (the paper's "FLOPs").
        params: number of parameters (buffers such as LTM class statistics
            excluded).
        input_shape: shape of the (first) input.
        by_operator: MACs per operator kind (``conv``, ``linear``,
            ``scaled_dot_product_attention``, ``embedding_bag``, ...).
        uncounted: aten ops met in the trace but not counted, with how
            often (elementwise ops, see the module docstring).
    """
    macs: int
    params: int
    input_shape: Tuple[int, ...]
    by_operator: Dict[str, int] = field(default_factory=dict)
    uncounted: Dict[str, int] = field(default_factory=dict)


def count_complexity(model: nn.Module,
                     inputs: Union[torch.Tensor, Tuple[torch.Tensor, ...]],
                     count_attention: bool = True,
                     count_norms: bool = False) -> Complexity:
    """MACs and parameters of ``model(*inputs)`` (see the module docstring
    for what is counted).

    Args:
        model: any module; traced as it is (call ``.eval()`` first for
            inference counts).
        inputs: a tensor or a tuple of positional inputs.
        count_attention: count scaled-dot-product attention (False gives
            what plain mmengine reports, to see the attention's share).
        count_norms: count normalisation layers as mmengine does.
    """
    inputs = (inputs, ) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    handles = {name: None for name in ZERO_COST_OPS}
    handles.update({name: _embedding_bag_handle for name in EMBEDDING_BAG_OPS})
    handles['aten::cdist'] = _cdist_handle
    handles['aten::baddbmm'] = _baddbmm_handle
    handles['aten::scatter_add'] = _scatter_add_handle
    if count_attention:  # else left uncounted, as plain mmengine does
        handles.update({name: _sdpa_handle for name in SDPA_OPS})
    if not count_norms:  # (None would not override mmengine's handles)
        handles.update({name: _no_macs for name in NORM_OPS})
    analyzer.set_op_handle(**handles)
    with torch.no_grad():
        macs = analyzer.total()
    return Complexity(
        macs=int(macs),  # mmengine's einsum handle gives floats
        params=sum(p.numel() for p in model.parameters()),
        input_shape=tuple(inputs[0].shape),
        by_operator={op: int(n) for op, n in analyzer.by_operator().items()
                     if n},
        uncounted=dict(analyzer.unsupported_ops()))


class TensorForward(nn.Module):
    """``inputs -> model(inputs, mode='tensor')`` for OpenMMLab models.

    Detectors run backbone, neck and head (``_forward``: no box decoding or
    NMS); two-stage detectors run their RPN head's convolutions and give
    the RoI head fixed proposals, the same for every model of an input size
    (:mod:`.fixed_proposals`), with image metas made from the input shape.
    Segmentors run backbone and decode head (logits at the head's stride,
    not resized to the input; no slide windows), classifiers backbone, neck
    and head (class scores); any other module is called as
    ``module(inputs)``.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def _data_samples(self, inputs: torch.Tensor):
        if not hasattr(self.model, 'rpn_head'):
            return None
        from mmdet.structures import DetDataSample
        height, width = inputs.shape[-2:]
        meta = dict(img_shape=(height, width), ori_shape=(height, width),
                    pad_shape=(height, width), scale_factor=(1.0, 1.0),
                    batch_input_shape=(height, width))
        return [DetDataSample(metainfo=meta) for _ in range(len(inputs))]

    def forward(self, inputs: torch.Tensor):
        if not isinstance(self.model, BaseModel):
            return self.model(inputs)
        data_samples = self._data_samples(inputs)
        if data_samples is not None and hasattr(self.model, 'roi_head'):
            return two_stage_tensor_forward(self.model, inputs, data_samples)
        return self.model(inputs, data_samples, mode='tensor')


def build_model(cfg: Config) -> nn.Module:
    """``cfg.model`` built in the config's scope, in eval mode, weights not
    loaded (``init_cfg`` is ignored: counts and timings need no weights)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model.copy()
    # as the Runner does: a top-level data_preprocessor fills the model's
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    model.eval()  # mmpretrain backbones' train() returns None: no chaining
    return model


def _test_pipeline(cfg: Config) -> Optional[list]:
    for key in ('test_dataloader', 'val_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset')
        while isinstance(dataset, dict):
            if dataset.get('pipeline'):
                return dataset['pipeline']
            dataset = dataset.get('dataset')  # dataset wrappers
    return cfg.get('test_pipeline')


def _hw(size) -> Tuple[int, int]:
    """An int ``s`` -> ``(s, s)``; a pair is OpenMMLab's ``(w, h)``."""
    if isinstance(size, int):
        return size, size
    width, height = size
    return int(height), int(width)


def _segmentor_input_size(cfg: Config) -> Optional[Tuple[int, int]]:
    """``(H, W)`` one forward of an MMSegmentation segmentor sees: the
    window of slide inference (``test_cfg.crop_size``), else the crop size
    its data preprocessor pads to; None for other models."""
    model = cfg.get('model') or {}
    if 'decode_head' not in model:
        return None
    test_cfg = model.get('test_cfg') or {}
    size = test_cfg.get('crop_size') if test_cfg.get('mode') == 'slide' \
        else (model.get('data_preprocessor') or {}).get('size')
    return None if size is None else (int(size[0]), int(size[1]))


def input_size_from_config(cfg: Config) -> Optional[Tuple[int, int]]:
    """``(H, W)`` the test pipeline produces, or None if it cannot tell.

    Segmentors (MMSegmentation, crop sizes are ``(h, w)``): the slide
    window, or the training crop for whole-image inference, since their
    test pipelines resize to a bounding box that few images fill.
    Otherwise the last fixed-size step wins: ``CenterCrop(crop_size)`` or
    ``Resize``/``ResizeEdge``/``RandomResize`` ``scale`` (an int is a
    square; a pair is ``(w, h)``, for a ``keep_ratio`` resize its bounding
    box, e.g. ``(1333, 800)`` -> ``(800, 1333)``).
    """
    size = _segmentor_input_size(cfg)
    if size is not None:
        return size
    for step in _test_pipeline(cfg) or []:
        if step.get('crop_size') is not None:
            size = _hw(step['crop_size'])
        elif step.get('scale') is not None and 'Resize' in str(
                step.get('type')):
            size = _hw(step['scale'])
    return size


@dataclass
class ConfigModel:
    """A model built from a config, ready to count or time."""
    name: str
    model: nn.Module  # TensorForward around the built model
    input_size: Tuple[int, int]  # (H, W)

    def dummy_inputs(self, batch_size: int = 1,
                     channels: int = 3) -> torch.Tensor:
        return torch.randn(batch_size, channels, *self.input_size)


def load_config_model(path: str,
                      input_size: Optional[Sequence[int]] = None,
                      synthetic_statistics: bool = True) -> ConfigModel:
    """Build the model of the config at ``path`` for analysis.

    With ``synthetic_statistics`` (default) every LTM layer gets random valid
    class statistics, so it runs the IB step as a trained model does
    (:func:`~ltm_mm.analysis.synthetic_statistics.fill_synthetic_statistics`).

    Raises:
        CLIError: the config is missing, or no ``input_size`` was given and
            the test pipeline does not fix one.
    """
    cfg = load_config(path)
    if input_size is None:
        input_size = input_size_from_config(cfg)
        if input_size is None:
            raise CLIError(f'cannot tell the input size from the test '
                           f'pipeline of {path!r}; pass --shape H W')
    model = build_model(cfg)
    if synthetic_statistics:
        fill_synthetic_statistics(model)
    model = TensorForward(model).eval()
    name = osp.splitext(osp.basename(path))[0]
    return ConfigModel(name, model, tuple(int(s) for s in input_size))


def config_complexity(path: str,
                      input_size: Optional[Sequence[int]] = None,
                      synthetic_statistics: bool = True,
                      **kwargs) -> Complexity:
    """:func:`count_complexity` of a config's model on a ``(1, 3, H, W)``
    batch (``input_size`` or the test pipeline's)."""
    loaded = load_config_model(path, input_size, synthetic_statistics)
    return count_complexity(loaded.model, loaded.dummy_inputs(), **kwargs)
