"""The IB step under mixed precision, with unseen classes, and traced by
torch._dynamo without graph breaks."""
import pytest
import torch
import torch._dynamo

from ltm_mm.ops import ib_step


def _realistic(seed=0, batch=6, dim=144, num_classes=50, sq_norm=1e5):
    """Token means with ||x||^2 ~ ``sq_norm``, classes ~6 apart, samples ~3
    from their centroid (float64)."""
    gen = torch.Generator().manual_seed(seed)
    f64 = dict(dtype=torch.float64)
    offset = torch.randn(dim, generator=gen, **f64)
    offset *= (sq_norm**0.5) / offset.norm()
    centroids = offset + 0.5 * torch.randn(num_classes, dim, generator=gen,
                                           **f64)
    labels = torch.randint(num_classes, (batch, ), generator=gen)
    x = centroids[labels] + 0.25 * torch.randn(batch, dim, generator=gen,
                                               **f64)
    within = (x - centroids[labels]).square().sum(-1).mean()
    num_merged = 196
    beta = 1.0 / (num_merged * within)
    log_q = torch.randn(num_classes, num_classes, generator=gen,
                        **f64).log_softmax(0)
    return x, centroids, log_q, beta, num_merged


def _reference(x, centroids, log_q, beta, num_merged, seen=None):
    """Textbook float64 formulas with differences taken directly."""
    x, centroids = x.double(), centroids.double()
    sq_dist = (x[:, None] - centroids[None]).square().sum(-1)  # (B, K)
    logits = -beta.double() * num_merged * sq_dist
    if seen is not None:
        logits = logits.masked_fill(~seen, float('-inf'))
    phi = logits.softmax(-1)
    psi = -phi.detach() @ log_q.double().t()  # phi held constant in psi
    mean = phi @ centroids
    u = ((psi * phi)[:, :, None] * (centroids[None] - mean[:, None])).sum(1)
    return phi, u


def _relative(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


def _cpu_supports(dtype):
    try:
        with torch.autocast('cpu', dtype=dtype):
            torch.ones(2, 2) @ torch.ones(2, 2)
        return True
    except RuntimeError:
        return False


DTYPES = [torch.bfloat16] + ([torch.float16] if _cpu_supports(torch.float16)
                             else [])


@pytest.mark.parametrize('sq_norm', [570.0, 3500.0, 1e5])
def test_float32_step_matches_float64_reference(sq_norm):
    x, centroids, log_q, beta, P = _realistic(sq_norm=sq_norm)
    phi_ref, u_ref = _reference(x, centroids, log_q, beta, P)
    phi, u = ib_step(x.float(), centroids.float(), log_q.float(),
                     beta.float(), P)
    assert phi.dtype == u.dtype == torch.float32
    # the case is not degenerate: phi is neither one-hot nor uniform
    assert 0.05 < float(phi_ref.max(-1).values.min()) < 0.999
    assert _relative(u, u_ref) < 1e-4
    assert float((phi.double() - phi_ref).abs().max()) < 1e-4


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('input_dtype', ['float32', 'low'])
def test_autocast_low_precision_matches_reference(dtype, input_dtype):
    x, centroids, log_q, beta, P = _realistic(sq_norm=1e5)
    # what reaches the step: float32, or already rounded to the autocast
    # dtype; the reference sees the very same values
    x_in = x.float() if input_dtype == 'float32' else x.to(dtype)
    x_in = x_in.clone().requires_grad_()
    with torch.autocast('cpu', dtype=dtype):
        phi, u = ib_step(x_in, centroids.float(), log_q.float(),
                         beta.float(), P)
        loss = (phi * torch.arange(phi.shape[1])).sum() + u.square().sum()
    loss.backward()
    phi_ref, u_ref = _reference(x_in.detach(), centroids, log_q, beta, P)
    assert phi.dtype == torch.float32 and u.dtype == torch.float32
    assert torch.isfinite(phi).all() and torch.isfinite(u).all()
    assert torch.isfinite(x_in.grad).all() and x_in.grad.abs().max() > 0
    assert _relative(u, u_ref) < 1e-3
    # the gradient matches autograd of the float64 reference
    x64 = x_in.detach().double().requires_grad_()
    phi64, u64 = _reference(x64, centroids, log_q, beta, P)
    ref_loss = (phi64 * torch.arange(phi64.shape[1])).sum() + \
        u64.square().sum()
    grad_ref, = torch.autograd.grad(ref_loss, x64)
    # the gradient of a low-precision input is stored in its dtype
    tolerance = max(1e-3, torch.finfo(x_in.dtype).eps)
    assert _relative(x_in.grad, grad_ref) < tolerance


def test_half_statistics_with_large_norms_stay_finite():
    # ||c||^2 = 1e5 > 65504: the old expanded form overflowed float16
    x, centroids, log_q, beta, P = _realistic(sq_norm=1e5)
    phi, u = ib_step(x.half(), centroids.float(), log_q.float(),
                     beta.float(), P)
    phi_ref, u_ref = _reference(x.half(), centroids, log_q, beta, P)
    assert torch.isfinite(phi).all() and torch.isfinite(u).all()
    assert _relative(u, u_ref) < 1e-3


def test_unseen_classes_get_no_mass_and_do_not_move_u():
    x, centroids, log_q, beta, P = _realistic(num_classes=20, sq_norm=570.)
    seen = torch.zeros(20, dtype=torch.bool)
    seen[::3] = True
    # unseen classes sit at the overall mean, as the accumulator leaves them
    centroids[~seen] = centroids[seen].mean(0)
    phi, u = ib_step(x, centroids, log_q, beta, P, seen=seen)
    assert float(phi[:, ~seen].abs().max()) == 0.0
    torch.testing.assert_close(phi.sum(-1), torch.ones(6, dtype=phi.dtype))
    # equal to the step on the seen classes alone
    index = seen.nonzero()[:, 0]
    sub_phi, sub_u = ib_step(x, centroids[index], log_q[index][:, index],
                             beta, P)
    torch.testing.assert_close(phi[:, index], sub_phi)
    torch.testing.assert_close(u, sub_u)
    phi_ref, u_ref = _reference(x, centroids, log_q, beta, P, seen)
    torch.testing.assert_close(u, u_ref)
    # without the mask the unseen placeholders do attract mass
    phi_all, _ = ib_step(x, centroids, log_q, beta, P)
    assert float(phi_all[:, ~seen].sum()) > 1e-6


def test_num_merged_scales_the_temperature():
    x, centroids, log_q, beta, P = _realistic(sq_norm=570.)
    phi_ref, u_ref = _reference(x, centroids, log_q, beta, 3 * P)
    phi, u = ib_step(x, centroids, log_q, beta,
                     torch.tensor(3.0 * P, dtype=torch.float64))
    torch.testing.assert_close(u, u_ref)
    torch.testing.assert_close(phi, phi_ref)


def test_ib_step_rejects_bad_labels_and_seen():
    x, centroids, log_q, beta, P = _realistic()
    with pytest.raises(ValueError, match='labels must be'):
        ib_step(x, centroids, log_q, beta, P, labels=torch.zeros(2).long())
    with pytest.raises(ValueError, match='seen must be'):
        ib_step(x, centroids, log_q, beta, P,
                seen=torch.ones(3, dtype=torch.bool))


def test_ib_step_traces_without_graph_breaks():
    x, centroids, log_q, beta, P = _realistic(num_classes=8)
    seen = torch.ones(8, dtype=torch.bool)
    seen[3] = False
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(ib_step)(
        x.float(), centroids.float(), log_q.float(), beta.float(),
        torch.tensor(float(P)), None, seen)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
