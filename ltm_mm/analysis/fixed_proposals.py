"""Two-stage detectors timed and counted on the same proposals.

mmdet's ``TwoStageDetector._forward`` (``mode='tensor'``) runs the RPN's
box decoding and NMS and hands the RoI head whatever proposals come out.
With random weights those proposals depend on the backbone's features, and
the RoI head's cost depends on them: ``RoIAlign`` with ``sampling_ratio=0``
samples each bin in proportion to the box's size.  Timing Mask R-CNN
LTM-EfficientViT-B1 against plain at 800x1333 (1 thread, one forward each,
profiled), ``RoIAlign`` alone took 0.59 s in one model and 1.51 s in the
other, more than the 0.23 s the LTM backbone saved.

:func:`two_stage_tensor_forward` runs what ``_forward`` runs, the RPN head's
convolutions included, but gives the RoI head :func:`fixed_proposals`: the
same boxes for every model at a given input size, as many as the RPN keeps
at test time (``test_cfg.rpn.max_per_img``).  What differs between two
detectors is then their backbones and necks, not their proposals.
"""
import math

import torch
from mmengine.structures import InstanceData

# mmdet's default test_cfg.rpn.max_per_img (Faster/Mask R-CNN)
DEFAULT_NUM_PROPOSALS = 1000
# the smallest side of a proposal (px): FPN's finest anchors are 32 px
MIN_SIDE = 16


def fixed_proposals(count: int, height: int, width: int,
                    seed: int = 0) -> torch.Tensor:
    """``(count, 4)`` boxes ``x1, y1, x2, y2`` inside a ``height x width``
    image, the same for the same arguments.

    Centres are uniform over the image; widths and heights are log-uniform
    from 16 px to the image's shorter side (every FPN level gets boxes),
    clipped to the image as the RPN clips its proposals.
    """
    if count < 1 or min(height, width) < MIN_SIDE:
        raise ValueError(f'need count >= 1 and an image of at least '
                         f'{MIN_SIDE} px a side, got count={count}, '
                         f'{height}x{width}')
    generator = torch.Generator().manual_seed(seed)
    size = torch.tensor([width, height], dtype=torch.float32)
    # (count, 2): centre x, y and side w, h
    centres = torch.rand(count, 2, generator=generator) * size
    log_range = math.log(min(height, width) / MIN_SIDE)
    sides = MIN_SIDE * torch.exp(
        torch.rand(count, 2, generator=generator) * log_range)
    top_left = torch.minimum(torch.maximum(centres - sides / 2,
                                           torch.zeros(2)), size - 1)
    bottom_right = torch.minimum(centres + sides / 2, size)
    bottom_right = torch.maximum(bottom_right, top_left + 1)
    return torch.cat([top_left, bottom_right], dim=1)  # (count, 4)


def num_test_proposals(detector) -> int:
    """Proposals the detector's RPN keeps per image at test time."""
    rpn_cfg = (getattr(detector, 'test_cfg', None) or {}).get('rpn') or {}
    return int(rpn_cfg.get('max_per_img', DEFAULT_NUM_PROPOSALS))


def two_stage_tensor_forward(detector, inputs: torch.Tensor,
                             data_samples) -> tuple:
    """``detector._forward`` with :func:`fixed_proposals` for the RoI head.

    Returns:
        tuple: the RPN head's outputs (objectness and box deltas per
        level) and the RoI head's (``roi_head.forward``).
    """
    feats = detector.extract_feat(inputs)
    rpn_outs = detector.rpn_head(feats)
    height, width = inputs.shape[-2:]
    boxes = fixed_proposals(num_test_proposals(detector), height,
                            width).to(inputs.device)
    proposals = [InstanceData(bboxes=boxes) for _ in data_samples]
    roi_outs = detector.roi_head.forward(feats, proposals, data_samples)
    return rpn_outs, roi_outs
