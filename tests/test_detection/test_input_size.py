"""An SSDLite demo config at another input size: images resized, anchors
scaled with them and strided by the real feature maps."""
from pathlib import Path

import pytest
import torch

import ltm_mm  # noqa: F401
from ltm_mm.analysis.flops import build_model
from ltm_mm.analysis.input_size import (set_ssdlite_input_size,
                                        ssdlite_feature_sizes)
from ltm_mm.apis import load_config

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / 'configs' / 'demo' / 'ssdlite_ltm-mobilevit-xs_demo.py'


def test_the_demo_size_keeps_the_demo_layout():
    cfg = load_config(str(DEMO))
    before = dict(cfg.model.bbox_head.anchor_generator)
    set_ssdlite_input_size(cfg, 320)
    # mmdet's SSDLite strides for 320, including its rounded 107
    assert cfg.model.bbox_head.anchor_generator == before
    assert before['strides'] == [16, 32, 64, 107, 160, 320]


@pytest.mark.parametrize('size', [192, 256])
def test_anchors_follow_the_feature_maps(size):
    cfg = set_ssdlite_input_size(load_config(str(DEMO)), size)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        scales = [t['scale'] for t in cfg[loader].dataset.pipeline
                  if t['type'] == 'Resize']
        assert scales == [(size, size)]
    anchors = cfg.model.bbox_head.anchor_generator
    scale = size / 320
    assert anchors.min_sizes == [round(s * scale)
                                 for s in (32, 80, 140, 200, 260, 300)]
    assert anchors.max_sizes == [round(s * scale)
                                 for s in (80, 140, 200, 260, 300, 320)]
    model = build_model(cfg).eval()
    with torch.no_grad():
        cls_scores, _ = model._forward(torch.randn(1, 3, size, size))
    sides = [score.shape[-1] for score in cls_scores]
    assert sides == ssdlite_feature_sizes(size)
    # every level's anchors are centred on its cells and inside the image
    generator = model.bbox_head.prior_generator
    priors = generator.grid_priors([(s, s) for s in sides], device='cpu')
    for side, stride, level in zip(sides, generator.strides, priors):
        centres = (level[:, :2] + level[:, 2:]) / 2
        assert centres.max() < size
        assert centres[0, 0] == pytest.approx(stride[0] / 2)
        assert side * stride[0] == pytest.approx(size, abs=side / 2 + 1)


@pytest.mark.parametrize('size', [0, 100, 32])
def test_bad_sizes_are_named(size):
    with pytest.raises(ValueError, match='multiple of 32 and at least 64'):
        set_ssdlite_input_size(load_config(str(DEMO)), size)
