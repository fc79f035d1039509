"""Filtered negative sampling and the PyG conversion."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from hgraph.data.graph import to_pyg
from hgraph.data.pairs import NegativeSampler, symmetric
from hgraph.data.taxonomy import Taxonomy


def _tree():
    # 0 root; 1,2 children of 0; 3,4 of 1; 5,6 of 2
    child = [1, 2, 3, 4, 5, 6]
    parent = [0, 0, 1, 1, 2, 2]
    return Taxonomy.from_edges(child, parent)


def test_sampler_never_returns_forbidden_or_self():
    tax = _tree()
    forbidden = symmetric(tax.closure)
    s = NegativeSampler(forbidden, tax.num_nodes)
    rng = np.random.default_rng(0)
    non_root = np.setdiff1d(np.arange(tax.num_nodes), [tax.root])  # the root is related to all
    anchors = np.repeat(non_root, 50)
    neg, mask = s.sample(anchors, 7, rng)
    f = forbidden.toarray()
    u = np.repeat(anchors[:, None], 7, axis=1)
    ok = mask
    assert ok.all()
    assert not np.any(f[u[ok], neg[ok]])
    assert not np.any(u[ok] == neg[ok])


def test_sampler_reports_impossible_anchors_in_mask():
    # node 0 is related to everyone: no valid negative exists
    n = 4
    rows = np.array([0, 0, 0])
    cols = np.array([1, 2, 3])
    forbidden = symmetric(sp.csr_matrix((np.ones(3, bool), (rows, cols)), shape=(n, n)))
    s = NegativeSampler(forbidden, n, rounds=5)
    neg, mask = s.sample(np.array([0, 1]), 4, np.random.default_rng(1))
    assert not mask[0].any()          # nothing valid for anchor 0
    assert mask[1].all()              # 1 can take 2 or 3
    assert set(neg[1].tolist()) <= {2, 3}


def test_sampler_candidates_and_determinism():
    tax = _tree()
    s = NegativeSampler(symmetric(tax.closure), tax.num_nodes, candidates=np.array([5, 6]))
    a = s.sample(np.array([3, 4, 3]), 5, np.random.default_rng(2))
    b = s.sample(np.array([3, 4, 3]), 5, np.random.default_rng(2))
    np.testing.assert_array_equal(a[0], b[0])
    assert set(a[0][a[1]].tolist()) <= {5, 6}


def test_to_pyg_both_directions_only_given_edges():
    tax = _tree()
    train = tax.edges[tax.edges[:, 0] != 3]          # hold out 3 -> 1
    x = np.random.default_rng(0).normal(size=(tax.num_nodes, 4)).astype(np.float32)
    data = to_pyg(tax, train, x)
    ei = data.edge_index.numpy()
    pairs = set(map(tuple, ei.T.tolist()))
    assert (3, 1) not in pairs and (1, 3) not in pairs
    for c, p in train.tolist():
        assert (c, p) in pairs and (p, c) in pairs
    assert data.num_nodes == tax.num_nodes and ei.shape[1] == 2 * len(train)
    assert torch.equal(data.level, torch.as_tensor(tax.level))
    assert data.x.shape == (tax.num_nodes, 4)


@pytest.mark.parametrize("n,density", [(300, 0.05), (2000, 0.002), (50, 0.0)])
def test_is_forbidden_equals_exact_membership(n, density):
    """The bit pre-filter only narrows the search: answers equal a set lookup,
    for drawn pairs, forbidden pairs, the diagonal and broadcast shapes."""
    rng = np.random.default_rng(3)
    rel = sp.random(n, n, density=density, format="csr", random_state=4, dtype=float) != 0
    s = NegativeSampler(rel, n)
    truth = set(zip(*rel.nonzero()))
    coo = rel.tocoo()
    u = np.concatenate([rng.integers(0, n, 5000), coo.row, np.arange(n)])
    w = np.concatenate([rng.integers(0, n, 5000), coo.col, np.arange(n)])
    got = s.is_forbidden(u, w)
    want = np.array([(a, b) in truth or a == b for a, b in zip(u, w)])
    assert np.array_equal(got, want)
    # shapes: (B, 1) anchors against (B, K) candidates
    uu = rng.integers(0, n, (40, 1))
    ww = rng.integers(0, n, (40, 7))
    got = s.is_forbidden(uu, ww)
    assert got.shape == (40, 7)
    assert np.array_equal(got, np.array([[(a, b) in truth or a == b for b in row]
                                         for a, row in zip(uu[:, 0], ww)]))
