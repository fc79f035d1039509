"""Link prediction, negative sampling and filtered parent ranking."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

import hgraph.eval.ranking as ranking
from hgraph.eval import link_prediction, parent_ranking, sample_lp_negatives
from hgraph.manifolds import expmap0, make_manifold, pairwise_dist


def csr(rows, n):
    r = [u for u, vs in rows.items() for _ in vs]
    c = [v for vs in rows.values() for v in vs]
    return sp.csr_matrix((np.ones(len(r), dtype=bool), (r, c)), shape=(n, n))


def line(*coords, dtype=torch.float64):
    return torch.tensor([[c, 0.0] for c in coords], dtype=dtype)


# ------------------------------------------------------------------ link_prediction
def test_link_prediction_hand_case():
    e = make_manifold("euclidean")
    x = line(0, 1, 2, 1.5, 3)
    pos = torch.tensor([[0, 1], [0, 2]])       # d = 1, 2
    neg = torch.tensor([[0, 3], [0, 4]])       # d = 1.5, 3
    r = link_prediction(e, x, pos, neg)
    # scores -1, -2 (pos) vs -1.5, -3 (neg): 3 of 4 pos/neg pairs ordered right
    assert r["roc_auc"] == pytest.approx(3 / 4)
    # order: pos, neg, pos, neg -> precision at the positives 1/1, 2/3
    assert r["ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert (r["num_pos"], r["num_neg"]) == (2, 2)


@pytest.mark.parametrize("name", ["poincare", "lorentz", "euclidean"])
def test_link_prediction_perfect_and_dtypes(name):
    m = make_manifold(name)
    g = torch.Generator().manual_seed(0)
    x = expmap0(m, torch.randn(40, 3, generator=g, dtype=torch.float64))
    d = pairwise_dist(m, x).numpy()
    iu = np.triu_indices(40, 1)
    order = np.argsort(d[iu])
    pairs = np.stack(iu, 1)[order]
    pos, neg = pairs[:30], pairs[-30:]                 # nearest pairs vs farthest pairs
    r64 = link_prediction(m, x, pos, neg)
    assert r64["roc_auc"] == 1.0 and r64["ap"] == 1.0
    mixed = np.concatenate([pairs[::7], pairs[3::11]])
    a = link_prediction(m, x, mixed[:20], mixed[20:])
    b = link_prediction(m, x.float(), mixed[:20], mixed[20:])
    assert a["roc_auc"] == pytest.approx(b["roc_auc"]) and a["ap"] == pytest.approx(b["ap"])


def test_link_prediction_rejects_empty():
    e = make_manifold("euclidean")
    with pytest.raises(ValueError, match="at least one"):
        link_prediction(e, line(0, 1), np.zeros((0, 2), dtype=np.int64), [[0, 1]])


# ------------------------------------------------------------------ negatives
def test_negatives_never_self_or_forbidden():
    n = 30
    rng = np.random.default_rng(0)
    forbidden = sp.random(n, n, density=0.4, random_state=1, format="csr").astype(bool)
    pos = np.stack([rng.integers(0, n, 50), rng.integers(0, n, 50)], 1)
    neg = sample_lp_negatives(pos, n, k=5, forbidden=forbidden, seed=3)
    assert neg.dtype == torch.int64 and neg.shape == (250, 2)
    c, w = neg[:, 0].numpy(), neg[:, 1].numpy()
    assert np.all(c != w)
    assert not forbidden.toarray()[c, w].any()
    np.testing.assert_array_equal(c, np.repeat(pos[:, 0], 5))       # row i*k + r
    assert torch.equal(neg, sample_lp_negatives(pos, n, 5, forbidden, seed=3))
    assert not torch.equal(neg, sample_lp_negatives(pos, n, 5, forbidden, seed=4))


def test_negatives_drop_what_cannot_be_drawn():
    # node 0 may pair with nothing: every w != 0 is forbidden
    n = 10
    forbidden = csr({0: list(range(1, n))}, n)
    neg = sample_lp_negatives(np.array([[0, 1], [2, 3]]), n, k=4, forbidden=forbidden, seed=0)
    assert neg.shape == (4, 2) and torch.all(neg[:, 0] == 2) and torch.all(neg[:, 1] != 2)
    only_self = sample_lp_negatives(np.array([[0, 1]]), 2, k=3)      # w must be 1
    assert torch.all(only_self[:, 1] == 1) and len(only_self) == 3


# ------------------------------------------------------------------ parent_ranking
def test_parent_ranking_hand_case():
    e = make_manifold("euclidean")
    # child 0 at 0; true parent 1 at 2; others: 2 at 1, 3 at -1.5, 4 at 3, 5 at 0.5 (another parent)
    x = line(0, 2, 1, -1.5, 3, 0.5)
    q = np.array([[0, 1]])
    raw = parent_ranking(e, x, q)
    assert raw["mean_rank"] == 4.0                       # 5 (0.5), 2 (1), 3 (1.5) are closer
    filt = parent_ranking(e, x, q, filter=csr({0: [1, 5]}, 6))
    assert filt["mean_rank"] == 3.0 and filt["mrr"] == pytest.approx(1 / 3)
    assert (filt["hits@1"], filt["hits@3"], filt["hits@10"]) == (0.0, 1.0, 1.0)
    cand = np.array([True, True, False, True, True, True])
    assert parent_ranking(e, x, q, filter=csr({0: [1, 5]}, 6), candidates=cand)["mean_rank"] == 2.0
    # the true parent is ranked even when it is not a candidate
    cand[1] = False
    assert parent_ranking(e, x, q, filter=csr({0: [1, 5]}, 6), candidates=cand)["mean_rank"] == 2.0


def test_parent_ranking_dag_two_parents_and_ties():
    e = make_manifold("euclidean")
    # child 0 with parents 1 (d=1) and 2 (d=2); node 3 ties with parent 2
    x = line(0, 1, 2, -2, 5)
    q = np.array([[0, 1], [0, 2]])
    f = csr({0: [1, 2]}, 5)
    r = parent_ranking(e, x, q, filter=f)
    # query (0,1): rank 1; query (0,2): parent 1 filtered, node 3 tied (not closer) -> rank 1
    assert r["mean_rank"] == 1.0 and r["mrr"] == 1.0 and r["num_queries"] == 2
    r = parent_ranking(e, x, q)                          # unfiltered: (0,2) has 1 closer
    assert r["mean_rank"] == 1.5 and r["mrr"] == pytest.approx(0.75)


def test_parent_ranking_chunk_path_and_reference(monkeypatch):
    m = make_manifold("poincare")
    g = torch.Generator().manual_seed(1)
    n = 90
    x = expmap0(m, torch.randn(n, 3, generator=g, dtype=torch.float64))
    rng = np.random.default_rng(2)
    child = rng.integers(0, n, 60)
    par = (child + rng.integers(1, n, 60)) % n
    q = np.stack([child, par], 1)
    filt = sp.random(n, n, density=0.1, random_state=3, format="csr").astype(bool)
    cand = rng.random(n) < 0.7
    d = pairwise_dist(m, x).numpy()
    want = []
    for c, p in q:                                       # the definition, literally
        ok = cand.copy()
        ok[c] = False
        ok[filt[c].indices] = False
        want.append(1 + int((d[c, ok] < d[c, p]).sum()))
    want = np.array(want, dtype=float)
    ref = parent_ranking(m, x, q, filter=filt, candidates=cand, chunk=1024)
    assert ref["mean_rank"] == pytest.approx(want.mean())
    assert ref["mrr"] == pytest.approx(np.mean(1 / want))
    assert ref["hits@3"] == pytest.approx(np.mean(want <= 3))
    for chunk in (1, 13):
        assert parent_ranking(m, x, q, filter=filt, candidates=cand, chunk=chunk) == ref
    orig = ranking._Engine.__init__

    def as_accelerator(self, *a, **k):
        orig(self, *a, **k)
        self.cpu, self.tile, self.threads = False, self.chunk, 1
    monkeypatch.setattr(ranking._Engine, "__init__", as_accelerator)
    assert parent_ranking(m, x, q, filter=filt, candidates=cand, chunk=16) == ref


def test_parent_ranking_perfect_and_errors():
    e = make_manifold("euclidean")
    x = line(0, 10, 21, 33)          # gaps grow: each node's parent is its strictly nearest node
    q = np.array([[1, 0], [2, 1], [3, 2]])
    f = csr({1: [0], 2: [1], 3: [2]}, 4)
    r = parent_ranking(e, x, q, filter=f)
    assert r["mrr"] == 1.0 and r["hits@1"] == 1.0
    with pytest.raises(ValueError, match="own parent"):
        parent_ranking(e, x, np.array([[1, 1]]))
    with pytest.raises(ValueError, match="outside"):
        parent_ranking(e, x, np.array([[1, 7]]))
    with pytest.raises(ValueError, match="bool mask"):
        parent_ranking(e, x, q, candidates=np.ones(3, dtype=bool))
