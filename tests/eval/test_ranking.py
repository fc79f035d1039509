"""Reconstruction metric: hand-computed cases, a brute-force reference, invariants."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import average_precision_score

import hgraph.eval.ranking as ranking
import hgraph.eval.ranking.engine as ranking_engine
from hgraph.data.taxonomy import transitive_closure
from hgraph.eval import count_below, rank_keys, reconstruction
from hgraph.manifolds import expmap0, make_manifold, pairwise_dist, poincare_to_lorentz

MANIFOLDS = ["poincare", "lorentz", "euclidean"]


def csr(rows, n):
    """Bool CSR from {row: [cols]}."""
    r = [u for u, vs in rows.items() for _ in vs]
    c = [v for vs in rows.values() for v in vs]
    return sp.csr_matrix((np.ones(len(r), dtype=bool), (r, c)), shape=(n, n))


def random_tree_closure(n, seed=0):
    rng = np.random.default_rng(seed)
    parent = np.array([rng.integers(0, max(1, i // 2)) for i in range(1, n)])
    edges = np.stack([np.arange(1, n), parent], axis=1)
    return transitive_closure(edges, n)


def random_points(name, n, dim=3, dtype=torch.float64, seed=0, curvature=1.0):
    m = make_manifold(name, curvature)
    g = torch.Generator().manual_seed(seed)
    x = expmap0(m, torch.randn(n, dim, generator=g, dtype=dtype))
    return m, x


def brute_force(m, x, pos):
    """The definition, literally: numpy over the full distance matrix."""
    d = pairwise_dist(m, x.double()).numpy()
    n = len(d)
    ranks, aps = [], []
    for u in range(n):
        p = pos[u].indices
        p = p[p != u]
        if len(p) == 0:
            continue
        neg = np.ones(n, dtype=bool)
        neg[p] = False
        neg[u] = False
        ranks += [1 + int((d[u, neg] < d[u, v]).sum()) for v in p]
        keep = np.arange(n) != u
        lab = np.zeros(n)
        lab[p] = 1
        aps.append(average_precision_score(lab[keep], -d[u, keep]))
    return float(np.mean(ranks)), float(np.mean(aps)), len(aps), len(ranks)


# ------------------------------------------------------------------ by hand
def test_euclidean_hand_case():
    # points on a line: 0:0, 1:1, 2:3, 3:-2, 4:10
    x = torch.tensor([[0.0, 0], [1, 0], [3, 0], [-2, 0], [10, 0]])
    pos = csr({0: [2, 4], 1: [0]}, 5)
    r = reconstruction(make_manifold("euclidean"), x, pos)
    # source 0: non-neighbours 1 (d=1), 3 (d=2); rank(2)=3 (d=3), rank(4)=3 (d=10)
    #   all-node order 1, 3, 2, 4 -> AP = (1/3 + 2/4) / 2 = 5/12
    # source 1: rank(0) = 1, AP = 1
    assert r["mean_rank"] == pytest.approx(7 / 3)
    assert r["map"] == pytest.approx((5 / 12 + 1) / 2)
    assert (r["num_sources"], r["num_pairs"]) == (2, 3)
    assert r["sampled"] is False and r["sample_size"] == 2


@pytest.mark.parametrize("model", ["poincare", "lorentz"])
def test_hyperbolic_hand_case(model):
    # points on one diameter of the unit ball: d(a, b) = |2 artanh a - 2 artanh b|
    # s = 2 artanh(r): 0 -> 0, 0.5 -> 1.099, -0.5 -> -1.099, 0.9 -> 2.944, 0.7 -> 1.735
    r = torch.tensor([0.0, 0.5, -0.5, 0.9, 0.7], dtype=torch.float64)
    x = torch.stack([r, torch.zeros_like(r)], dim=1)
    if model == "lorentz":
        x = poincare_to_lorentz(x)
    pos = csr({3: [0], 4: [1]}, 5)
    res = reconstruction(make_manifold(model), x, pos)
    # source 3 (s=2.944): root at 2.944; closer non-neighbours 0.5 (1.846) and
    #   0.7 (1.210) -> rank 3, AP 1/3
    # source 4 (s=1.735): node 1 at 0.636 is the nearest -> rank 1, AP 1
    assert res["mean_rank"] == pytest.approx(2.0)
    assert res["map"] == pytest.approx((1 / 3 + 1) / 2)


def test_ties_count_strictly_closer_only():
    e = make_manifold("euclidean")
    # 0 at origin; positive 1 and negative 2 at the same point; negative 3 strictly closer
    x = torch.tensor([[0.0, 0], [1, 0], [1, 0], [0, 0.5], [5, 5]])
    r = reconstruction(e, x, csr({0: [1]}, 5))
    assert r["mean_rank"] == 2.0            # only node 3 counts; the tied node 2 does not
    assert r["map"] == pytest.approx(1 / 2)  # 1 / (1 + #strictly closer = 1)
    # two tied positives: each has no strictly closer positive or node -> AP 1
    x = torch.tensor([[0.0, 0], [1, 0], [1, 0], [3, 0]])
    r = reconstruction(e, x, csr({0: [1, 2]}, 4))
    assert r["mean_rank"] == 1.0 and r["map"] == 1.0
    # duplicate points get identical keys
    k = rank_keys(make_manifold("poincare"), torch.tensor([[0.1, 0.2], [0.3, 0.3], [0.3, 0.3]]))
    assert torch.equal(k[:, 1], k[:, 2])


def test_diagonal_positives_are_ignored():
    e = make_manifold("euclidean")
    x = torch.tensor([[0.0], [1.0], [2.0]])
    a = reconstruction(e, x, csr({0: [0, 2]}, 3))
    b = reconstruction(e, x, csr({0: [2]}, 3))
    assert a == b and a["mean_rank"] == 2.0


# ------------------------------------------------------------------ reference
@pytest.mark.parametrize("name", MANIFOLDS)
def test_matches_brute_force(name):
    n = 70
    pos = random_tree_closure(n, seed=1)
    m, x = random_points(name, n, seed=2)
    sources = np.flatnonzero(np.diff(pos.indptr))
    mr, mp, ns, npairs = brute_force(m, x, pos)
    for strategy in ("dense", "sparse", "sort", "auto"):
        got = ranking._rank_eval(m, x, sources, ranking._as_bool_csr(pos, n, "p"),
                                 np.ones(n, dtype=bool), 16, strategy)
        assert got["mean_rank"] == pytest.approx(mr, rel=1e-12)
        assert got["map"] == pytest.approx(mp, rel=1e-9)
        assert (got["num_sources"], got["num_pairs"]) == (ns, npairs)


def test_symmetrised_positives_match_brute_force():
    n = 50
    pos = random_tree_closure(n, seed=3)
    pos = (pos + pos.T).tocsr()
    m, x = random_points("poincare", n, seed=4)
    got = reconstruction(m, x, pos, chunk=13)
    mr, mp, ns, _ = brute_force(m, x, pos)
    assert got["mean_rank"] == pytest.approx(mr) and got["map"] == pytest.approx(mp)
    assert got["num_sources"] == ns == n


@pytest.mark.parametrize("name", MANIFOLDS)
@pytest.mark.parametrize("c", [1.0, 0.3])
def test_keys_order_like_distances(name, c):
    m, x = random_points(name, 60, seed=5, curvature=c)
    k = rank_keys(m, x).numpy()
    d = pairwise_dist(m, x).numpy()
    np.testing.assert_array_equal(np.argsort(k, axis=1, kind="stable")[:, 1:],
                                  np.argsort(d, axis=1, kind="stable")[:, 1:])


# ------------------------------------------------------------------ invariants
def test_perfect_embedding_scores_one():
    # positives = each point's 3 nearest neighbours: ranked first by construction
    m, x = random_points("poincare", 50, seed=6)
    d = pairwise_dist(m, x).numpy()
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, :3]
    pos = csr({u: list(nn[u]) for u in range(50)}, 50)
    r = reconstruction(m, x, pos)
    assert r["mean_rank"] == 1.0 and r["map"] == 1.0
    # a star: root at the origin, leaves on a circle (neighbour chord 1.18 > 1)
    ang = torch.arange(5, dtype=torch.float64) * 2 * math.pi / 5
    x = torch.cat([torch.zeros(1, 2, dtype=torch.float64),
                   torch.stack([ang.cos(), ang.sin()], 1)])
    r = reconstruction(make_manifold("euclidean"), x, csr({i: [0] for i in range(1, 6)}, 6))
    assert (r["mean_rank"], r["map"], r["num_pairs"]) == (1.0, 1.0, 5)


def test_chunk_and_tile_do_not_change_results(monkeypatch):
    n = 150
    pos = random_tree_closure(n, seed=7)
    m, x = random_points("poincare", n, dtype=torch.float32, seed=8)
    ref = reconstruction(m, x, pos, chunk=1024)
    for chunk in (1, 7, 64):
        assert reconstruction(m, x, pos, chunk=chunk) == ref
    monkeypatch.setattr(ranking_engine, "_TILE_ELEMS", 3 * n)  # 3-row tiles on worker threads
    assert reconstruction(m, x, pos, chunk=50) == ref
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # serial path
    assert reconstruction(m, x, pos, chunk=50) == ref


def test_accelerator_path_matches_cpu_path(monkeypatch):
    """The torch counting path (used on CUDA) agrees with the numpy CPU path."""
    n = 100
    pos = ranking._as_bool_csr(random_tree_closure(n, seed=9), n, "p")
    m, x = random_points("lorentz", n, seed=10)
    src = np.flatnonzero(np.diff(pos.indptr))
    ref = ranking._rank_eval(m, x, src, pos, np.ones(n, dtype=bool), 32)
    orig = ranking._Engine.__init__

    def as_accelerator(self, *a, **k):
        orig(self, *a, **k)
        self.cpu, self.tile, self.threads = False, self.chunk, 1
    monkeypatch.setattr(ranking._Engine, "__init__", as_accelerator)
    for strategy in ("dense", "sparse", "sort"):
        got = ranking._rank_eval(m, x, src, pos, np.ones(n, dtype=bool), 32, strategy)
        assert got == ref


def test_sampled_equals_exact_when_sample_covers_all():
    n = 100
    pos = random_tree_closure(n, seed=11)
    m, x = random_points("poincare", n, seed=12)
    exact = reconstruction(m, x, pos)
    full = reconstruction(m, x, pos, sample=10_000, seed=3)
    assert full == exact and full["sampled"] is False
    s1 = reconstruction(m, x, pos, sample=20, seed=5)
    s2 = reconstruction(m, x, pos, sample=20, seed=5)
    assert s1 == s2 and s1["sampled"] is True and s1["sample_size"] == 20
    assert s1 != reconstruction(m, x, pos, sample=20, seed=6)


def test_float32_and_float64_agree():
    n = 200
    pos = random_tree_closure(n, seed=13)
    m, x64 = random_points("poincare", n, dim=4, seed=14)
    r64 = reconstruction(m, x64, pos)
    r32 = reconstruction(m, x64.float(), pos)
    assert r32["mean_rank"] == pytest.approx(r64["mean_rank"], rel=1e-3)
    assert r32["map"] == pytest.approx(r64["map"], abs=1e-3)


def test_count_below_numpy_and_torch_agree():
    g = np.random.default_rng(0)
    K = g.standard_normal((20, 300)).astype(np.float32)
    T = np.sort(g.standard_normal((20, 5)).astype(np.float32), axis=1)[:, ::-1].copy()
    deg = np.sort(g.integers(0, 6, 20))[::-1]
    T[np.arange(5)[None, :] >= deg[:, None]] = -np.inf
    nvalid = ranking._nvalid(deg, 5)
    want = np.where(T[:, :, None] > K[:, None, :], 1, 0).sum(-1)
    K[3, 7] = K[3, 8] = T[3, 0]                       # ties: strictly below only
    want = np.where(T[:, :, None] > K[:, None, :], 1, 0).sum(-1)
    for strategy in ("dense", "sparse", "sort", "auto"):
        np.testing.assert_array_equal(count_below(K, T, nvalid, strategy), want)
        got = count_below(torch.from_numpy(K), torch.from_numpy(T), nvalid, strategy)
        np.testing.assert_array_equal(got.numpy(), want)


def test_mixed_plan_counts_exactly():
    """'auto' on numpy: sparse pass for near thresholds, dense passes for far ones."""
    g = np.random.default_rng(1)
    K = g.random((6, 4000)).astype(np.float32)
    near = np.quantile(K, 0.0005, axis=1)[:, None] * g.random((6, 5))
    far = 0.3 + 0.6 * g.random((6, 2))
    T = np.concatenate([near, far], axis=1).astype(np.float32)
    T[5, 3:] = -np.inf                                 # a row with fewer slots
    K[0, 17] = T[0, 0]                                 # a tie: not below
    frac = (K[:, ::15][:, None, :] < T[:, :, None]).mean(axis=2)
    plan, low = ranking._plan(frac, T > -np.inf)
    assert plan == "mixed" and low[:, :5].any() and not low[:, 5:].any()
    want = (T[:, :, None] > K[:, None, :]).sum(-1)
    np.testing.assert_array_equal(count_below(K, T), want)
    np.testing.assert_array_equal(count_below(K[:, :3999], T),            # leftover columns
                                  (T[:, :, None] > K[:, None, :3999]).sum(-1))


def test_bad_input():
    m, x = random_points("poincare", 10)
    pos = random_tree_closure(10)
    with pytest.raises(ValueError, match="NaN"):
        reconstruction(m, x.clone().fill_(float("nan")), pos)
    with pytest.raises(ValueError, match="shape"):
        reconstruction(m, x, random_tree_closure(11))
    with pytest.raises(ValueError, match="sparse"):
        reconstruction(m, x, pos.toarray())
    with pytest.raises(ValueError, match="chunk"):
        reconstruction(m, x, pos, chunk=0)
    with pytest.raises(ValueError, match="sample"):
        reconstruction(m, x, pos, sample=0)


def test_no_positives():
    m, x = random_points("euclidean", 5)
    r = reconstruction(m, x, sp.csr_matrix((5, 5), dtype=bool))
    assert r["num_sources"] == 0 and math.isnan(r["mean_rank"]) and math.isnan(r["map"])


def test_reconstruction_candidates_exclude_distractors():
    """Points outside the candidate mask neither outrank positives nor act as sources."""
    import geoopt as _g
    man = _g.PoincareBall()
    # a chain 1 -> 0, 2 -> 1 (2's ancestors 1, 0) placed along a ray, plus a
    # distractor 3 sitting right next to node 2 that is not a candidate
    x = torch.tensor([[0.0, 0.0], [0.3, 0.0], [0.6, 0.0], [0.59, 0.01]], dtype=torch.float64)
    pos = sp.csr_matrix((np.ones(3, dtype=bool), ([1, 2, 2], [0, 0, 1])), shape=(4, 4))
    full = reconstruction(man, x, pos)
    masked = reconstruction(man, x, pos, candidates=np.array([True, True, True, False]))
    assert masked["map"] == 1.0 and masked["mean_rank"] == 1.0
    assert full["mean_rank"] > 1.0          # the distractor outranks 2's ancestors
    with pytest.raises(ValueError, match="candidates"):
        reconstruction(man, x, pos, candidates=np.ones(3, dtype=bool))
