import pytest
import torch

from ltm_mm.ops import ib_bound, ib_step


def _problem(seed=0, batch=3, N=7, P=4, D=5, K=6):
    gen = torch.Generator().manual_seed(seed)
    f64 = dict(dtype=torch.float64)
    G = torch.rand(batch, N, P, generator=gen, **f64).softmax(1)
    Z = torch.randn(batch, N, D, generator=gen, **f64)
    centroids = torch.randn(K, D, generator=gen, **f64)
    log_q = torch.randn(K, K, generator=gen, **f64).log_softmax(0)
    beta = torch.tensor(0.4, **f64)
    return G, Z, centroids, log_q, beta


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('with_labels', [False, True])
def test_closed_form_step_equals_autograd_of_bound(seed, with_labels):
    G, Z, centroids, log_q, beta = _problem(seed)
    P = G.shape[2]
    G = G.requires_grad_()
    token_mean = (G.transpose(1, 2) @ Z).mean(1)
    labels = torch.tensor([0, 3, 5]) if with_labels else None
    phi, u = ib_step(token_mean.detach(), centroids, log_q, beta, P, labels)
    # psi as the step defines it, held constant in IBB
    psi = (-phi @ log_q.t()) if labels is None else -log_q[:, labels].t()
    bound = ib_bound(G, Z, centroids, psi.detach(), beta)
    grad, = torch.autograd.grad(bound.sum(), G)
    closed = 2 * beta * (Z @ u[:, :, None])  # (B, N, 1): same in every column
    assert torch.allclose(grad, closed.expand_as(grad), atol=1e-13, rtol=0)
    assert grad.abs().max() > 1e-3  # the check is not vacuous


def test_phi_from_token_mean_equals_phi_from_full_distance():
    G, Z, centroids, log_q, beta = _problem(1)
    merged = G.transpose(1, 2) @ Z  # (B, P, D)
    phi, _ = ib_step(merged.mean(1), centroids, log_q, beta, merged.shape[1])
    full = (merged[:, None] - centroids[None, :, None]).square().sum((-1, -2))
    torch.testing.assert_close(phi, torch.softmax(-beta * full, -1))


def test_ib_step_rejects_mismatched_statistics():
    _, _, centroids, log_q, beta = _problem()
    with pytest.raises(ValueError, match=r'\(6, 5\)'):
        ib_step(torch.zeros(2, 4, dtype=torch.float64), centroids, log_q,
                beta, 4)
    with pytest.raises(ValueError, match=r'\(6, 5\).*\(6, 6\)|\(5, 5\)'):
        ib_step(torch.zeros(2, 5, dtype=torch.float64), centroids,
                log_q[:5, :5], beta, 4)
