"""Run a classifier over a data set and estimate IB loss / IB bound per LTM
layer (the figures of paper Tables VI-VII and Fig. 2).

Plain backbones get the same token definitions without merging: an LTM
twin of the backbone is built with the plain weights and every mask module
set to record only (merging disabled), so its outputs equal the plain
network's.

The merged tokens measured are the ones each layer actually applies: the
token mean of ``G^T Z`` with the final weights (IB step, hard mask), see
:mod:`ltm_mm.models.layers.applied_merge`; a layer that does not merge
applies none (its tokens as they are, ``P = N``).  The class centroids of
collected statistics are those of the prior merge (docs/design.md, section 4);
``phi`` against them uses ``beta * P_ref`` as the IB step does.
"""

import torch
from torch import nn

from ltm_mm.models.layers import (LearnableMergeMask, find_merge_masks,
                                  record_applied_merge,
                                  refuse_baseline_mergers)
from .ib_estimates import IBEstimator, soft_assignments


def plain_twin(backbone: nn.Module, num_classes: int) -> nn.Module:
    """An LTM backbone equal to a plain one, whose masks only record."""
    from mmpretrain.models.backbones import MobileViT

    from ltm_mm.models.backbones import LTMMobileViT
    refuse_baseline_mergers(backbone, 'the IB analysis')
    if not isinstance(backbone, MobileViT):
        raise ValueError(
            f'no LTM twin for a {type(backbone).__name__} backbone; the IB '
            f'analysis supports LTM backbones and plain MobileViT')
    arch = next(name for name, setting in MobileViT.arch_settings.items()
                if setting == backbone.arch)
    twin = LTMMobileViT(arch, merge_ratios=[0.7] * 9,
                        restore_resolution=False, num_classes=num_classes,
                        out_indices=tuple(backbone.out_indices))
    twin.load_state_dict(backbone.state_dict(), strict=False)
    for mask in twin.merge_mask_modules():
        mask.merging_enabled = False
    return twin


@torch.no_grad()
def collect_records(classifier: nn.Module, dataloader, max_samples: int):
    """Per LTM layer: applied merged means, input means, labels, tokens
    merged (as applied) and tokens in."""
    masks = find_merge_masks(classifier)
    handles = [record_applied_merge(mask) for mask in masks]
    for mask in masks:
        mask.recording = True
    records = [dict(merged=[], inputs=[], labels=[]) for _ in masks]
    seen = 0
    classifier.eval()
    try:
        for batch in dataloader:
            data = classifier.data_preprocessor(batch, training=False)
            labels = torch.cat([s.gt_label.reshape(-1)[:1]
                                for s in data['data_samples']])
            classifier.extract_feat(data['inputs'])
            for mask, record in zip(masks, records):
                applied = mask.record.applied_mean
                group = applied.shape[0] // len(labels)
                record['merged'].append(applied.double())
                record['inputs'].append(mask.record.input_mean.double())
                record['labels'].append(labels.repeat_interleave(group))
                record['num_merged'] = mask.record.applied_num_merged
                record['prior_num_merged'] = mask.record.num_merged
                record['num_tokens'] = mask.record.num_tokens
            seen += len(labels)
            if seen >= max_samples:
                break
    finally:
        for mask, handle in zip(masks, handles):
            handle.remove()
            mask.recording = False
            mask.record = None
    if seen == 0:
        raise ValueError('the data loader gave no samples')
    return masks, [dict(merged=torch.cat(r['merged']),
                        inputs=torch.cat(r['inputs']),
                        labels=torch.cat(r['labels']),
                        num_merged=r['num_merged'],
                        prior_num_merged=r['prior_num_merged'],
                        num_tokens=r['num_tokens']) for r in records]


def _class_means(values, labels, num_classes):
    one_hot = nn.functional.one_hot(labels, num_classes).double()
    counts = one_hot.sum(0)
    means = (one_hot.t() @ values) / counts.clamp_min(1)[:, None]
    overall = values.mean(0)
    return torch.where((counts > 0)[:, None], means, overall)


def _beta(values, centroids, labels, num_tokens):
    sq = (values - centroids[labels]).square().sum(-1).mean()
    return 1.0 / (num_tokens * float(sq.clamp_min(1e-12)))


def layer_ib(mask: LearnableMergeMask, record: dict,
             num_classes: int) -> dict:
    """IB estimates of one layer's applied merge, from its statistics when
    valid, else from statistics computed over the same pass."""
    merged, inputs, labels = record['merged'], record['inputs'], \
        record['labels']
    num_merged, num_input_tokens = record['num_merged'], record['num_tokens']
    stats = mask.statistics
    if stats.is_valid():
        centroids = stats.centroids.double().cpu()
        input_centroids = stats.input_centroids.double().cpu()
        beta = float(stats.beta)
        # the P beta is calibrated for: P_ref, or (old statistics) the P the
        # IB step uses at this size
        phi_tokens = float(stats.phi_scale_tokens(record['prior_num_merged']))
        seen = stats.seen.cpu()
        log_q = stats.log_q.double().cpu()
        source = 'model'
    else:
        centroids = _class_means(merged, labels, num_classes)
        input_centroids = _class_means(inputs, labels, num_classes)
        beta = _beta(merged, centroids, labels, num_merged)
        phi_tokens = num_merged
        seen = None
        phi = soft_assignments(merged, centroids, beta, phi_tokens)
        q = (_class_means(phi, labels, num_classes) + 1e-2)
        log_q = (q / q.sum(1, keepdim=True)).log().t()
        source = 'pass'
    beta_in = _beta(inputs, input_centroids, labels, num_input_tokens)
    estimator = IBEstimator(num_classes)
    estimator.add(soft_assignments(merged, centroids, beta, phi_tokens, seen),
                  soft_assignments(inputs, input_centroids, beta_in,
                                   num_input_tokens, seen), labels, log_q)
    return dict(estimator.result(), statistics=source, ratio=mask.ratio,
                merging=mask.merging_enabled, applied_num_merged=num_merged,
                num_tokens=num_input_tokens)
