"""The mask module under bfloat16 autocast and a whole LTM backbone in
float16 with degenerate (one sample per class) statistics."""
import warnings

import pytest
import torch

from ltm_mm.models.backbones import LTMMobileViT
from ltm_mm.models.layers import LearnableMergeMask
from ltm_mm.statistics import ClassStatisticsAccumulator

K, DIM = 6, 32


def _mask_with_large_statistics():
    """Token means with ||x||^2 ~ 1e4 whose statistics are valid."""
    gen = torch.Generator().manual_seed(0)
    mask = LearnableMergeMask(DIM, 0.5, num_classes=K)
    beta = 1.0 / (36 * 0.5)
    # scores -2 <MLP(z), u> of order 1 against logits of order 1
    mask.mlp_out.weight.data.normal_(0, 0.5 * beta, generator=gen)
    offset = torch.randn(DIM, generator=gen)
    offset *= 100 / offset.norm()
    centroids = offset + torch.randn(K, DIM, generator=gen)
    mask.statistics.update(centroids,
                           torch.randn(K, K, generator=gen).log_softmax(0),
                           torch.randn(K, DIM, generator=gen),
                           beta, reference_num_merged=36)
    tokens = offset + 0.5 * torch.randn(2, 64, DIM, generator=gen)
    return mask, tokens


def test_forward_under_bfloat16_autocast_is_finite_with_gradients():
    mask, tokens = _mask_with_large_statistics()
    mask.train()
    tokens = tokens.requires_grad_()
    noise = torch.zeros(2, 36, 9)  # 8x8 -> 6x6 merged, 3x3 windows
    with torch.autocast('cpu', dtype=torch.bfloat16):
        plan = mask(tokens, (8, 8), gumbel_noise=noise)
        merged = plan.merge(tokens)
        loss = merged.float().square().mean() + plan.weights.float().std()
    loss.backward()
    assert torch.isfinite(plan.weights).all() and torch.isfinite(merged).all()
    for name, param in mask.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), \
            name
    assert mask.mlp_in.weight.grad.abs().sum() > 0  # the IB step ran
    assert torch.isfinite(tokens.grad).all()
    # same merge as float32 up to bfloat16 rounding of the logits
    with torch.no_grad():
        reference = mask(tokens, (8, 8), gumbel_noise=noise).weights
    assert float((plan.weights.detach().float() - reference).abs().max()) < 0.05


def _one_sample_per_class_backbone():
    torch.manual_seed(0)
    backbone = LTMMobileViT('xx_small', num_classes=4).eval()
    masks = backbone.merge_mask_modules()
    for mask in masks:
        mask.recording = True
    with torch.no_grad():
        # one image: MobileViT runs 4 sequences (one per pixel of a 2x2
        # patch), each of them a sample of its own class
        backbone(torch.randn(1, 3, 128, 128))
    labels = torch.eye(4)
    with pytest.warns(UserWarning, match='below 0.01 of the total variance'):
        for mask in masks:
            record = mask.record
            assert record.merged_mean.shape[0] == 4
            accumulator = ClassStatisticsAccumulator(
                4, record.merged_mean.shape[1],
                record.input_mean.shape[1])
            accumulator.add(record.merged_mean, record.input_mean,
                            labels, None,
                            record.num_merged, record.merging)
            stats = accumulator.finalize()
            assert stats['summary']['beta_floored']
            mask.statistics.update(
                stats['centroids'], stats['log_q'], stats['input_centroids'],
                stats['beta'], seen=stats['seen'],
                reference_num_merged=stats['reference_num_merged'],
                merged_at_collection=stats['merged_at_collection'])
            mask.recording = False
            mask.record = None
            with torch.no_grad():
                mask.mlp_out.weight.normal_(0, 0.1)
    return backbone


def test_half_backbone_with_one_sample_per_class_is_finite():
    backbone = _one_sample_per_class_backbone()
    images = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        reference = backbone(images)[-1]
    backbone.half()
    for mask in backbone.merge_mask_modules():
        assert torch.isfinite(mask.statistics.beta)
        assert mask.statistics.beta.dtype == torch.float32
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with torch.no_grad():
            out = backbone(images.half())[-1]
    assert out.dtype == torch.float16
    assert torch.isfinite(out).all()
    # and still the same network, up to float16 rounding
    scale = float(reference.abs().max())
    assert float((out.float() - reference).abs().max()) < 0.1 * scale
