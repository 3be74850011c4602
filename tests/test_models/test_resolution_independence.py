"""Statistics collected at the pre-training size drive the IB step equally
at detection size (800x1333): |u| of the same images stays within 2x."""
import types
import warnings

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample
from torch import nn

from ltm_mm.hooks import LTMStatisticsHook
from ltm_mm.models.backbones import LTMEfficientViT, LTMMobileViT

K = 3
DETECTION_HW = (800, 1333)


class _Classifier(nn.Module):
    """What the hook needs of a model: a backbone and a data preprocessor."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.data_preprocessor = nn.Identity()


def _smooth_images(num, gen):
    """Low-frequency images (6x6 noise, upsampled later) with a class
    dependent colour, so that a resized image shows the same content."""
    labels = torch.arange(num) % K
    base = torch.randn(num, 3, 6, 6, generator=gen)
    return base + 1.5 * torch.eye(3)[labels][:, :, None, None], labels


def _resize(images, hw):
    return F.interpolate(images, size=hw, mode='bilinear',
                         align_corners=False)


def _collect(model, images, labels, hw):
    """One pre-training epoch of the real hook on ``images`` at ``hw``."""
    runner = types.SimpleNamespace(
        model=model, epoch=0,
        train_dataloader=types.SimpleNamespace(
            dataset=types.SimpleNamespace(metainfo={})),
        logger=types.SimpleNamespace(info=lambda msg: None))
    hook = LTMStatisticsHook(update=True)
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    model.train()
    for start in range(0, len(images), 3):
        data = model.data_preprocessor(dict(
            inputs=_resize(images[start:start + 3], hw),
            data_samples=[DataSample().set_gt_label(int(label))
                          for label in labels[start:start + 3]]))
        with torch.no_grad():
            model.backbone(data['inputs'])
        hook.after_train_iter(runner, start)
    hook.after_train_epoch(runner)
    hook.after_train(runner)


def _mean_abs_u(backbone, image, hw):
    """Per LTM layer: mean ||u_i|| and whether the layer merges at ``hw``."""
    masks = backbone.merge_mask_modules()
    for mask in masks:
        mask.recording = True
    with torch.no_grad():
        backbone(_resize(image, hw))
    result = []
    for mask in masks:
        record = mask.record
        _, u = mask.statistics.ib_step(record.merged_mean,
                                       record.num_merged)
        result.append(float(u.norm(dim=-1).mean()))
        mask.recording = False
        mask.record = None
    return result


@pytest.mark.parametrize('build, size', [
    (lambda: LTMMobileViT('xx_small', num_classes=K), (256, 256)),
    (lambda: LTMEfficientViT('b0', num_classes=K), (224, 224)),
], ids=['mobilevit-xxs', 'efficientvit-b0'])
def test_u_at_detection_size_matches_pretraining_size(build, size):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = _Classifier(build())
    images, labels = _smooth_images(6, gen)
    _collect(model, images, labels, size)
    backbone = model.backbone.eval()
    masks = backbone.merge_mask_modules()
    assert all(m.statistics.is_valid() for m in masks)
    image = images[:1]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        small = _mean_abs_u(backbone, image, size)
        large = _mean_abs_u(backbone, image, DETECTION_HW)
    spread = [float(m.statistics.centroids.std(0).norm()) for m in masks]
    for index, (a, b) in enumerate(zip(small, large)):
        # the step is not vacuous: far above rounding (|u| / spread lies
        # between 2e-4 and 0.6 over random initial weights)
        assert a > 1e-5 * spread[index], index
        assert 0.5 < b / a < 2.0, (index, a, b)
    # without P_ref (statistics as before) phi sharpens with P and the step
    # fades at detection size: the check above would fail
    for mask in masks:
        mask.statistics.reference_num_merged.zero_()
    faded = _mean_abs_u(backbone, image, DETECTION_HW)
    assert min(b / a for a, b in zip(small, faded)) < 0.5


def test_layer_merging_only_at_detection_size_is_named():
    """MobileViT-XXS at 256: the last LTM layer's 4x4 grid does not shrink,
    so its statistics are collected without merging; at 800x1333 it merges
    and says so, naming itself."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = _Classifier(LTMMobileViT('xx_small', num_classes=K))
    images, labels = _smooth_images(3, gen)
    _collect(model, images, labels, (256, 256))
    masks = model.backbone.merge_mask_modules()
    assert [m.statistics.merged_when_collected() for m in masks] == \
        [True, True, False]
    model.backbone.eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with torch.no_grad():
            model.backbone(_resize(images[:1], (256, 256)))
        assert not [w for w in caught if 'never merged' in str(w.message)]
        with torch.no_grad():
            model.backbone(_resize(images[:1], (512, 512)))
    named = [str(w.message) for w in caught
             if 'never merged' in str(w.message)]
    assert len(named) == 1
    assert 'backbone.layers.4.1.merge_masks.0' in named[0]
