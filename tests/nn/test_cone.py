"""Nested cones (:func:`hgraph.manifolds.construct.cone`), the shallow table's
``init="cone"`` (the shallow preset's start): radii by level, determinism, DAGs,
curvature and the hyperboloid, and the closure ranking it is built for."""
import numpy as np
import pytest
import torch

from hgraph import manifolds as M
from hgraph.config import ModelConfig
from hgraph.eval.ranking import reconstruction
from hgraph.manifolds.construct import clamp_radius, cone, construct, spanning_tree
from hgraph.nn import EncoderSpec, build_encoder

BALL = M.make_manifold("poincare", 1.0)


def balanced_tree(children=(6, 6, 6)):
    """(E, 2) (child, parent) edges of a tree whose level-l nodes have children[l] children,
    and each node's level."""
    edges, level, frontier, nxt = [], [0], [0], 1
    for depth, k in enumerate(children, start=1):
        new = []
        for p in frontier:
            for _ in range(k):
                edges.append((nxt, p))
                level.append(depth)
                new.append(nxt)
                nxt += 1
        frontier = new
    return np.array(edges), np.array(level)


def closure(edges, n):
    """(N, N) bool: row u = u's proper ancestors (the reconstruction positives)."""
    import scipy.sparse as sp
    parent = spanning_tree(edges, n)
    rows, cols = [], []
    for u in range(n):
        p = parent[u]
        while p >= 0:
            rows.append(u)
            cols.append(p)
            p = parent[p]
    return sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(n, n))


@pytest.mark.parametrize("dim", [2, 5, 10])
def test_radius_grows_with_level_root_at_origin(dim):
    edges, level = balanced_tree((4, 3, 3))
    n = len(level)
    x, st = cone(edges, n, dim, radius=8.0)
    assert x.dtype == torch.float64 and x.shape == (n, dim)
    r = M.dist0(BALL, x)
    assert float(r[0]) == 0.0 and st["depth"] == 3
    torch.testing.assert_close(r, torch.from_numpy(8.0 * np.sqrt(level / 3)), rtol=1e-9,
                               atol=1e-9)
    assert st["radius"] == pytest.approx(8.0)


