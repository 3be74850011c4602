"""Mask R-CNN with LTM-EfficientViT-B1 on CPU: losses, boxes and masks."""
import warnings
from pathlib import Path

import pytest
import torch
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from matching import match_detections

CONFIG = (Path(__file__).resolve().parents[2] / 'configs' /
          'ltm_mask-rcnn_efficientvit-b1_fpn_1x_coco.py')


@pytest.fixture(scope='module')
def detector():
    cfg = Config.fromfile(str(CONFIG))
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    model.init_weights()
    # spread the untrained classifiers' scores (init std 0.01 makes them all
    # equal to 4 digits, so rounding alone decides their order)
    with torch.no_grad():
        for layer in (model.rpn_head.rpn_cls, model.roi_head.bbox_head.fc_cls):
            layer.weight.normal_(0, 0.5)
    # accept low-scoring boxes so an untrained model predicts some
    model.test_cfg.rcnn.score_thr = 0.0
    return model


def test_losses_for_a_batch_of_two_sizes(detector):
    detector.train()
    packed = demo_mm_inputs(2, [(3, 224, 288), (3, 256, 192)], num_items=[3,
                                                                           2],
                            num_classes=80, with_mask=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        data = detector.data_preprocessor(packed, True)
        losses = detector.loss(data['inputs'], data['data_samples'])
    for name in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
                 'loss_mask'):
        value = losses[name]
        value = sum(value) if isinstance(value, list) else value
        assert torch.isfinite(value) and value > 0, name
    total = sum(v.sum() if torch.is_tensor(v) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    total.backward()
    masks = detector.backbone.merge_mask_modules()
    assert masks and all(m.theta.grad is not None for m in masks)


def _predict(detector, packed):
    detector.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        data = detector.data_preprocessor(packed, False)
        return detector.predict(data['inputs'], data['data_samples'])


def test_predicts_boxes_and_masks_for_two_sizes(detector):
    packed = demo_mm_inputs(2, [(3, 224, 288), (3, 256, 192)],
                            num_classes=80, with_mask=True)
    results = _predict(detector, packed)
    for result, (h, w) in zip(results, [(224, 288), (256, 192)]):
        pred = result.pred_instances
        assert len(pred) > 0
        assert pred.bboxes.shape == (len(pred), 4)
        assert pred.masks.shape == (len(pred), h, w)


def _features(detector, inputs):
    with torch.no_grad():
        return detector.neck(detector.backbone(inputs))


def test_prediction_of_an_image_does_not_depend_on_its_batch(detector):
    packed = demo_mm_inputs(3, [(3, 224, 224)] * 3, num_classes=80,
                            with_mask=True)
    detector.eval()
    inputs = detector.data_preprocessor(packed, False)['inputs']
    # the LTM backbone and the neck are batch-invariant to rounding
    for alone_map, batched_map in zip(_features(detector, inputs[1:2]),
                                      _features(detector, inputs)):
        torch.testing.assert_close(alone_map[0], batched_map[1], atol=1e-5,
                                   rtol=1e-5)
    batched = _predict(detector, packed)[1].pred_instances
    alone = _predict(detector, dict(
        inputs=packed['inputs'][1:2],
        data_samples=packed['data_samples'][1:2]))[0].pred_instances
    match = match_detections(alone, batched)
    alone = alone[match >= 0]
    mask_diff = alone.masks != batched.masks[match[match >= 0]]
    assert mask_diff.float().mean() < 1e-3
