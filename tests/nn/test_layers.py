"""HypLinear / HypAgg / HypAct: identities, invariants, numerics (float32 and float64)."""
import geoopt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.nn import GCNConv

from hgraph import manifolds as M
from hgraph.manifolds import expmap_at
from hgraph.nn.base import ACTIVATIONS
from hgraph.nn.layers import HypAct, HypAgg, HypLinear


# the hyperboloid's pure functions (hgraph.manifolds.lorentz), called with a manifold
def lorentz_clip(man, x):
    return M.lorentz.clip(x, man.k.to(x))


def lorentz_logmap(man, x, y):
    return M.lorentz.logmap(x, y, man.k.to(x))


def lorentz_translate(man, x, u):
    return M.lorentz.translate(x, u, man.k.to(x))

DTYPES = [torch.float32, torch.float64]
KINDS = ["poincare", "lorentz", "euclidean"]
HYP = ["poincare", "lorentz"]
AGG_MODES = [(False, False), (True, False), (False, True), (True, True)]  # (attention, local)


def on_manifold(man, x: torch.Tensor) -> bool:
    """Finite, and on the manifold to a tolerance relative to the coordinates' size."""
    if not torch.isfinite(x).all():
        return False
    k = M.kind(man)
    if k == "euclidean":
        return True
    tol = 1e-5 if x.dtype == torch.float32 else 1e-10
    if k == "poincare":
        c = man.c.to(x)
        return bool(((x * x).sum(-1) * c < 1).all()) and man.check_point_on_manifold(x, atol=tol)
    kk = man.k.to(x)
    x0 = x[..., 0]
    quad = -x0 * x0 + (x[..., 1:] ** 2).sum(-1)
    return bool((x0 > 0).all()) and bool(((quad + kk).abs() <= tol * (x0 * x0 + kk)).all())


