import warnings

import pytest
import torch
import torch.nn.functional as F

from ltm_mm.models.layers import (ClassStatistics, LearnableMergeMask,
                                  MergeInputs)
from ltm_mm.ops.mask_weights import SCORE_BOUND

DIM, K, BETA = 8, 5, 0.05


def _mask_with_statistics(ratio=0.5, seed=0, beta=BETA):
    torch.manual_seed(seed)
    mask = LearnableMergeMask(DIM, ratio, num_classes=K)
    # a trained-looking module: non-zero MLP output layer and statistics
    torch.nn.init.normal_(mask.mlp_out.weight, std=0.5)
    mask.statistics.update(
        centroids=torch.randn(K, DIM), log_q=torch.randn(K, K).log_softmax(0),
        input_centroids=torch.randn(K, DIM), beta=beta)
    return mask


@pytest.mark.parametrize('hw', [(1, 1), (2, 2), (4, 7), (20, 20), (64, 37)])
@pytest.mark.parametrize('training', [False, True])
def test_weights_of_each_merged_token_sum_to_one(hw, training):
    mask = _mask_with_statistics(0.5).train(training)
    tokens = torch.randn(2, hw[0] * hw[1], DIM)
    plan = mask(tokens, hw)
    if plan is None:  # grid unchanged: nothing to merge
        assert mask.merged_hw(hw) == hw
        return
    torch.testing.assert_close(plan.weights.sum(-1),
                               torch.ones(plan.weights.shape[:2]))
    # every source token gets a value back, even if masked everywhere
    spread = plan.spread_weights
    covered = torch.zeros(2, hw[0] * hw[1])
    covered.index_add_(1, plan.table.source_index.reshape(-1),
                       spread.reshape(2, -1))
    assert (covered > 0).all()
    restored = plan.unmerge(plan.merge(torch.ones(2, hw[0] * hw[1], 3)))
    torch.testing.assert_close(restored, torch.ones_like(restored))


def test_ratio_one_is_identity_without_compute():
    mask = LearnableMergeMask(DIM, 1.0)
    assert mask(torch.randn(2, 64, DIM), (8, 8)) is None
    assert mask.record is None


def test_eval_is_batch_invariant():
    mask = _mask_with_statistics().eval()
    tokens = torch.randn(4, 100, DIM)
    batched = mask(tokens, (10, 10))
    alone = mask(tokens[2:3], (10, 10))
    assert not torch.equal(batched.weights[0], batched.weights[1])
    torch.testing.assert_close(alone.weights[0], batched.weights[2],
                               atol=1e-6, rtol=0)
    merged_b = batched.merge(tokens)
    merged_a = alone.merge(tokens[2:3])
    torch.testing.assert_close(merged_a[0], merged_b[2], atol=1e-6, rtol=0)


def test_train_is_batch_invariant_with_fixed_noise():
    mask = _mask_with_statistics().train()
    tokens = torch.randn(4, 100, DIM)
    noise = torch.randn(4, 64, 9, generator=torch.Generator().manual_seed(1))
    noise = noise * 2.0
    batched = mask(tokens, (10, 10), gumbel_noise=noise)
    alone = mask(tokens[1:2], (10, 10), gumbel_noise=noise[1:2])
    torch.testing.assert_close(alone.weights[0], batched.weights[1],
                               atol=1e-6, rtol=0)
    # the noise matters: other noise, other mask
    other = mask(tokens[1:2], (10, 10), gumbel_noise=noise[1:2] - 6.0)
    assert not torch.equal(other.weights, alone.weights)


def test_eval_mask_keeps_argmax_and_is_deterministic():
    mask = LearnableMergeMask(DIM, 0.5).eval()
    with torch.no_grad():
        # every keep logit negative; distinct weight logits, so each window
        # has one best slot (ties at the maximum are all kept)
        mask.theta.copy_(-10.0 + 0.01 * torch.arange(9.0).view(3, 3))
        mask.theta[0, 0] = -8.0
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        plan = mask(torch.randn(2, 64, DIM), (8, 8))
    # only the arg-max slot survives in every window
    assert ((plan.weights > 0).sum(-1) == 1).all()
    assert torch.equal(plan.weights, mask(torch.randn(2, 64, DIM),
                                          (8, 8)).weights)


