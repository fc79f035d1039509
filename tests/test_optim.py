"""hgraph.optim: the closed-form row-sparse ball optimisers against geoopt's."""
import copy

import geoopt
import pytest
import torch

from hgraph.optim import (SparseBallRiemannianAdam, SparseBallRiemannianSGD, is_ball,
                          row_grad)
from hgraph.train import make_optimizer

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")

PAIRS = [(SparseBallRiemannianAdam, geoopt.optim.SparseRiemannianAdam),
         (SparseBallRiemannianSGD, geoopt.optim.SparseRiemannianSGD)]


def _table(dtype, c, n=60, d=5, scale=0.6, seed=0):
    # curvature in the table's dtype: geoopt computes its projection radius in the
    # curvature's dtype (float32 by default), which would differ from ours by rounding
    ball = geoopt.PoincareBall(c=torch.tensor(c, dtype=dtype))
    g = torch.Generator().manual_seed(seed)
    w = ball.expmap0(torch.randn(n, d, generator=g, dtype=dtype) * scale)
    return ball, w


def _sparse_grads(n, d, dtype, steps, rows=25, scale=1.0, seed=1, unique=False, drift=None):
    g = torch.Generator().manual_seed(seed)
    if drift is None:
        drift = torch.randn(n, d, generator=g, dtype=dtype)
    out = []
    for _ in range(steps):
        if unique:
            ids = torch.randperm(n, generator=g)[:rows].sort().values
        else:
            ids = torch.randint(0, n, (rows,), generator=g)     # duplicates: summed
        # a fixed pull per row (so rows travel, reaching the projection radius) plus noise
        vals = (drift[ids] + torch.randn(rows, d, generator=g, dtype=dtype)) * scale
        out.append(torch.sparse_coo_tensor(ids[None], vals, (n, d)))
    return out


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("ours,ref", PAIRS)
@pytest.mark.parametrize("c", [1.0, 0.3])
def test_trajectory_equals_geoopt(dtype, tol, ours, ref, c):
    """40 steps from rows near the boundary, gradients pushing them outward onto the
    projection radius, same points."""
    ball, w0 = _table(dtype, c, scale=2.0)
    a = geoopt.ManifoldParameter(w0.clone(), manifold=ball)
    b = geoopt.ManifoldParameter(w0.clone(), manifold=ball)
    oa, ob = ours([a], lr=0.5), ref([b], lr=0.5)
    for grad in _sparse_grads(60, 5, dtype, 40, scale=3.0, drift=-5.0 * w0):
        a.grad, b.grad = grad, grad.clone()
        oa.step()
        ob.step()
    if c == 1.0:   # the projection was exercised (rows sit on its radius)
        radius = 1.0 - (4e-3 if dtype == torch.float32 else 1e-5)
        assert (a.detach().norm(dim=-1) >= radius * (1 - 1e-6)).any()
    torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=tol)
    if ours is SparseBallRiemannianAdam:
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(oa.state[a][key], ob.state[b][key], rtol=tol, atol=tol)
        assert oa.state[a]["step"] == ob.state[b]["step"] == 40


@pytest.mark.parametrize("c", [0.3, 2.5])
@pytest.mark.parametrize("ours,ref", PAIRS)
def test_each_step_equals_geoopt_other_curvatures(c, ours, ref):
    """Other curvatures, float64, from identical states at every step."""
    ball, w0 = _table(torch.float64, c, scale=0.3)
    a = geoopt.ManifoldParameter(w0.clone(), manifold=ball)
    b = geoopt.ManifoldParameter(w0.clone(), manifold=ball)
    oa, ob = ours([a], lr=0.05), ref([b], lr=0.05)
    for grad in _sparse_grads(60, 5, torch.float64, 25):
        a.grad, b.grad = grad, grad.clone()
        oa.step()
        ob.step()
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=1e-9)
        with torch.no_grad():
            b.copy_(a)
            for key in ("exp_avg", "exp_avg_sq"):
                if key in oa.state[a]:
                    torch.testing.assert_close(oa.state[a][key], ob.state[b][key],
                                               rtol=1e-9, atol=1e-9)
                    ob.state[b][key].copy_(oa.state[a][key])


