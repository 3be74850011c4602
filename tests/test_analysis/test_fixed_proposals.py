"""Two-stage detectors are timed and counted on fixed proposals."""
import pytest
import torch
from mmengine.config import Config

from ltm_mm.analysis.fixed_proposals import (fixed_proposals,
                                             num_test_proposals)
from ltm_mm.analysis.flops import TensorForward, build_model


def test_fixed_proposals_are_reproducible_boxes_inside_the_image():
    boxes = fixed_proposals(1000, 800, 1333)
    assert boxes.shape == (1000, 4)
    assert torch.equal(boxes, fixed_proposals(1000, 800, 1333))
    assert not torch.equal(boxes, fixed_proposals(1000, 800, 1333, seed=1))
    x1, y1, x2, y2 = boxes.unbind(1)
    assert (x1 >= 0).all() and (y1 >= 0).all()
    assert (x2 <= 1333).all() and (y2 <= 800).all()
    assert (x2 > x1).all() and (y2 > y1).all()
    # every FPN level gets boxes: sides from tens of px to hundreds
    sides = torch.sqrt((x2 - x1) * (y2 - y1))
    assert sides.min() < 32 and sides.max() > 400


@pytest.mark.parametrize('count, height, width', [(0, 64, 64), (10, 8, 64)])
def test_fixed_proposals_refuse_what_cannot_be_made(count, height, width):
    with pytest.raises(ValueError, match='count >= 1'):
        fixed_proposals(count, height, width)


def _mask_rcnn(config_dir, backbone_depth: int):
    """A small Mask R-CNN (ResNet-18 or -34 backbone), random weights."""
    path = config_dir / 'mask_rcnn_r18.py'
    path.write_text("_base_ = 'mmdet::mask_rcnn/mask-rcnn_r18_fpn_8xb8-amp-"
                    "lsj-200e_coco.py'\n")
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.depth = backbone_depth
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.rpn.max_per_img = 50
    return build_model(cfg)


def test_two_stage_detectors_get_the_same_proposals(tmp_path):
    seen = {}
    models = {depth: _mask_rcnn(tmp_path, depth) for depth in (18, 34)}
    for depth, model in models.items():
        roi_forward = model.roi_head.forward

        def record(feats, proposals, samples, depth=depth,
                   roi_forward=roi_forward):
            seen[depth] = [p.bboxes for p in proposals]
            return roi_forward(feats, proposals, samples)

        model.roi_head.forward = record
    inputs = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        outputs = {d: TensorForward(m)(inputs) for d, m in models.items()}
    assert num_test_proposals(models[18]) == 50
    expected = fixed_proposals(50, 96, 128)
    for depth in (18, 34):
        assert len(seen[depth]) == 2  # one set per image
        assert all(torch.equal(b, expected) for b in seen[depth])
        rpn_outs, roi_outs = outputs[depth]
        # the RPN head ran: objectness of 5 FPN levels, 3 anchors each
        cls_scores, bbox_preds = rpn_outs
        assert [tuple(c.shape[:2]) for c in cls_scores] == [(2, 3)] * 5
        # RoI outputs: class scores and box deltas of 2 x 50 RoIs, masks of
        # the first 100
        cls_score, bbox_pred, mask_preds = roi_outs
        assert cls_score.shape[0] == bbox_pred.shape[0] == 100
        assert mask_preds.shape[0] == 100
