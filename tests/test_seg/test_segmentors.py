"""LTM segmentors (MMSegmentation): losses and gradients, per-pixel
predictions of the input size (whole and slide inference at odd sizes),
and predictions that do not depend on the batch."""
import warnings

import pytest
import torch

from seg_models import build_segmentor, load_cfg, packed_batch, random_images

#: the LTM backbones with the heads of configs/seg; the MobileViT one at
#: the demo's scale (MobileViT-XS, output stride 16, DeepLabv3 ASPP) keeps
#: the test fast, the EfficientViT-B1 one is the ADE20K config itself
CONFIGS = {
    'deeplabv3-ltm-mobilevit': 'demo/deeplabv3_ltm-mobilevit-xxs-d8_demo-seg.py',
    'segformer-head-ltm-efficientvit':
    'seg/segformer-head_ltm-efficientvit-b1_8xb2-160k_ade20k-512x512.py',
}


@pytest.fixture(scope='module', params=sorted(CONFIGS))
def segmentor(request):
    cfg = load_cfg(CONFIGS[request.param])
    # pad a training batch to its largest image (the configs pad to the
    # crop size, 128 or 512), to keep the test small
    cfg.model.data_preprocessor.update(size=None, size_divisor=32)
    model = build_segmentor(cfg)
    assert model.backbone.merge_mask_modules(), 'not an LTM backbone'
    return model


def _predict(model, images, mode='whole', crop=None, stride=None):
    model.eval()
    model.test_cfg.mode = mode
    if mode == 'slide':
        model.test_cfg.crop_size, model.test_cfg.stride = crop, stride
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return model.test_step(packed_batch(images))


def test_losses_and_gradients_for_two_sizes(segmentor):
    segmentor.train()
    # large enough for every LTM layer to merge (EfficientViT's stride-32
    # grid: 7x9 -> 6x8 at r = 0.7; 6 tokens would stay 6)
    batch = packed_batch(random_images([(224, 288), (256, 224)]),
                         with_labels=True,
                         num_classes=segmentor.decode_head.num_classes)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        data = segmentor.data_preprocessor(batch, True)
        losses = segmentor.loss(data['inputs'], data['data_samples'])
    assert data['inputs'].shape == (2, 3, 256, 288)  # padded to the largest
    loss = losses['decode.loss_ce']
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    masks = segmentor.backbone.merge_mask_modules()
    assert all(m.theta.grad is not None for m in masks)
    assert segmentor.decode_head.conv_seg.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('mode,crop,stride', [
    ('whole', None, None),
    ('slide', (160, 224), (128, 192)),  # 2 x 2 overlapping windows
])
def test_predictions_have_the_input_size(segmentor, mode, crop, stride):
    height, width = 257, 385  # odd, not a multiple of any stride
    result, = _predict(segmentor, random_images([(height, width)]), mode,
                       crop, stride)
    num_classes = segmentor.decode_head.num_classes
    assert result.pred_sem_seg.data.shape == (1, height, width)
    assert result.seg_logits.data.shape == (num_classes, height, width)
    assert result.pred_sem_seg.data.max() < num_classes
    torch.testing.assert_close(result.pred_sem_seg.data[0],
                               result.seg_logits.data.argmax(0))


def test_prediction_of_an_image_does_not_depend_on_its_batch(segmentor):
    images = random_images([(160, 224)] * 3, seed=5)
    batched = _predict(segmentor, images)[1]
    alone, = _predict(segmentor, images[1:2])
    torch.testing.assert_close(alone.seg_logits.data,
                               batched.seg_logits.data, atol=1e-4,
                               rtol=1e-4)
    # labels may differ only where two classes tie to rounding
    differ = alone.pred_sem_seg.data != batched.pred_sem_seg.data
    assert differ.float().mean() < 1e-3
