"""What of an OpenMMLab model goes into the exported graph.

Post-processing stays in PyTorch (box decoding, NMS, RoI heads, mask
pasting, resizing of segmentation logits), as in mmdeploy's partition:

* single-stage detectors (SSDLite): backbone, neck and head, the head's raw
  ``cls_scores`` and ``bbox_preds`` per level;
* two-stage detectors (Mask R-CNN): backbone and neck, the FPN levels
  ``feats``; the RPN and RoI heads run in PyTorch on them;
* segmentors: backbone and decode head, ``seg_logits`` at the head's
  stride (not resized to the input).

The exported graph's outputs are named ``<group>.<index>``
(``cls_scores.0``, ...) so that the runtime can give them back in the
nesting the PyTorch heads expect.
"""
from typing import List, NamedTuple, Tuple

import torch
from torch import nn


class OutputGroup(NamedTuple):
    """Consecutive outputs that a head reads as one list."""
    name: str
    count: int


def network_kind(model: nn.Module) -> str:
    """``'single_stage'``, ``'two_stage'`` or ``'segmentor'``."""
    if hasattr(model, 'decode_head'):
        return 'segmentor'
    if hasattr(model, 'roi_head'):
        return 'two_stage'
    if hasattr(model, 'bbox_head'):
        return 'single_stage'
    raise TypeError(f'{type(model).__name__} is neither a detector nor a '
                    f'segmentor: only those export (tools/export_onnx.py)')


def check_exportable(model: nn.Module) -> None:
    """Refuse what ONNX cannot express, saying why."""
    backbone = getattr(model, 'backbone', None)
    if getattr(backbone, 'merger', None) == 'tome':
        raise ValueError(
            "merger='tome' does not export: ToMe's bipartite matching ranks "
            'the tokens with a stable sort (aten.sort.stable, so that ties '
            'merge the same way in every run and batch), and ONNX has no '
            'stable Sort or TopK; its ties would be broken differently by '
            "each runtime. Export merger='ltm' or 'pool' models")


class DeployableNetwork(nn.Module):
    """``inputs (B, 3, H, W) -> tuple of tensors``: the exported part of
    ``model`` (module docstring), its outputs flattened group by group.

    Raises:
        TypeError: ``model`` is neither a detector nor a segmentor.
        ValueError: ``model`` merges with ``tome`` (:func:`check_exportable`).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.kind = network_kind(model)
        check_exportable(model)
        self.model = model

    def grouped(self, inputs: torch.Tensor) -> Tuple[Tuple[str, list], ...]:
        """The outputs as ``(group name, list of tensors)`` pairs."""
        if self.kind == 'single_stage':
            cls_scores, bbox_preds = self.model._forward(inputs)
            return (('cls_scores', list(cls_scores)),
                    ('bbox_preds', list(bbox_preds)))
        if self.kind == 'two_stage':
            return (('feats', list(self.model.extract_feat(inputs))), )
        return (('seg_logits', [self.model._forward(inputs)]), )

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(tensor for _, tensors in self.grouped(inputs)
                     for tensor in tensors)

    def output_groups(self, inputs: torch.Tensor) -> List[OutputGroup]:
        """The groups and their sizes for inputs like ``inputs``."""
        with torch.no_grad():
            return [OutputGroup(name, len(tensors))
                    for name, tensors in self.grouped(inputs)]


def output_names(groups: List[OutputGroup]) -> List[str]:
    """``['cls_scores.0', ..., 'bbox_preds.5']``."""
    return [f'{group.name}.{i}' for group in groups
            for i in range(group.count)]