def test_initial_mask_keeps_every_token():
    mask = LearnableMergeMask(DIM, 0.7).eval()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        plan = mask(torch.randn(1, 400, DIM), (20, 20))
    # every slot inside the grid is kept; slots outside it weigh 0
    valid = torch.isfinite(plan.table.prior_logits)
    assert torch.equal(plan.weights[0] > 0, valid)


def test_gradients_reach_theta_and_mlp_not_statistics():
    mask = _mask_with_statistics().train()
    tokens = torch.randn(2, 100, DIM, requires_grad=True)
    plan = mask(tokens, (10, 10))
    (plan.merge(tokens).square().sum() + plan.weights.square().sum()
     ).backward()
    for name in ('theta', 'mlp_in.weight', 'mlp_out.weight'):
        grad = dict(mask.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert tokens.grad.abs().sum() > 0
    for name, buffer in mask.named_buffers():
        assert not buffer.requires_grad and buffer.grad is None, name
    before = {n: b.clone() for n, b in mask.named_buffers()}
    torch.optim.SGD(mask.parameters(), lr=1.0).step()
    for name, buffer in mask.named_buffers():
        assert torch.equal(buffer, before[name]), name


def test_without_statistics_skips_ib_step_and_warns_once():
    mask = LearnableMergeMask(DIM, 0.5).eval()
    with pytest.warns(UserWarning, match='no valid class statistics') as rec:
        plan = mask(torch.randn(2, 64, DIM), (8, 8))
        mask(torch.randn(2, 64, DIM), (8, 8))
    assert len([w for w in rec if 'class statistics' in str(w.message)]) == 1
    # theta-only merge: the same weights for every sample
    torch.testing.assert_close(plan.weights[0], plan.weights[1])


def test_statistics_change_the_merge():
    mask = _mask_with_statistics().eval()
    tokens = torch.randn(1, 100, DIM)
    with_stats = mask(tokens, (10, 10)).weights
    mask.statistics.set_valid(False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        without = mask(tokens, (10, 10)).weights
    assert not torch.allclose(with_stats, without)


def test_record_holds_detached_per_sample_means():
    mask = _mask_with_statistics()
    mask.recording = True
    tokens = torch.randn(3, 64, DIM, requires_grad=True)
    inputs = torch.randn(3, 64, DIM)
    mask(tokens, (8, 8), MergeInputs(input_tokens=inputs))
    record = mask.record
    assert record.merged_mean.shape == (3, DIM)
    assert record.phi.shape == (3, K)
    torch.testing.assert_close(record.input_mean, inputs.mean(1))
    assert not record.merged_mean.requires_grad
    # merged mean = token mean of the prior-merged tokens G0^T Z
    table = mask(tokens, (8, 8)).table
    prior = torch.softmax(mask.theta.view(-1)[table.theta_index][None] +
                          table.prior_logits, -1)
    x0 = torch.einsum('pk,bpkd->bpd', prior, tokens[:, table.source_index])
    torch.testing.assert_close(record.merged_mean, x0.mean(1).detach())
    # disabled merging still records (warm-up epochs)
    mask.merging_enabled = False
    assert mask(tokens, (8, 8)) is None
    assert mask.record.phi.shape == (3, K)


def test_statistics_of_other_shape_raise_naming_both():
    big = ClassStatistics(1000, DIM, DIM)
    small = ClassStatistics(10, DIM, DIM)
    with pytest.raises(ValueError, match=r'\(1000, 8\).*\(10, 8\)'):
        small.load_state_dict(big.state_dict())
    with pytest.raises(ValueError, match=r'\(3, 3\).*\(10, 10\)'):
        small.update(torch.zeros(10, DIM), torch.zeros(3, 3),
                     torch.zeros(10, DIM), 1.0)
    with pytest.raises(ValueError, match='finite'):
        small.update(torch.zeros(10, DIM), torch.full((10, 10), -torch.inf),
                     torch.zeros(10, DIM), 1.0)


def test_statistics_travel_in_state_dict():
    mask = _mask_with_statistics()
    state = mask.state_dict()
    for name in ('centroids', 'log_q', 'input_centroids', 'beta', 'valid'):
        assert f'statistics.{name}' in state
    fresh = LearnableMergeMask(DIM, 0.5, num_classes=K)
    assert not fresh.statistics.is_valid()
    fresh.load_state_dict(state)
    assert fresh.statistics.is_valid()
    torch.testing.assert_close(fresh.statistics.centroids,
                               mask.statistics.centroids)


@pytest.mark.parametrize('bad', [0.0, -1, 1.5, float('nan')])
def test_bad_ratio_raises(bad):
    with pytest.raises(ValueError, match='ratio'):
        LearnableMergeMask(DIM, bad)


POOL_GRIDS = [((20, 20), (17, 17), 0.7), ((10, 10), (9, 9), 0.7),
              ((40, 40), (34, 34), 0.7), ((16, 16), (8, 8), 0.25),
              ((13, 21), (11, 18), 0.7)]


@pytest.mark.parametrize('source_hw,merged_hw,ratio', POOL_GRIDS)
@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_initial_merge_is_area_pooling(source_hw, merged_hw, ratio, mode):
    """At initialisation (no statistics) LTM's G is ``pool``'s, in eval and
    in training forwards (no noise without statistics), and so is the
    round trip through merge and unmerge."""
    from ltm_mm.models.layers.pool_merger import AreaPoolPlan
    num_tokens = source_hw[0] * source_hw[1]
    mask = LearnableMergeMask(DIM, ratio).train(mode == 'train')
    tokens = torch.randn(2, num_tokens, DIM)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        plan = mask(tokens, source_hw)
    assert plan.merged_hw == merged_hw
    pool = AreaPoolPlan(source_hw, merged_hw)
    assert (plan.dense() - pool.dense()).abs().max() <= 1e-6
    torch.testing.assert_close(plan.unmerge(plan.merge(tokens)),
                               pool.unmerge(pool.merge(tokens)),
                               atol=1e-5, rtol=1e-5)


def test_initial_merge_with_zero_score_statistics_is_area_pooling():
    """Valid statistics and the zero-initialised MLP output (s = 0): the
    eval merge is still pooling's."""
    from ltm_mm.models.layers.pool_merger import AreaPoolPlan
    mask = LearnableMergeMask(DIM, 0.5, num_classes=K).eval()
    mask.statistics.update(
        centroids=torch.randn(K, DIM), log_q=torch.randn(K, K).log_softmax(0),
        input_centroids=torch.randn(K, DIM), beta=0.05)
    plan = mask(torch.randn(3, 100, DIM), (10, 10))
    pool = AreaPoolPlan((10, 10), plan.merged_hw)
    assert (plan.dense() - pool.dense()).abs().max() <= 1e-6


def test_keep_decision_ignores_the_area_prior():
    """A slot with a small area weight is kept: only theta and the score
    decide what is dropped."""
    mask = LearnableMergeMask(DIM, 0.81).eval()  # 10x10 -> 9x9
    # distinct weight logits: one best slot per window
    ramp = 0.01 * torch.arange(9.0).view(3, 3)
    with torch.no_grad():
        mask.theta.copy_(-3.95 + ramp)  # keep logits > 0 everywhere
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        plan = mask(torch.randn(1, 100, DIM), (10, 10))
    valid = torch.isfinite(plan.table.prior_logits)
    assert torch.equal(plan.weights[0] > 0, valid)
    with torch.no_grad():
        mask.theta.copy_(-4.1 + ramp)  # every slot but the best goes
    plan = mask(torch.randn(1, 100, DIM), (10, 10))
    assert ((plan.weights[0] > 0).sum(-1) == 1).all()


def test_score_is_minus_two_eta_mlp_dot_u_capped():
    """The IB step's score, ``-2 eta <MLP(z_n), u_i>``, soft-capped at
    ``+-SCORE_BOUND``."""
    mask = _mask_with_statistics()
    torch.nn.init.normal_(mask.mlp_out.bias, std=0.5)
    tokens, u = torch.randn(3, 20, DIM), torch.randn(3, DIM)
    mlp = mask.mlp_out(F.gelu(mask.mlp_in(tokens)))  # (B, N, D)
    step = -2.0 * mask.eta * (mlp * u[:, None]).sum(-1)  # (B, N)
    expected = SCORE_BOUND * torch.tanh(step / SCORE_BOUND)
    # below the cap the score is the step itself, to a few percent
    small = step.abs() < 2
    assert small.any()
    torch.testing.assert_close(expected[small], step[small], rtol=0.03,
                               atol=0)
    for training in (True, False):
        mask.train(training)
        torch.testing.assert_close(mask.informativeness(tokens, u), expected)


def test_score_does_not_scale_with_beta():
    """beta is phi's temperature: it sets u (through phi), not the step."""
    low = _mask_with_statistics(beta=1e-4).eval()
    high = _mask_with_statistics(beta=1.0).eval()
    tokens, u = torch.randn(2, 12, DIM), torch.randn(2, DIM)
    torch.testing.assert_close(low.informativeness(tokens, u),
                               high.informativeness(tokens, u))


def _earlier_checkpoint(mask):
    """The state dict of a module with the same scores under the earlier
    convention: no ``score_convention``, the MLP output divided by beta."""
    state = {k: v.clone() for k, v in mask.state_dict().items()}
    del state['score_convention']
    for name in ('mlp_out.weight', 'mlp_out.bias'):
        state[name] = state[name] / BETA
    return state


def test_earlier_checkpoints_load_with_the_same_merge():
    """Checkpoints written under the score ``-2 eta beta <MLP(z_n), u_i>``
    load computing what they computed."""
    mask = _mask_with_statistics().eval()
    torch.nn.init.normal_(mask.mlp_out.bias, std=0.5)
    tokens = torch.randn(2, 64, DIM)
    expected = mask(tokens, (8, 8)).weights
    fresh = LearnableMergeMask(DIM, 0.5, num_classes=K).eval()
    fresh.load_state_dict(_earlier_checkpoint(mask))
    torch.testing.assert_close(fresh(tokens, (8, 8)).weights, expected)
    torch.testing.assert_close(fresh.mlp_out.weight, mask.mlp_out.weight)
    assert int(fresh.score_convention) == int(mask.score_convention)
    # what it saves now loads unchanged
    again = LearnableMergeMask(DIM, 0.5, num_classes=K)
    again.load_state_dict(fresh.state_dict())
    assert torch.equal(again.mlp_out.weight, fresh.mlp_out.weight)
    assert torch.equal(again.mlp_out.bias, fresh.mlp_out.bias)


def test_earlier_checkpoints_convert_under_a_prefix():
    """As mmengine loads a detector's backbone: the mask module's keys
    under a prefix, in a dict without torch's per-module metadata."""
    mask = _mask_with_statistics()
    torch.nn.init.normal_(mask.mlp_out.bias, std=0.5)
    state = {f'merge_masks.0.{k}': v
             for k, v in _earlier_checkpoint(mask).items()}
    holder = torch.nn.Module()
    holder.merge_masks = torch.nn.ModuleList(
        [LearnableMergeMask(DIM, 0.5, num_classes=K)])
    holder.load_state_dict(state)
    torch.testing.assert_close(holder.merge_masks[0].mlp_out.bias,
                               mask.mlp_out.bias)


@pytest.mark.parametrize('scale', [1e2, 1e4])
def test_large_scores_keep_the_merge_and_its_gradients_finite(scale):
    """A score MLP that has grown large (scores of hundreds were seen in
    fine-tuning) used to make the window softmax underflow to exact zeros,
    and the unmerge's normalisation then sent inf back: the scores are
    capped at +-SCORE_BOUND, so every slot keeps a positive weight."""
    mask = _mask_with_statistics().train()
    with torch.no_grad():
        mask.mlp_out.weight.mul_(scale)
        mask.mlp_in.weight.mul_(10)
    tokens = (10 * torch.randn(2, 400, DIM)).requires_grad_()
    u = 10 * torch.randn(2, DIM)
    score = mask.informativeness(tokens, u)
    assert score.abs().max() <= SCORE_BOUND
    assert score.abs().max() > 0.9 * SCORE_BOUND  # the cap is reached
    plan = mask(tokens, (20, 20), gumbel_noise=torch.zeros(2, 225, 9))
    assert (plan.spread_weights[:, torch.isfinite(
        plan.table.prior_logits)] > 0).all()
    restored = plan.unmerge(plan.merge(tokens))
    restored.square().sum().backward()
    for grad in (tokens.grad, mask.mlp_out.weight.grad, mask.theta.grad):
        assert torch.isfinite(grad).all()


def _tokens_grad_and_score_grads(detach: bool):
    """Gradients of a merge-unmerge loss on the tokens, the score MLP and
    theta; also the same loss with the plan's weights taken as constants."""
    from ltm_mm.models.layers.merge_plan import MergePlan
    mask = _mask_with_statistics().train()
    mask.detach_score_inputs = detach
    tokens = torch.randn(2, 100, DIM, generator=torch.Generator()
                         .manual_seed(3)).requires_grad_()
    noise = torch.zeros(2, 64, 9)
    plan = mask(tokens, (10, 10), gumbel_noise=noise)
    target = torch.linspace(-1, 1, 100 * DIM).view(1, 100, DIM)
    loss = (plan.unmerge(plan.merge(tokens)) * target).sum()
    loss.backward()
    # the loss's gradient through the merged values alone: the same plan
    # with its weights detached
    frozen = tokens.detach().clone().requires_grad_()
    constant = MergePlan(plan.weights.detach(), plan.table,
                         spread_weights=plan.spread_weights.detach())
    (constant.unmerge(constant.merge(frozen)) * target).sum().backward()
    return tokens.grad, frozen.grad, mask


def test_detached_score_inputs_leave_the_backbone_only_the_merged_values():
    """With ``detach_score_inputs`` the tokens get exactly the gradient of
    the merge with constant weights; the score MLP and theta still learn.
    Without it the scores send more gradient into the tokens."""
    tokens_grad, values_grad, mask = _tokens_grad_and_score_grads(True)
    torch.testing.assert_close(tokens_grad, values_grad, atol=1e-6, rtol=0)
    assert mask.mlp_in.weight.grad.abs().sum() > 0
    assert mask.mlp_out.weight.grad.abs().sum() > 0
    assert mask.theta.grad.abs().sum() > 0
    end_to_end, values_grad, _ = _tokens_grad_and_score_grads(False)
    assert (end_to_end - values_grad).abs().max() > 1e-3
    # the forward is the same either way
    torch.manual_seed(0)
    eval_mask = _mask_with_statistics().eval()
    tokens = torch.randn(2, 100, DIM)
    plain = eval_mask(tokens, (10, 10)).weights
    eval_mask.detach_score_inputs = True
    assert torch.equal(eval_mask(tokens, (10, 10)).weights, plain)
    eval_mask.train()
    noise = torch.randn(2, 64, 9)
    detached = eval_mask(tokens, (10, 10), gumbel_noise=noise).weights
    eval_mask.detach_score_inputs = False
    assert torch.equal(
        eval_mask(tokens, (10, 10), gumbel_noise=noise).weights, detached)