def test_default_radius_is_the_clamp_of_the_dtype():
    edges, level = balanced_tree((3, 3))
    for dtype in (torch.float32, torch.float64):
        x, st = cone(edges, len(level), 4, dtype=dtype)
        assert st["radius"] == pytest.approx(clamp_radius(dtype), rel=1e-6)
        assert float(x.norm(dim=-1).max()) <= 1 - M.BOUNDARY_EPS[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cones_rank_ancestors_first_where_the_construction_does_not(dtype):
    """The closure ranking (ancestors before every other node): nested cones get it nearly
    right untrained, Sala et al.'s construction (siblings at 2 tau + 2 log sin(θ/2), nearer
    than the grandparent at 2 tau) does not."""
    edges, level = balanced_tree((6, 6, 6))
    n = len(level)
    pos = closure(edges, n)
    x, _ = cone(edges, n, 10, radius=0.8 * clamp_radius(dtype), dtype=dtype)
    got = reconstruction(BALL, x.to(dtype), pos)
    y, _ = construct(edges, n, 10, dtype=dtype)
    base = reconstruction(BALL, y.to(dtype), pos)
    assert got["map"] > base["map"] + 0.15, (got, base)
    if dtype == torch.float64:       # float32's clamp (6.2 from the origin) leaves less room
        assert got["map"] > 0.95, got


def test_deterministic_per_seed_and_parents_spanning_follows_the_spanning_tree():
    edges, level = balanced_tree((3, 3, 2))
    n = len(level)
    a, _ = cone(edges, n, 5, seed=3)
    assert torch.equal(a, cone(edges, n, 5, seed=3)[0])
    assert not torch.equal(a, cone(edges, n, 5, seed=4)[0])
    assert torch.equal(a, cone(edges, n, 5, seed=3, parents="spanning")[0])   # a tree: the same
    # a second, deeper parent for the last node: the spanning tree keeps the shallower
    dag = np.vstack([edges, [[n - 1, n - 2]]])
    assert spanning_tree(dag, n)[n - 1] == spanning_tree(edges, n)[n - 1]
    torch.testing.assert_close(cone(dag, n, 5, seed=3, parents="spanning")[0], a, rtol=0, atol=0)
    with pytest.raises(ValueError, match="parents"):
        cone(edges, n, 5, parents="first")


def test_a_node_of_two_lineages_lies_between_them_and_below_both():
    """parents="all": a leaf given a second parent in another level-1 subtree points
    between its parents (nearer the second than in the spanning-tree cone) and lies
    farther from the origin than every ancestor (its level is its longest path)."""
    edges, level = balanced_tree((3, 3, 2))
    n = len(level)
    leaf = n - 1
    first = int(edges[edges[:, 0] == leaf][0, 1])                   # level 2, subtree 3
    other = int(np.flatnonzero(level == 3)[0])                       # a level-3 leaf, subtree 1
    dag = np.vstack([edges, [[leaf, other]]])
    span, _ = cone(dag, n, 5, radius=6.0, seed=1, parents="spanning")
    both, _ = cone(dag, n, 5, radius=6.0, seed=1)

    def angle(x, i, j):
        return float(torch.arccos(torch.nn.functional.cosine_similarity(x[i], x[j], dim=0)))

    assert angle(both, leaf, other) < angle(span, leaf, other) - 0.3
    assert angle(both, leaf, first) < 0.5 * np.pi and angle(both, leaf, other) < 0.5 * np.pi
    # the leaf is now at level 4 (longest path): the farthest, past both parents
    norms = both.norm(dim=-1)
    assert float(norms[leaf]) == pytest.approx(float(norms.max()))
    assert float(norms[leaf]) > float(norms[other]) > float(norms[first])
    # every other node keeps its place, except that depth 4 rescales the radii
    untouched = np.setdiff1d(np.arange(n), [leaf])
    d_span = torch.nn.functional.normalize(span[untouched], dim=-1)
    d_both = torch.nn.functional.normalize(both[untouched], dim=-1)
    torch.testing.assert_close(d_both[1:], d_span[1:])             # row 0: the root, at 0


@pytest.mark.parametrize("c", [0.5, 2.0])
def test_curvature_and_hyperboloid(c):
    edges, level = balanced_tree((3, 2))
    n = len(level)
    x, _ = cone(edges, n, 4, radius=3.0, curvature=c)
    ball = M.make_manifold("poincare", c)
    torch.testing.assert_close(M.dist0(ball, x),
                               torch.from_numpy(3.0 * np.sqrt(level / 2)), rtol=1e-6, atol=1e-9)
    h, _ = cone(edges, n, 4, radius=3.0, curvature=c, lorentz=True)
    assert h.shape == (n, 5)
    inner = -h[:, 0] ** 2 + (h[:, 1:] ** 2).sum(-1)
    torch.testing.assert_close(inner, torch.full((n,), -1.0 / c, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shallow_cone_init_inside_its_dtypes_clamp(dtype):
    from hgraph.nn.shallow import CONE_RADIUS
    edges, level = balanced_tree((4, 3))
    n = len(level)
    torch.manual_seed(7)
    sh = build_encoder(EncoderSpec(cfg=ModelConfig(dim=4, init="cone"), manifold=BALL,
                                   num_nodes=n, in_dim=None, edges=edges,
                                   dtype=dtype)).to(dtype)
    want, _ = cone(edges, n, 4, radius=CONE_RADIUS * clamp_radius(dtype), seed=7,
                   dtype=dtype)
    torch.testing.assert_close(sh.weight.detach(), want.to(dtype))
    r = M.dist0(BALL, sh.weight.detach().double())
    assert float(r.max()) == pytest.approx(CONE_RADIUS * clamp_radius(dtype), rel=1e-4)
    # without the graph (an encoder rebuilt around saved weights) the uniform init stands in
    plain = build_encoder(EncoderSpec(cfg=ModelConfig(dim=4, init="cone"), manifold=BALL,
                                      num_nodes=n, in_dim=None))
    assert float(plain.weight.detach().abs().max()) < 1e-2
