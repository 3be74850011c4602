"""Class statistics travel from a pre-trained backbone checkpoint into the
LTM segmentors of configs/seg (init_cfg, prefix 'backbone.') bit for bit,
stay frozen while the segmentor trains, and missing or mismatched
statistics raise the errors the detectors raise."""
import types
import warnings

import pytest
import torch
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import save_checkpoint

from ltm_mm.analysis.synthetic_statistics import fill_synthetic_statistics
from ltm_mm.hooks import LTMStatisticsHook
from seg_models import build_segmentor, load_cfg, packed_batch, random_images

LTM_CONFIGS = [
    'seg/deeplabv3_ltm-mobilevit-s-d16_4xb32-4k_voc12aug-512x512.py',
    'seg/segformer-head_ltm-efficientvit-b1_8xb2-160k_ade20k-512x512.py',
]
STAT_KEY = '.statistics.'


def _pretrained_backbone(cfg, path, num_classes):
    """A backbone of ``cfg`` with valid statistics of ``num_classes``,
    saved as a classifier checkpoint (keys 'backbone.*')."""
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.update(num_classes=num_classes, init_cfg=None)
    init_default_scope('mmseg')
    torch.manual_seed(1)
    backbone = MODELS.build(backbone_cfg)
    fill_synthetic_statistics(backbone)
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    save_checkpoint({'state_dict': state}, str(path))
    return {k: v for k, v in state.items() if STAT_KEY in k}


def _statistics(model):
    return {k: v for k, v in model.state_dict().items() if STAT_KEY in k}


@pytest.mark.parametrize('name', LTM_CONFIGS)
def test_statistics_arrive_bit_identical_and_stay_frozen(name, tmp_path):
    cfg = load_cfg(name)
    expected = _pretrained_backbone(cfg, tmp_path / 'in1k.pth', 1000)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=str(tmp_path / 'in1k.pth'),
        prefix='backbone.')
    cfg.model.data_preprocessor.size = (256, 256)
    model = build_segmentor(cfg, seed=2)
    got = _statistics(model)
    assert got.keys() == expected.keys() and got
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    # the hook of the config accepts them (frozen mode, required)
    hook_cfg, = [h for h in cfg.custom_hooks
                 if h['type'] == 'ltm_mm.LTMStatisticsHook']
    assert hook_cfg['update'] is False and hook_cfg['require_statistics']
    # one training step (batch of 2: the ASPP pools to 1x1 under BN)
    # changes weights, not statistics
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    batch = packed_batch(random_images([(256, 256)] * 2), with_labels=True,
                         num_classes=model.decode_head.num_classes)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model.train_step(batch, _Wrapper(optimizer))
    for key, value in _statistics(model).items():
        assert torch.equal(value, expected[key]), key


class _Wrapper:
    """The part of mmengine's OptimWrapper that ``train_step`` uses."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def optim_context(self, model):
        import contextlib
        return contextlib.nullcontext()

    def update_params(self, loss):
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


@pytest.mark.parametrize('name', LTM_CONFIGS)
def test_statistics_of_another_class_count_are_named(name, tmp_path):
    cfg = load_cfg(name)
    _pretrained_backbone(cfg, tmp_path / 'k10.pth', 10)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=str(tmp_path / 'k10.pth'),
        prefix='backbone.')
    with pytest.raises(ValueError, match='num_classes=10'):
        build_segmentor(cfg)


def test_missing_statistics_stop_the_config_hook():
    cfg = load_cfg(LTM_CONFIGS[1])
    model = build_segmentor(cfg)  # no checkpoint: no statistics
    hook_cfg, = cfg.custom_hooks
    hook = LTMStatisticsHook(**{k: v for k, v in hook_cfg.items()
                                if k != 'type'})
    runner = types.SimpleNamespace(
        model=model, epoch=0, logger=types.SimpleNamespace(info=print))
    with pytest.raises(RuntimeError, match='no valid class statistics'):
        hook.before_train(runner)
