"""Manifold identities, guards and gradients (float32 and float64)."""
import math

import geoopt
import pytest
import torch

from hgraph import manifolds as M

DTYPES = [torch.float32, torch.float64]
KINDS = ["poincare", "lorentz", "euclidean"]


def _points(man, n, d, dtype, scale=1.0, seed=0):
    man.to(dtype)
    g = torch.Generator().manual_seed(seed)
    return M.expmap0(man, scale * torch.randn(n, d, generator=g, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", KINDS)
def test_pairwise_matches_elementwise_and_chunking(name, dtype):
    man = M.make_manifold(name, 0.7)
    x, y = _points(man, 37, 4, dtype, 0.8, 1), _points(man, 23, 4, dtype, 0.8, 2)
    full = M.pairwise_dist(man, x, y)
    chunked = M.pairwise_dist(man, x, y, chunk=5)
    elem = M.dist(man, x[:, None, :], y[None, :, :])
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert full.shape == (37, 23)
    torch.testing.assert_close(full, chunked, atol=tol, rtol=tol)
    torch.testing.assert_close(full, elem, atol=10 * tol, rtol=10 * tol)


@pytest.mark.parametrize("name", ["poincare", "lorentz"])
def test_distance_equals_geoopt_away_from_boundary(name):
    man = M.make_manifold(name, 1.3)
    x, y = _points(man, 50, 5, torch.float64, 0.4, 3), _points(man, 50, 5, torch.float64, 0.4, 4)
    # geoopt keeps its curvature parameter in float32, so agreement is to ~1e-6
    torch.testing.assert_close(M.dist(man, x, y), man.dist(x, y), atol=1e-5, rtol=1e-5)


def test_poincare_distance_exact_near_boundary_in_float32():
    # float64 reference of the closed form; float32 must stay within 1e-3 relative
    man = M.make_manifold("poincare", 1.0)
    u = torch.randn(200, 3, dtype=torch.float64)
    x = M.expmap0(man, u * 10)       # at the projection boundary
    y = M.expmap0(man, -u * 3 + 0.1)
    ref = M.dist(man, x, y)
    got = M.dist(man, x.float(), y.float()).double()
    assert torch.all((got - ref).abs() <= 1e-3 * ref.abs() + 1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["poincare", "lorentz"])
def test_distance_axioms(name, dtype):
    man = M.make_manifold(name, 2.0)
    x, y, z = (_points(man, 40, 3, dtype, 0.7, s) for s in (5, 6, 7))
    dxy, dyx = M.dist(man, x, y), M.dist(man, y, x)
    torch.testing.assert_close(dxy, dyx)
    # d(x, x): exact zero is impossible through arcosh(1 + t); on the hyperboloid
    # -<x, x> - 1 also cancels catastrophically in float32 (x0^2 ~ 20 here)
    self_tol = {("poincare", torch.float32): 1e-3, ("poincare", torch.float64): 1e-8,
                ("lorentz", torch.float32): 1e-2, ("lorentz", torch.float64): 1e-6}[(name, dtype)]
    assert torch.all(M.dist(man, x, x) < self_tol)
    slack = 1e-3 if dtype == torch.float32 else 1e-9
    assert torch.all(M.dist(man, x, z) <= dxy + M.dist(man, y, z) + slack)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", KINDS)
def test_expmap0_any_scale_on_manifold_and_finite_grad(name, dtype):
    man = M.make_manifold(name, 1.0).to(dtype)
    for scale in (1e-8, 1.0, 1e3, 1e6):
        u = (scale * torch.randn(64, 6, dtype=dtype)).requires_grad_(True)
        x = M.expmap0(man, u)
        assert torch.isfinite(x).all()
        if name == "poincare":
            ok, reason = man.check_point_on_manifold(x.detach(), explain=True, atol=1e-5, rtol=1e-5)
            assert ok, reason
        elif name == "lorentz":
            # <x, x>_L = -k up to the float precision of x0^2 (far points have x0 ~ 1e6)
            xd = x.detach()
            q = -xd[:, 0] ** 2 + (xd[:, 1:] ** 2).sum(-1)
            rel = (q + man.k.detach()).abs() / xd[:, 0] ** 2
            assert torch.all(rel < 50 * torch.finfo(dtype).eps) and torch.all(xd[:, 0] > 0)
        o = M.origin(man, 6, dtype=dtype)
        d = M.dist(man, x, o.expand_as(x))
        assert torch.isfinite(d).all()
        d.sum().backward()
        assert torch.isfinite(u.grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_finite_near_boundary(dtype):
    man = M.make_manifold("poincare", 1.0)
    x = torch.randn(32, 4, dtype=dtype)
    x = x / x.norm(dim=-1, keepdim=True) * (1 - 1e-7)
    x = man.projx(x).requires_grad_(True)
    y = torch.randn(32, 4, dtype=dtype) * 0.1
    y.requires_grad_(True)
    for d in (M.dist(man, x, y), M.pairwise_dist(man, x, y)):
        assert torch.isfinite(d).all()
        (g_x, g_y) = torch.autograd.grad(d.sum(), (x, y))
        assert torch.isfinite(g_x).all() and torch.isfinite(g_y).all()
    # identical points: arcosh(1 + t) at t = 0 has an infinite slope; the guard keeps it finite
    same = x.detach().clone().requires_grad_(True)
    g, = torch.autograd.grad(M.dist(man, same, x.detach()).sum(), same)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_lorentz_poincare_isometry(dtype):
    lor = M.make_manifold("lorentz", 0.5).to(dtype)
    x = _points(lor, 30, 3, dtype, 0.8, 9)
    y = _points(lor, 20, 3, dtype, 0.8, 10)
    p, q = M.to_poincare(lor, x), M.to_poincare(lor, y)
    ball = geoopt.PoincareBall(c=0.5).to(dtype)
    # geoopt stores the ball's c through a float32 softplus: agreement to ~1e-7
    tol = 1e-4 if dtype == torch.float32 else 1e-6
    torch.testing.assert_close(M.pairwise_dist(lor, x, y), M.pairwise_dist(ball, p, q),
                               atol=tol, rtol=tol)
    torch.testing.assert_close(M.poincare_to_lorentz(p, lor.k), x, atol=tol, rtol=tol)
    assert torch.all(p.norm(dim=-1) < 1 / math.sqrt(0.5))


def test_learnable_curvature_stays_positive():
    for name in ("poincare", "lorentz"):
        man = M.make_manifold(name, 1.0, learnable=True)
        params = list(man.parameters())
        assert params, "learnable manifold must expose its curvature as a parameter"
        opt = torch.optim.SGD(params, lr=10.0)
        for _ in range(50):
            opt.zero_grad()
            # a loss that rewards curvature -> 0 (c for the ball, 1/k for the hyperboloid)
            c = man.c if name == "poincare" else 1.0 / man.k
            c.sum().backward()
            opt.step()
        assert M.curvature_of(man) > 0


def test_registry_and_errors():
    assert set(M.MANIFOLDS) == {"poincare", "lorentz", "euclidean"}
    with pytest.raises(ValueError, match="unknown manifold"):
        M.make_manifold("sphere")
    with pytest.raises(ValueError, match="curvature"):
        M.make_manifold("poincare", -1.0)
    assert M.ambient_dim("lorentz", 10) == 11 and M.ambient_dim("poincare", 10) == 10


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["poincare", "lorentz"])
@pytest.mark.parametrize("c", [1e-3, 1.0, 1e3])
def test_expmap0_logmap0_match_geoopt_and_invert(name, dtype, c):
    man = M.make_manifold(name, c).to(dtype)
    g = torch.Generator().manual_seed(1)
    # tangent norms well inside the cap, scaled to the curvature's length unit
    u = torch.randn(100, 4, generator=g, dtype=dtype) * 0.7 / math.sqrt(c)
    x = M.expmap0(man, u)
    ref = man.expmap0(u if name == "poincare" else torch.nn.functional.pad(u, (1, 0)))
    tol = 2e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(x, ref, atol=tol * (1 + ref.abs().max().item()), rtol=tol)
    torch.testing.assert_close(M.logmap0(man, x), u, atol=tol / math.sqrt(c), rtol=10 * tol)
    # distance from the origin: the ball's metric is 4x Euclidean at the origin (lambda_0 = 2)
    d0 = M.dist(man, x, M.origin(man, 4, dtype=dtype).expand_as(x))
    scale = 2.0 if name == "poincare" else 1.0
    torch.testing.assert_close(d0, scale * u.norm(dim=-1), atol=tol / math.sqrt(c) * 10, rtol=50 * tol)


@pytest.mark.parametrize("name", ["poincare", "lorentz"])
def test_logmap0_keeps_small_vectors_in_float32(name):
    man = M.make_manifold(name, 1.0)
    u = torch.full((5, 3), 1e-4)
    torch.testing.assert_close(M.logmap0(man, M.expmap0(man, u)), u, atol=1e-9, rtol=1e-4)


def test_lorentz_expmap0_finite_at_high_curvature_float32():
    man = M.make_manifold("lorentz", 1e3)
    x = M.expmap0(man, torch.randn(50, 4) * 1e6)
    assert torch.isfinite(x).all()
    assert torch.isfinite(M.pairwise_dist(man, x)).all()


# ----------------------------------------------- closed-form backward of the ball distance
@pytest.mark.parametrize("shapes", [((6, 4), (6, 4)), ((5, 1, 3), (5, 7, 3)), ((3,), (8, 3))])
def test_poincare_dist_closed_form_backward_gradcheck(shapes):
    from hgraph.manifolds import _PoincareDist
    g = torch.Generator().manual_seed(0)
    c = torch.tensor(0.7, dtype=torch.float64)
    x = ((torch.rand(*shapes[0], generator=g, dtype=torch.float64) - 0.5) * 1.2).requires_grad_()
    y = ((torch.rand(*shapes[1], generator=g, dtype=torch.float64) - 0.5) * 1.2).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: _PoincareDist.apply(a, b, c), (x, y))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_poincare_dist_closed_form_matches_autograd(dtype, tol):
    """Same values and gradients as autograd over the formula, near the boundary too."""
    from hgraph.manifolds import _poincare_dist
    ball = M.make_manifold("poincare", 1.3)
    g = torch.Generator().manual_seed(1)
    pts = M.expmap0(ball, torch.randn(40, 6, generator=g, dtype=dtype) * 2.5)
    x = pts[:20].unsqueeze(1).clone().requires_grad_()                 # (20, 1, 6)
    y = pts[20:].unsqueeze(0).expand(20, 20, 6).clone().requires_grad_()
    w = torch.randn(20, 20, generator=g, dtype=dtype)
    d1 = M.dist(ball, x, y)
    gx1, gy1 = torch.autograd.grad((d1 * w).sum(), (x, y))
    d2 = _poincare_dist(x, y, ball.c.to(dtype))
    gx2, gy2 = torch.autograd.grad((d2 * w).sum(), (x, y))
    torch.testing.assert_close(d1, d2, rtol=tol, atol=tol)
    torch.testing.assert_close(gx1, gx2, rtol=tol, atol=tol * gx2.abs().max().item())
    torch.testing.assert_close(gy1, gy2, rtol=tol, atol=tol * gy2.abs().max().item())


def test_poincare_dist_zero_distance_has_zero_gradient():
    ball = M.make_manifold("poincare")
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor([[0.1, -0.2], [0.0, 0.0]], dtype=dtype, requires_grad=True)
        y = x.detach().clone().requires_grad_()
        M.dist(ball, x, y).sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x)) and torch.equal(y.grad, torch.zeros_like(y))


def test_poincare_dist_learnable_curvature_still_gets_a_gradient():
    ball = M.make_manifold("poincare", 1.0, learnable=True)
    x = torch.tensor([[0.1, 0.2]], dtype=torch.float32)
    y = torch.tensor([[-0.3, 0.1]], dtype=torch.float32)
    M.dist(ball, x, y).sum().backward()
    params = [p for p in ball.parameters() if p.requires_grad]
    assert params and all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
