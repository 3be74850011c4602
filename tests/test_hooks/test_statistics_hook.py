import types
import warnings

import pytest
import torch
from mmengine.runner import load_checkpoint, save_checkpoint
from torch import nn

from ltm_mm.hooks import LTMStatisticsHook
from ltm_mm.models.backbones import LTMMobileViT


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'LTM layer has no valid')
        yield


class _Detector(nn.Module):
    """Stands in for a detector: a backbone attribute and a preprocessor."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.data_preprocessor = nn.Identity()


def _runner(model, classes=None):
    dataset = types.SimpleNamespace(metainfo=dict(classes=classes)
                                    if classes else {})
    return types.SimpleNamespace(
        model=model, epoch=0,
        train_dataloader=types.SimpleNamespace(dataset=dataset),
        logger=types.SimpleNamespace(info=lambda msg: None))


def _with_statistics(num_classes=10):
    backbone = LTMMobileViT('xx_small', num_classes=num_classes)
    for mask in backbone.merge_mask_modules():
        stats = mask.statistics
        stats.update(torch.randn_like(stats.centroids),
                     torch.randn_like(stats.log_q).log_softmax(0),
                     torch.randn_like(stats.input_centroids), 0.1)
    return backbone


def test_statistics_of_1000_classes_into_a_model_for_10_name_both(tmp_path):
    path = tmp_path / 'k1000.pth'
    save_checkpoint({'state_dict': {f'backbone.{k}': v for k, v in
                                    _with_statistics(1000).state_dict()
                                    .items()}}, str(path))
    model = _Detector(LTMMobileViT('xx_small', num_classes=10))
    with pytest.raises(ValueError, match=r'\(1000, 64\).*\(10, 64\)'):
        load_checkpoint(model, str(path))
    # the same through init_cfg, as the COCO configs load it
    backbone = LTMMobileViT(
        'xx_small', num_classes=10,
        init_cfg=dict(type='Pretrained', checkpoint=str(path),
                      prefix='backbone.'))
    with pytest.raises(ValueError, match='num_classes=1000'):
        backbone.init_weights()


def test_frozen_mode_requires_statistics():
    hook = LTMStatisticsHook(update=False, require_statistics=True)
    with pytest.raises(RuntimeError, match='no valid class statistics'):
        hook.before_train(_runner(_Detector(LTMMobileViT('xx_small'))))
    # with statistics it passes, and nothing is recorded
    model = _Detector(_with_statistics())
    hook.before_train(_runner(model))
    assert all(not m.recording for m in model.backbone.merge_mask_modules())


def test_frozen_mode_without_requirement_only_logs():
    hook = LTMStatisticsHook(update=False, require_statistics=False)
    hook.before_train(_runner(_Detector(LTMMobileViT('xx_small'))))
    assert len(hook._masks) == 3


def test_update_mode_checks_dataset_classes():
    hook = LTMStatisticsHook(update=True)
    with pytest.raises(ValueError, match='3 classes.*num_classes=10'):
        hook.before_train(_runner(_Detector(_with_statistics(10)),
                                  classes=('a', 'b', 'c')))


def test_no_ltm_layer_means_no_work():
    model = _Detector(LTMMobileViT('xx_small', merge_ratios=1.0))
    hook = LTMStatisticsHook(update=True)
    runner = _runner(model)
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0)  # no labels needed: nothing to do
    hook.after_train_epoch(runner)
    assert hook._masks == [] and hook._handle is None


def test_warmup_epochs_disable_merging_then_enable():
    model = _Detector(_with_statistics())
    hook = LTMStatisticsHook(update=True, warmup_epochs=2)
    runner = _runner(model)
    hook.before_train(runner)
    masks = model.backbone.merge_mask_modules()
    for epoch, merging in [(0, False), (1, False), (2, True)]:
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        assert all(m.merging_enabled is merging for m in masks)
        assert all(m.recording for m in masks)
    hook.after_train(runner)
    assert all(m.merging_enabled and not m.recording for m in masks)
    with pytest.raises(ValueError, match='warmup_epochs'):
        LTMStatisticsHook(warmup_epochs=-1)


def test_frozen_mode_names_layers_collected_without_merging(monkeypatch):
    from ltm_mm.hooks import ltm_statistics_hook
    logged = []
    monkeypatch.setattr(ltm_statistics_hook, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    model = _Detector(_with_statistics())
    first = model.backbone.merge_mask_modules()[0].statistics
    first.update(first.centroids, first.log_q, first.input_centroids, 0.1,
                 reference_num_merged=49, merged_at_collection=False)
    hook = LTMStatisticsHook(update=False)
    hook.before_train(_runner(model))
    out = '\n'.join(logged)
    assert "['backbone.layers.2.1.merge_masks.0'] were collected without " \
        'merging' in out
    # the other layers were filled without a reference token count
    assert 'do not record the token count' in out
    assert 'backbone.layers.3.1.merge_masks.0' in out