def points(man, n, d, dtype, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return M.expmap0(man, scale * torch.randn(n, d, generator=g, dtype=dtype))


def random_graph(n, m, seed=0):
    """(2, 2m) undirected random multigraph-free edge_index without self-loops."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (m,), generator=g)
    dst = torch.randint(0, n, (m,), generator=g)
    keep = src != dst
    ei = torch.stack([src[keep], dst[keep]])
    ei = torch.cat([ei, ei.flip(0)], dim=1)
    return torch.unique(ei, dim=1)


def finite_grads(module, *tensors):
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    grads += [t.grad for t in tensors if t.grad is not None]
    return all(torch.isfinite(g).all() for g in grads)


# --------------------------------------------------------------- HypLinear
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", KINDS)
def test_hyplinear_output_on_manifold_with_finite_grads(name, dtype):
    torch.manual_seed(0)
    man = M.make_manifold(name, 0.8)
    lin = HypLinear(man, 6, 4).to(dtype)
    with torch.no_grad():  # move the bias away from the origin
        b = 0.7 * torch.randn(4, dtype=dtype)
        lin.bias.copy_(M.expmap0(man, b) if name == "poincare" else b)
    for scale in (1e-6, 1.0, 1e6):
        x = points(man, 20, 6, dtype, scale, 2).requires_grad_(True)
        y = lin(x)
        assert y.shape == (20, M.ambient_dim(name, 4))
        assert on_manifold(man, y)
        lin.zero_grad()
        y.sum().backward()
        assert finite_grads(lin, x)


def test_hyplinear_ball_is_mobius_matvec_plus_mobius_bias():
    torch.manual_seed(0)
    man = M.make_manifold("poincare", 1.3)
    lin = HypLinear(man, 5, 3).double()
    b = points(man, 1, 3, torch.float64, 0.5, 3)[0]
    with torch.no_grad():
        lin.bias.copy_(b)
    x = points(man, 10, 5, torch.float64, 0.6, 4)
    ref = man.mobius_add(man.mobius_matvec(lin.weight, x), b)
    torch.testing.assert_close(lin(x), ref)


def test_hyplinear_lorentz_bias_is_transport_then_expmap():
    torch.manual_seed(0)
    man = M.make_manifold("lorentz", 0.7).double()
    lin = HypLinear(man, 5, 3).double()
    lin_nb = HypLinear(man, 5, 3, bias=False).double()
    lin_nb.weight.data.copy_(lin.weight.data)
    b = points(man, 1, 3, torch.float64, 0.5, 3)[0]
    with torch.no_grad():
        lin.bias.copy_(M.logmap0(man, b))           # the hyperboloid bias is log_0 b
    x = points(man, 10, 5, torch.float64, 0.6, 4)
    h = lin_nb(x)
    # geoopt reference in float64: exp_h(PT_{o->h}(log_o b))
    ref = man.expmap(h, man.transp0(h, man.logmap0(b)))
    torch.testing.assert_close(lin(x), ref, atol=1e-6, rtol=1e-6)
    # the bias at the origin is the identity
    lin.reset_parameters()
    lin.weight.data.copy_(lin_nb.weight.data)
    torch.testing.assert_close(lin(x), h)


def test_hyplinear_euclidean_is_linear():
    lin = HypLinear(M.make_manifold("euclidean"), 5, 3)
    with torch.no_grad():
        lin.bias.normal_()
    x = torch.randn(7, 5)
    torch.testing.assert_close(lin(x), x @ lin.weight.T + lin.bias)


def test_hyplinear_dropout_only_in_training():
    lin = HypLinear(M.make_manifold("poincare"), 8, 8, dropout=0.5)
    x = points(lin.manifold, 5, 8, torch.float32)
    lin.eval()
    torch.testing.assert_close(lin(x), lin(x))
    lin.train()
    torch.manual_seed(1)
    a = lin(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, lin(x))


# --------------------------------------------------------------- Lorentz helpers
def test_lorentz_translate_matches_geoopt_and_origin():
    man = M.make_manifold("lorentz", 1.7).double()   # geoopt's k in float64 too
    x = points(man, 30, 4, torch.float64, 1.0, 5)
    u = 0.8 * torch.randn(30, 4, dtype=torch.float64)
    ref = man.expmap(x, man.transp0(x, torch.nn.functional.pad(u, (1, 0))))
    torch.testing.assert_close(lorentz_translate(man, x, u), ref, atol=1e-8, rtol=1e-8)
    o = M.origin(man, 4, dtype=torch.float64).expand(30, 5)
    torch.testing.assert_close(lorentz_translate(man, o, u), M.expmap0(man, u))


@pytest.mark.parametrize("dtype", DTYPES)
def test_lorentz_logmap_inverts_expmap_and_is_finite_far_out(dtype):
    man = M.make_manifold("lorentz", 1.0)
    x = points(man, 40, 3, torch.float64, 1.0, 6)
    y = points(man, 40, 3, torch.float64, 1.0, 7)
    v = lorentz_logmap(man, x.to(dtype), y.to(dtype))
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(v.double(), man.logmap(x, y), atol=tol, rtol=tol)
    torch.testing.assert_close(M.dist(man, expmap_at(man, x, lorentz_logmap(man, x, y)), y),
                               torch.zeros(40, dtype=torch.float64), atol=1e-6, rtol=0)
    # far from the origin geoopt's logmap overflows in float32; this one stays finite
    xf, yf = points(man, 40, 3, dtype, 1e6, 8), points(man, 40, 3, dtype, 1e6, 9)
    assert torch.isfinite(lorentz_logmap(man, xf, yf)).all()
    assert torch.isfinite(lorentz_logmap(man, xf, xf)).all()


def test_lorentz_clip_bounds_distance():
    man = M.make_manifold("lorentz", 1.0)
    big = torch.nn.functional.pad(torch.full((3, 2), 1e30), (1, 0))
    y = lorentz_clip(man, big)
    assert on_manifold(man, y)
    assert (M.dist0(man, y) <= M.MAX_TANGENT_NORM[torch.float32] + 1e-3).all()


# --------------------------------------------------------------- HypAct
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", KINDS)
def test_hypact_changes_curvature_and_applies_act_in_tangent_space(name, dtype):
    m_in = M.make_manifold(name, 0.5).to(dtype)
    m_out = M.make_manifold(name, 2.0).to(dtype)
    x = points(m_in, 25, 4, dtype, 0.5, 10)     # inside the float32 ball of curvature -2
    for act in ACTIVATIONS:
        y = HypAct(m_in, m_out, act)(x)
        assert on_manifold(m_out, y)
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(M.logmap0(m_out, y), ACTIVATIONS[act]()(M.logmap0(m_in, x)),
                                   atol=tol, rtol=tol)
    torch.testing.assert_close(HypAct(m_in, m_in, "none")(x), x, atol=1e-5, rtol=1e-5)


def test_hypact_rejects_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        HypAct(M.make_manifold("poincare"), M.make_manifold("poincare"), "swish")


# --------------------------------------------------------------- HypAgg
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("attention,local", AGG_MODES)
@pytest.mark.parametrize("name", KINDS)
def test_hypagg_output_on_manifold_and_permutation_equivariant(name, attention, local, dtype):
    torch.manual_seed(0)
    man = M.make_manifold(name, 1.2)
    agg = HypAgg(man, 4, attention=attention, local_agg=local).to(dtype)
    n = 40
    x = points(man, n, 4, dtype, 0.8, 11)
    ei = random_graph(n, 80, 12)
    y = agg(x, ei)
    assert y.shape == x.shape and on_manifold(man, y)
    perm = torch.randperm(n)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    y_perm = agg(x[perm], inv[ei])
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(y_perm, y[perm], atol=tol, rtol=tol)


def test_hypagg_euclidean_equals_pyg_gcn_propagation():
    torch.manual_seed(0)
    n, d = 30, 5
    x = torch.randn(n, d, dtype=torch.float64)
    ei = random_graph(n, 50, 13)
    gcn = GCNConv(d, d, bias=False).double()
    with torch.no_grad():
        gcn.lin.weight.copy_(torch.eye(d))
    agg = HypAgg(M.make_manifold("euclidean"), d, norm="sym")
    torch.testing.assert_close(agg(x, ei), gcn(x, ei))


def test_hypagg_euclidean_mean_equals_pyg_mean_with_self_loop():
    """norm="mean" (default): the mean over neighbours and the node itself."""
    from torch_geometric.nn import SimpleConv
    torch.manual_seed(0)
    n, d = 30, 5
    x = torch.randn(n, d, dtype=torch.float64)
    ei = random_graph(n, 50, 13)
    ref = SimpleConv(aggr="mean", combine_root="self_loop")(x, ei)
    torch.testing.assert_close(HypAgg(M.make_manifold("euclidean"), d)(x, ei), ref)


@pytest.mark.parametrize("name", ["poincare", "lorentz"])
def test_hypagg_mean_is_convex_combination(name):
    """exp0(D^-1 (A + I) log0 x): a node's weights sum to 1, whatever its degree,
    so a star's hub aggregates to the mean of its leaves and itself."""
    man = M.make_manifold(name, 0.9)
    n = 20
    x = points(man, n, 3, torch.float64, 0.7, 14)
    ei = random_graph(n, 30, 15)
    A = torch.zeros(n, n, dtype=torch.float64)
    A[ei[1], ei[0]] = 1.0
    A = A + torch.eye(n, dtype=torch.float64)
    ref = M.expmap0(man, (A / A.sum(1, keepdim=True)) @ M.logmap0(man, x))
    torch.testing.assert_close(HypAgg(man, 3)(x, ei), ref)
    # identical points stay put under a convex combination (sym would scale them)
    same = M.expmap0(man, torch.full((n, 3), 0.3, dtype=torch.float64))
    torch.testing.assert_close(HypAgg(man, 3)(same, ei), same)
    with pytest.raises(ValueError, match="norm"):
        HypAgg(man, 3, norm="max")


def test_hypagg_poincare_is_dense_formula():
    """exp0(D^-1/2 (A + I) D^-1/2 log0 x), written densely."""
    man = M.make_manifold("poincare", 0.9)
    n = 20
    x = points(man, n, 3, torch.float64, 0.7, 14)
    ei = random_graph(n, 30, 15)
    A = torch.zeros(n, n, dtype=torch.float64)
    A[ei[1], ei[0]] = 1.0
    A = A + torch.eye(n, dtype=torch.float64)
    dinv = A.sum(1).rsqrt()
    ref = M.expmap0(man, (dinv[:, None] * A * dinv[None, :]) @ M.logmap0(man, x))
    torch.testing.assert_close(HypAgg(man, 3, norm="sym")(x, ei), ref)


def test_hypagg_local_euclidean_formula():
    man = M.make_manifold("euclidean")
    n = 15
    x = torch.randn(n, 3, dtype=torch.float64)
    ei = random_graph(n, 20, 16)
    deg = torch.bincount(ei[1], minlength=n).double() + 1
    w = (deg[ei[0]] * deg[ei[1]]).rsqrt()
    ref = x.clone().index_add_(0, ei[1], w[:, None] * (x[ei[0]] - x[ei[1]]))
    torch.testing.assert_close(HypAgg(man, 3, local_agg=True, norm="sym")(x, ei), ref)


@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize("name", KINDS)
def test_attention_weights_sum_to_one_per_target(name, local):
    torch.manual_seed(0)
    man = M.make_manifold(name, 1.0)
    agg = HypAgg(man, 4, attention=True, local_agg=local)
    n = 30
    x = points(man, n, 4, torch.float32, 1.0, 17)
    ei = random_graph(n, 40, 18)
    ei_sl, alpha = agg.attention_weights(x, ei)
    assert ei_sl.size(1) == ei.size(1) + n and (alpha >= 0).all()
    sums = torch.zeros(n).index_add_(0, ei_sl[1], alpha)
    torch.testing.assert_close(sums, torch.ones(n))
    with pytest.raises(ValueError, match="attention"):
        HypAgg(man, 4).attention_weights(x, ei)


@pytest.mark.parametrize("attention,local", AGG_MODES)
@pytest.mark.parametrize("name", KINDS)
def test_hypagg_bipartite_and_trimmed_targets_match_full(name, attention, local):
    """Targets = first rows (size) or (x_src, x_dst) with given degrees = full result rows."""
    torch.manual_seed(0)
    man = M.make_manifold(name, 1.0)
    agg = HypAgg(man, 3, attention=attention, local_agg=local).double()
    n, t = 25, 9
    x = points(man, n, 3, torch.float64, 0.8, 19)
    ei = random_graph(n, 40, 20)
    full = agg(x, ei)
    deg = torch.bincount(ei[1], minlength=n).double() + 1
    torch.testing.assert_close(agg(x, ei, size=(n, t), deg=deg), full[:t])
    # bipartite: the in-edges of targets t..n-1, sources relabelled to a subset
    mask = ei[1] >= t
    src, dst = ei[0, mask], ei[1, mask] - t
    sub, inv = torch.unique(src, return_inverse=True)
    out = agg((x[sub], x[t:]), torch.stack([inv, dst]), deg=(deg[sub], deg[t:]))
    torch.testing.assert_close(out, full[t:])


def test_hypagg_bipartite_gcn_needs_degrees():
    man = M.make_manifold("poincare")
    x = points(man, 4, 2, torch.float32)
    with pytest.raises(ValueError, match="deg"):
        HypAgg(man, 2, norm="sym")((x, x[:2]), torch.tensor([[2, 3], [0, 1]]))


def test_hypagg_isolated_nodes_and_self_loops_in_input():
    man = M.make_manifold("lorentz", 1.0)
    x = points(man, 5, 2, torch.float64, 0.5, 21)
    ei = torch.tensor([[0, 1, 2], [1, 0, 2]])        # node 2 only has a self-loop; 3, 4 isolated
    for att, loc in AGG_MODES:
        y = HypAgg(man, 2, attention=att, local_agg=loc).double()(x, ei)
        assert on_manifold(man, y)
        torch.testing.assert_close(y[2:], x[2:])      # a lone node keeps its point


@pytest.mark.parametrize("name", HYP)
def test_lorentz_and_ball_local_agg_float32_close_to_float64(name):
    torch.manual_seed(0)
    man = M.make_manifold(name, 1.0)
    agg = HypAgg(man, 4, local_agg=True)
    # points up to ~3 from the origin (the float32 ball ends at ~6.2)
    x = points(man, 40, 4, torch.float64, 0.5 if name == "poincare" else 1.0, 22)
    ei = random_graph(40, 80, 23)
    y64 = agg.double()(x, ei)
    y32 = agg.float()(x.float(), ei)
    d = M.dist(man, man.projx(y32.double()), y64)
    assert d.max() < 1e-3


# --------------------------------------------------------------- extremes
@settings(max_examples=12, deadline=None)
@given(log_scale=st.floats(-8, 6), name=st.sampled_from(HYP),
       mode=st.sampled_from(AGG_MODES), seed=st.integers(0, 100))
def test_block_finite_for_any_input_scale_float32(log_scale, name, mode, seed):
    """HypLinear -> HypAgg -> HypAct on points from tangent norms 1e-8..1e6: on the
    manifold, finite gradients for inputs and parameters."""
    torch.manual_seed(seed)
    man = M.make_manifold(name, 1.0)
    lin, agg = HypLinear(man, 4, 4), HypAgg(man, 4, attention=mode[0], local_agg=mode[1])
    act = HypAct(man, M.make_manifold(name, 0.5), "relu")
    u = (10.0 ** log_scale * torch.randn(12, 4)).requires_grad_(True)
    x = M.expmap0(man, u)
    y = act(agg(lin(x), random_graph(12, 20, seed)))
    assert on_manifold(act.manifold_out, y)
    y.sum().backward()
    assert finite_grads(lin, u) and finite_grads(agg)


@pytest.mark.parametrize("mode", AGG_MODES)
def test_ball_points_at_the_boundary_float32(mode):
    """Unprojected points with |x| = 1 - 1e-7 (beyond geoopt's float32 projection)."""
    torch.manual_seed(0)
    man = M.make_manifold("poincare", 1.0)
    d = torch.randn(10, 3)
    x = (d / d.norm(dim=-1, keepdim=True) * (1 - 1e-7)).requires_grad_(True)
    lin, agg = HypLinear(man, 3, 3), HypAgg(man, 3, attention=mode[0], local_agg=mode[1])
    y = agg(lin(x), random_graph(10, 15, 24))
    assert on_manifold(man, y)
    y.pow(2).sum().backward()
    assert finite_grads(lin, x) and finite_grads(agg)


def test_reprs():
    man = M.make_manifold("poincare")
    assert repr(HypLinear(man, 3, 2)) == \
        "HypLinear(3, 2, manifold=poincare, bias=True, dropout=0.0)"
    assert repr(HypAgg(man, 3, attention=True)) == \
        "HypAgg(3, manifold=poincare, attention=True, local_agg=False, norm=mean)"
    assert repr(HypAct(man, man, "relu")) == "HypAct(relu, poincare -> poincare)"
    assert isinstance(HypLinear(man, 3, 2).bias, geoopt.ManifoldParameter)
    assert HypLinear(M.make_manifold("lorentz"), 3, 2).bias.shape == (2,)