def test_untouched_rows_and_their_state_stay_put():
    ball, w0 = _table(torch.float64, 1.0)
    a = geoopt.ManifoldParameter(w0.clone(), manifold=ball)
    opt = SparseBallRiemannianAdam([a], lr=0.1)
    ids = torch.tensor([3, 7, 7, 40])
    a.grad = torch.sparse_coo_tensor(ids[None], torch.ones(4, 5, dtype=torch.float64), (60, 5))
    opt.step()
    moved = (a.detach() != w0).any(-1)
    assert moved.nonzero().flatten().tolist() == [3, 7, 40]
    assert (opt.state[a]["exp_avg"][~moved] == 0).all()
    # rows stay strictly inside the ball
    assert (a.detach().norm(dim=-1) < 1.0).all()


def test_row_grad_sums_duplicates_and_skips_sorting_unique_rows():
    g = torch.sparse_coo_tensor(torch.tensor([[5, 2, 5]]), torch.tensor([[1.0], [2.0], [3.0]]),
                                (8, 1))
    rows, vals = row_grad(g)
    assert rows.tolist() == [2, 5] and vals.flatten().tolist() == [2.0, 4.0]
    g = torch.sparse_coo_tensor(torch.tensor([[1, 4, 6]]), torch.tensor([[1.0], [2.0], [3.0]]),
                                (8, 1))
    assert not g.is_coalesced()
    rows, vals = row_grad(g)
    assert rows.tolist() == [1, 4, 6] and vals.flatten().tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(RuntimeError, match="sparse"):
        row_grad(torch.ones(3, 2))


def test_rejects_tables_that_are_not_on_a_ball():
    p = geoopt.ManifoldParameter(torch.zeros(4, 3), manifold=geoopt.Euclidean(1))
    p.grad = torch.sparse_coo_tensor(torch.tensor([[1]]), torch.ones(1, 3), (4, 3))
    with pytest.raises(TypeError, match="Poincaré ball"):
        SparseBallRiemannianSGD([p], lr=0.1).step()
    assert is_ball(geoopt.PoincareBall(c=0.5))
    assert not is_ball(geoopt.Lorentz()) and not is_ball(geoopt.Euclidean(1))
    with pytest.raises(ValueError):
        SparseBallRiemannianAdam([p], lr=-1.0)


def test_state_moves_between_geoopt_and_ours():
    """A checkpoint written with geoopt's optimiser continues identically in ours."""
    ball, w0 = _table(torch.float64, 1.0)
    grads = _sparse_grads(60, 5, torch.float64, 20, unique=True)
    a = geoopt.ManifoldParameter(w0.clone(), manifold=ball)
    ref = geoopt.optim.SparseRiemannianAdam([a], lr=0.05)
    for grad in grads[:10]:
        a.grad = grad
        ref.step()
    b = geoopt.ManifoldParameter(a.detach().clone(), manifold=ball)
    ours = SparseBallRiemannianAdam([b], lr=0.05)
    ours.load_state_dict(copy.deepcopy(ref.state_dict()))   # as through torch.save
    for grad in grads[10:]:
        a.grad, b.grad = grad, grad.clone()
        ref.step()
        ours.step()
    torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,expected", [("poincare", SparseBallRiemannianAdam),
                                           ("lorentz", geoopt.optim.SparseRiemannianAdam)])
def test_make_optimizer_picks_the_closed_form_on_a_ball(name, expected):
    from hgraph.config import TrainConfig
    from hgraph.manifolds import make_manifold
    from hgraph.nn import ShallowEncoder
    enc = ShallowEncoder(make_manifold(name), 10, 3)
    opt = make_optimizer(enc, TrainConfig(), 0.01)
    kinds = [type(o) for o in getattr(opt, "opts", [opt])]
    assert expected in kinds
