"""SSDLite with LTM-MobileViT: predict works (compat fix) and is per-image."""
import warnings
from pathlib import Path

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from matching import match_detections

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


def _build(name):
    cfg = Config.fromfile(str(CONFIGS / name))
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg = None
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def _batch(images):
    samples = []
    for _ in images:
        sample = DetDataSample()
        sample.set_metainfo(dict(img_shape=(320, 320), ori_shape=(320, 320),
                                 scale_factor=(1.0, 1.0), pad_shape=(320,
                                                                     320)))
        samples.append(sample)
    return dict(inputs=list(images), data_samples=samples)


@pytest.fixture(scope='module')
def detector():
    torch.manual_seed(0)
    model = _build('ltm_ssdlite_mobilevit_xs.py')
    # a confident head so that predictions exist above score_thr
    model.test_cfg.score_thr = 0.0
    # spread the untrained scores, so rounding rarely decides their order
    with torch.no_grad():
        for conv in model.bbox_head.cls_convs.modules():
            if isinstance(conv, torch.nn.Conv2d):
                conv.weight.normal_(0, 0.5)
    return model


def test_ssdlite_predict_returns_boxes(detector):
    images = torch.randint(0, 255, (1, 3, 320, 320), dtype=torch.uint8)
    with torch.no_grad():
        results = detector.test_step(_batch(images))
    pred = results[0].pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) > 0
    assert pred.scores.shape == pred.labels.shape == (len(pred.bboxes), )
    assert pred.labels.max() < 80


def test_predictions_of_an_image_do_not_depend_on_its_batch(detector):
    gen = torch.Generator().manual_seed(3)
    images = torch.randint(0, 255, (3, 3, 320, 320), dtype=torch.uint8,
                           generator=gen)
    with torch.no_grad():
        # the LTM backbone and the neck are batch-invariant to rounding
        inputs = detector.data_preprocessor(_batch(images), False)['inputs']
        features = [detector.neck(detector.backbone(x))
                    for x in (inputs[1:2], inputs)]
        for alone_map, batched_map in zip(*features):
            torch.testing.assert_close(alone_map[0], batched_map[1],
                                       atol=1e-5, rtol=1e-5)
        batched = detector.test_step(_batch(images))[1].pred_instances
        alone = detector.test_step(_batch(images[1:2]))[0].pred_instances
    match_detections(alone, batched)


@pytest.mark.parametrize('name', ['ltm_ssdlite_mobilevit_s.py',
                                  'ltm_ssdlite_efficientvit_b1.py',
                                  'ltm_mask-rcnn_efficientvit-b1_fpn_1x_coco.py'])
def test_mmdet_num_class_check_accepts_ltm_detectors(name):
    """K of the ImageNet statistics (1000) must not trip NumClassCheckHook,
    which compares every module's ``num_classes`` with the 80 COCO classes.
    """
    import types

    from mmdet.datasets import CocoDataset
    from mmdet.engine.hooks import NumClassCheckHook
    model = _build(name)
    dataset = types.SimpleNamespace(metainfo=CocoDataset.METAINFO)
    runner = types.SimpleNamespace(
        model=model, train_dataloader=types.SimpleNamespace(dataset=dataset))
    NumClassCheckHook()._check_head(runner, 'train')
