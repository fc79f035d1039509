"""Norm-level correlation and ancestor MAP."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hgraph.eval import ancestor_map, norm_level_spearman, reconstruction
from hgraph.data.taxonomy import transitive_closure
from hgraph.manifolds import expmap0, make_manifold, poincare_to_lorentz


def csr(rows, n):
    r = [u for u, vs in rows.items() for _ in vs]
    c = [v for vs in rows.values() for v in vs]
    return sp.csr_matrix((np.ones(len(r), dtype=bool), (r, c)), shape=(n, n))


def line(*coords, dtype=torch.float64):
    return torch.tensor([[c, 0.0] for c in coords], dtype=dtype)


# ------------------------------------------------------------------ spearman
@pytest.mark.parametrize("name", ["poincare", "lorentz", "euclidean"])
def test_norm_level_spearman_signs(name):
    m = make_manifold(name)
    r = torch.tensor([0.0, 0.3, -0.35, 0.6, 0.62, -0.7], dtype=torch.float64)
    x = torch.stack([r, torch.zeros_like(r)], 1)
    if name == "lorentz":
        x = poincare_to_lorentz(x)
    level = np.array([0, 1, 1, 2, 2, 2])
    # distance from the origin grows with |r| and never decreases with level
    up = norm_level_spearman(m, x, level)
    # ties in level: the rank correlation is that of (0,1,2,3,4,5) with (1,2.5,2.5,5,5,5)
    want = np.corrcoef([0, 1, 2, 3, 4, 5], [1, 2.5, 2.5, 5, 5, 5])[0, 1]
    assert up["spearman"] == pytest.approx(want) and up["spearman"] > 0.9
    assert 0 <= up["pvalue"] < 0.05
    down = norm_level_spearman(m, x, torch.tensor(2 - level))
    assert down["spearman"] == pytest.approx(-want)


def test_norm_level_spearman_constant_is_nan():
    m = make_manifold("poincare")
    r = norm_level_spearman(m, line(0.1, 0.2, 0.3), np.zeros(3))
    assert math.isnan(r["spearman"]) and math.isnan(r["pvalue"])
    with pytest.raises(ValueError, match="shape"):
        norm_level_spearman(m, line(0.1, 0.2), np.zeros(3))


# ------------------------------------------------------------------ ancestor_map
def test_ancestor_map_hand_case():
    e = make_manifold("euclidean")
    # query 0 at 0 (not a candidate); ancestors 1 (at 1), 2 (at 3), 5 (at 0.2, not a candidate)
    # other candidates: 3 at -2, 4 at 10
    x = line(0, 1, 3, -2, 10, 0.2)
    pos = csr({0: [1, 2, 5]}, 6)
    cand = np.array([False, True, True, True, True, False])
    r = ancestor_map(e, x, [0], pos, cand)
    # ranked candidates: 1 (1), 3 (2), 2 (3), 4 (10); relevant {1, 2}
    # AP = (1/1 + 2/3) / 2; ranks among non-ancestors: 1 -> 1, 2 -> 2
    assert r["map"] == pytest.approx((1 + 2 / 3) / 2)
    assert r["mean_rank"] == pytest.approx(1.5)
    assert (r["num_queries"], r["num_pairs"], r["num_skipped"]) == (1, 2, 0)
    # a query whose ancestors are all outside the candidates is skipped
    r = ancestor_map(e, x, [0, 3], csr({0: [1, 2, 5], 3: [5]}, 6), cand)
    assert r["num_queries"] == 1 and r["num_skipped"] == 1


def test_ancestor_map_equals_reconstruction_on_all_nodes():
    n = 80
    rng = np.random.default_rng(0)
    parent = np.array([rng.integers(0, max(1, i // 2)) for i in range(1, n)])
    closure = transitive_closure(np.stack([np.arange(1, n), parent], 1), n)
    m = make_manifold("poincare")
    x = expmap0(m, torch.randn(n, 3, generator=torch.Generator().manual_seed(1)))
    rec = reconstruction(m, x, closure)
    am = ancestor_map(m, x, torch.arange(n), closure)
    assert am["map"] == rec["map"] and am["mean_rank"] == rec["mean_rank"]
    assert am["num_queries"] == rec["num_sources"] and am["num_skipped"] == 1   # the root
    # duplicates in queries count once
    assert ancestor_map(m, x, np.r_[np.arange(n), np.arange(5)], closure) == am
