"""Losses: definitions on hand-made cases, masking, finite gradients (float32/float64)."""
import math

import pytest
import torch

from hgraph import manifolds as M
from hgraph.losses import LOSSES, fermi_dirac_loss, ranking_loss, triplet_loss

DTYPES = [torch.float32, torch.float64]


def _euclid_case(dtype):
    man = M.make_manifold("euclidean")
    u = torch.zeros(1, 2, dtype=dtype)
    v = torch.tensor([[1.0, 0.0]], dtype=dtype)             # d = 1
    n = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]], dtype=dtype)  # d = 2, 3
    return man, u, v, n


@pytest.mark.parametrize("dtype", DTYPES)
def test_ranking_loss_value(dtype):
    man, u, v, n = _euclid_case(dtype)
    expected = -math.log(math.exp(-1) / (math.exp(-1) + math.exp(-2) + math.exp(-3)))
    assert ranking_loss(man, u, v, n).item() == pytest.approx(expected, rel=1e-6)
    # a masked negative is ignored: same as dropping it
    mask = torch.tensor([[True, False]])
    expected2 = -math.log(math.exp(-1) / (math.exp(-1) + math.exp(-2)))
    assert ranking_loss(man, u, v, n, mask).item() == pytest.approx(expected2, rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_triplet_loss_value(dtype):
    man, u, v, n = _euclid_case(dtype)
    sim = lambda d: 1 / (1 + math.exp(-(5 - 5 * d * d)))  # noqa: E731
    hinge = [max(0.0, 0.5 - sim(1) + sim(d)) for d in (2, 3)]
    pen = 1e-3 * 0.5 * (0.0 + 1.0)
    assert triplet_loss(man, u, v, n).item() == pytest.approx(sum(hinge) / 2 + pen, rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fermi_dirac_value(dtype):
    man, u, v, n = _euclid_case(dtype)
    bce = lambda logit, y: math.log1p(math.exp(-logit)) if y else math.log1p(math.exp(logit))  # noqa: E731
    expected = bce(2 - 1, 1) + (bce(2 - 4, 0) + bce(2 - 9, 0)) / 2
    assert fermi_dirac_loss(man, u, v, n).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("manifold", ["poincare", "lorentz"])
def test_losses_finite_gradients_near_boundary(name, manifold, dtype):
    man = M.make_manifold(manifold, 1.0).to(dtype)
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(8 + 8 + 8 * 5, 4, generator=g, dtype=dtype) * 1e4   # far out
    raw.requires_grad_(True)
    z = M.expmap0(man, raw)
    u, v, n = z[:8], z[8:16], z[16:].reshape(8, 5, -1)
    loss = LOSSES[name](man, u, v, n, torch.ones(8, 5, dtype=torch.bool))
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(raw.grad).all()


def test_ranking_loss_prefers_correct_order():
    man = M.make_manifold("poincare", 1.0)
    u = torch.zeros(1, 2)
    near, far = torch.tensor([[0.1, 0.0]]), torch.tensor([[[0.6, 0.0]]])
    good = ranking_loss(man, u, near, far)
    bad = ranking_loss(man, u, far[0], near[:, None, :])
    assert good < bad
