"""LTM backbones give the same outputs in channels-last memory format
(``tools/benchmark.py --channels-last``)."""
import copy

import pytest
import torch

from ltm_mm.analysis.synthetic_statistics import fill_synthetic_statistics
from ltm_mm.models.layers import LearnableMergeMask
from small_ltm_backbones import NAMES, small_ltm_backbone


@pytest.mark.parametrize('name', NAMES)
def test_channels_last_model_equals_contiguous(name):
    torch.manual_seed(0)
    model = small_ltm_backbone(name, ratio=0.5)
    fill_synthetic_statistics(model)
    model.eval()
    nhwc = copy.deepcopy(model).to(memory_format=torch.channels_last)
    masks = [m for m in model.modules() if isinstance(m, LearnableMergeMask)]
    for mask in masks:
        mask.recording = True  # each keeps whether its last forward merged
    x = torch.randn(2, 3, 160, 192)
    with torch.no_grad():
        expected = model(x)
        actual = nhwc(x.contiguous(memory_format=torch.channels_last))
    assert any(mask.record.merging for mask in masks), \
        'no layer merged: the test would not cover merging'
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-4)
