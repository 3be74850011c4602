"""The IB analysis measures the merge a layer actually applies."""
import torch
from mmpretrain.structures import DataSample
from torch import nn

from ltm_mm.analysis.ib_analysis import collect_records, layer_ib
from ltm_mm.models.layers import (LearnableMergeMask, applied_token_mean,
                                  record_applied_merge)

K, DIM = 4, 16


def _trained_looking_mask(seed=0):
    gen = torch.Generator().manual_seed(seed)
    mask = LearnableMergeMask(DIM, 0.5, num_classes=K)
    with torch.no_grad():
        mask.mlp_out.weight.normal_(0, 1.0, generator=gen)
        mask.theta.add_(torch.randn(3, 3, generator=gen) * 3)
    mask.statistics.update(torch.randn(K, DIM, generator=gen),
                           torch.randn(K, K, generator=gen).log_softmax(0),
                           torch.randn(K, DIM, generator=gen), 0.05,
                           reference_num_merged=16)
    return mask


def test_applied_mean_is_the_token_mean_of_the_dense_merge():
    mask = _trained_looking_mask().train()
    tokens = torch.randn(3, 64, DIM, dtype=torch.float64)
    plan = mask.double()(tokens, (8, 8))
    expected = (plan.dense().transpose(1, 2) @ tokens).mean(1)  # (B, D)
    got = applied_token_mean(plan.weights, plan.table.source_index, tokens)
    torch.testing.assert_close(got, expected.detach())


def test_record_holds_applied_and_prior_means():
    mask = _trained_looking_mask().eval()
    handle = record_applied_merge(mask)
    mask.recording = True
    tokens = torch.randn(2, 64, DIM)
    plan = mask(tokens, (8, 8))
    record = mask.record
    expected = (plan.dense().transpose(1, 2) @ tokens).mean(1)
    torch.testing.assert_close(record.applied_mean, expected)
    assert record.applied_num_merged == plan.weights.shape[1] == 36
    # the IB step and the mask moved the merge away from the prior G0
    assert float((record.applied_mean - record.merged_mean).abs()
                 .max()) > 1e-3
    # no merge applied: the plain token mean, P = N
    mask.merging_enabled = False
    assert mask(tokens, (8, 8)) is None
    torch.testing.assert_close(mask.record.applied_mean, tokens.mean(1))
    assert mask.record.applied_num_merged == 64
    handle.remove()


class _TinyClassifier(nn.Module):

    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def data_preprocessor(self, batch, training=False):
        return batch

    def extract_feat(self, inputs):
        return self.mask(inputs, (8, 8))


def test_collect_records_and_layer_ib_use_the_applied_merge():
    mask = _trained_looking_mask()
    classifier = _TinyClassifier(mask)
    gen = torch.Generator().manual_seed(3)
    batches = [dict(inputs=torch.randn(4, 64, DIM, generator=gen),
                    data_samples=[DataSample().set_gt_label(i % K)
                                  for i in range(4)]) for _ in range(2)]
    masks, records = collect_records(classifier, batches, max_samples=8)
    assert masks == [mask] and mask.record is None
    assert not mask._forward_hooks  # the recording hook is gone
    expected = []
    with torch.no_grad():
        for batch in batches:
            plan = mask(batch['inputs'], (8, 8))
            expected.append((plan.dense().transpose(1, 2) @
                             batch['inputs']).mean(1))
    torch.testing.assert_close(records[0]['merged'],
                               torch.cat(expected).double())
    assert records[0]['num_merged'] == 36
    row = layer_ib(mask, records[0], K)
    assert row['statistics'] == 'model' and row['applied_num_merged'] == 36
    assert 0 <= row['i_x'] <= torch.tensor(K).log() + 1e-9
