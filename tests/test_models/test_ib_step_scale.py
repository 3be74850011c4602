"""The IB step's score ``s_n = -2 eta <MLP(z_n), u_i>``: its size does not
shrink with ``phi``'s temperature ``beta``, and checkpoints written under
the earlier score ``-2 eta beta <MLP(z_n), u_i>`` load computing what they
computed."""
import torch
import torch.nn.functional as F

from ltm_mm.models.layers import LearnableMergeMask

DIM, K, BETA = 8, 5, 0.05


def _mask(beta=BETA, seed=0):
    torch.manual_seed(seed)
    mask = LearnableMergeMask(DIM, 0.5, num_classes=K)
    torch.nn.init.normal_(mask.mlp_out.weight, std=0.5)
    torch.nn.init.normal_(mask.mlp_out.bias, std=0.5)
    mask.statistics.update(
        centroids=torch.randn(K, DIM), log_q=torch.randn(K, K).log_softmax(0),
        input_centroids=torch.randn(K, DIM), beta=beta)
    return mask


def test_score_is_minus_two_eta_mlp_dot_u():
    mask = _mask()
    tokens, u = torch.randn(3, 20, DIM), torch.randn(3, DIM)
    mlp = mask.mlp_out(F.gelu(mask.mlp_in(tokens)))  # (B, N, D)
    expected = -2.0 * mask.eta * (mlp * u[:, None]).sum(-1)  # (B, N)
    for training in (True, False):
        mask.train(training)
        torch.testing.assert_close(mask.informativeness(tokens, u), expected)


def test_score_does_not_scale_with_beta():
    """beta is phi's temperature: it sets u (through phi), not the step."""
    low, high = _mask(beta=1e-4).eval(), _mask(beta=1.0).eval()
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
    mask = _mask().eval()
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
    mask = _mask()
    state = {f'merge_masks.0.{k}': v
             for k, v in _earlier_checkpoint(mask).items()}
    holder = torch.nn.Module()
    holder.merge_masks = torch.nn.ModuleList(
        [LearnableMergeMask(DIM, 0.5, num_classes=K)])
    holder.load_state_dict(state)
    torch.testing.assert_close(holder.merge_masks[0].mlp_out.bias,
                               mask.mlp_out.bias)
