"""Metrics of the item -> category task, one implementation each.

Every metric works from the same two inputs: ``topk`` (n, K) the K
best-ranked candidate categories per item (global node ids, best first) and
``rank`` (n,) the 1-based rank of the item's best-ranked true category among
all candidates (ties counted pessimistically: 1 + the number of candidates
strictly closer, plus those equally close, minus one for itself).  Items with
several categories count a hit on any of them.

* :func:`precision_at` -- P@k: share of items with a true category among the
  top k (for single-label items, accuracy@k).
* :func:`mrr` -- mean reciprocal rank of the best true category.
* :func:`hierarchical_precision` -- hP@k as HUSE uses it (Narayana et al.,
  "HUSE: Hierarchical Universal Semantic Embeddings", 2019, Sec. 4,
  "Hierarchical precision@k"), defined in DeViSE (Frome et al., NeurIPS 2013,
  Sec. 4.2): for a true label, grow a ground-truth list from the hierarchy by
  adding the label, then every label within 1 hop, 2 hops, ... until the list
  holds at least k labels; hP@k is the share of the k predictions in that
  list (of every candidate when there are fewer than k).  Hops are edges of
  the undirected hierarchy; labels are candidates.
* :func:`tree_distance` -- hops between the top-1 category and the
  (nearest) true one through their nearest common ancestor (the undirected
  shortest path in a tree): how wrong the mistakes are (0 for a hit).
* :func:`paired_bootstrap` -- confidence interval of the mean difference of a
  per-item metric between two systems on the same items.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import geoopt
import numpy as np
import scipy.sparse as sp
import torch

from hgraph import manifolds as M

Tensor = torch.Tensor

__all__ = ["rank_categories", "rank_scores", "precision_at", "mrr", "hierarchical_precision",
           "tree_distance", "paired_bootstrap", "undirected", "item_metrics"]


def undirected(edges: np.ndarray, num_nodes: int) -> sp.csr_matrix:
    """(N, N) symmetric 0/1 CSR adjacency of the hierarchy's (child, parent) edges."""
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    a = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(num_nodes, num_nodes))
    a = ((a + a.T) > 0).astype(np.float64)
    return a.tocsr()


def _truth_lists(truth: Sequence[Sequence[int]]):
    return [np.asarray(t, dtype=np.int64).reshape(-1) for t in truth]


def rank_scores(scores: Tensor, cand: np.ndarray, truth: Sequence[Sequence[int]],
                k: int = 10, larger_better: bool = True):
    """Top-k and the rank of the truth from a score matrix.

    ``scores``: (n, C) one row per item over the candidate columns ``cand``
    (C,) global ids; ``truth``: per item, its true category ids (global;
    ids not in ``cand`` are ignored, an item with none gets rank C + 1).
    Returns ``(topk (n, k) global ids, rank (n,) int64)``.
    """
    s = scores if larger_better else -scores
    n, C = s.shape
    # column of each candidate id (ids that are no candidate: -1)
    pos = {int(c): j for j, c in enumerate(cand)}
    kk = min(k, C)
    top = torch.topk(s, kk, dim=1).indices.cpu().numpy()
    rank = np.full(n, C + 1, dtype=np.int64)
    for i, t in enumerate(_truth_lists(truth)):
        cols = [pos[int(c)] for c in t if int(c) in pos]
        if not cols:
            continue
        best = s[i, torch.as_tensor(cols, device=s.device)].max()
        # pessimistic ties: candidates as good as the truth (other than itself) rank above it
        rank[i] = int((s[i] > best).sum()) + int((s[i] == best).sum())
    return cand[top], rank


def rank_categories(manifold: geoopt.Manifold, items: Tensor, cats: Tensor, cand: np.ndarray,
                    truth: Sequence[Sequence[int]], k: int = 10, chunk: int = 512,
                    offset: Optional[Tensor] = None):
    """Rank candidate categories by geodesic distance from each item's point.

    ``items``: (n, D) points; ``cats``: (C, D) points of the candidates
    ``cand`` (C,) global ids.  Distances come from :func:`hgraph.manifolds.
    pairwise_dist` (one matmul per chunk of ``chunk`` items).  Returns
    ``(topk (n, k), rank (n,))`` as :func:`rank_scores`.  ``offset``: (C,)
    added to every item's distance to each candidate (a handicap; see
    :mod:`hgraph.tasks.calibration`).
    """
    tops, ranks = [], []
    truth = _truth_lists(truth)
    with torch.no_grad():
        for a in range(0, items.shape[0], chunk):
            d = M.pairwise_dist(manifold, items[a:a + chunk], cats)
            if offset is not None:
                d = d + offset
            t, r = rank_scores(d, cand, truth[a:a + chunk], k=k, larger_better=False)
            tops.append(t)
            ranks.append(r)
    if not tops:
        return np.zeros((0, min(k, len(cand))), dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(tops), np.concatenate(ranks)


def precision_at(topk: np.ndarray, truth: Sequence[Sequence[int]], k: int) -> np.ndarray:
    """(n,) 1.0 where a true category is among the first ``k`` of ``topk``, else 0."""
    return np.array([float(np.isin(row[:k], t).any())
                     for row, t in zip(topk, _truth_lists(truth))])


def mrr(rank: np.ndarray) -> np.ndarray:
    """(n,) reciprocal rank of the best true category (``rank`` 1-based)."""
    return 1.0 / np.asarray(rank, dtype=np.float64)


def _within_hops(adj: sp.csr_matrix, src: int, k: int, allowed: np.ndarray) -> set:
    """Labels (``allowed`` only) within h hops of ``src``, the smallest h with >= k of them."""
    seen = {src}
    frontier = [src]
    out = {src} if allowed[src] else set()
    while len(out) < k and frontier:
        nxt = []
        for u in frontier:
            for v in adj.indices[adj.indptr[u]:adj.indptr[u + 1]]:
                v = int(v)
                if v not in seen:
                    seen.add(v)
                    nxt.append(v)
        out.update(v for v in nxt if allowed[v])
        frontier = nxt
    return out


def hierarchical_precision(topk: np.ndarray, truth: Sequence[Sequence[int]], k: int,
                           adj: sp.csr_matrix, allowed: Optional[np.ndarray] = None) -> np.ndarray:
    """(n,) hP@k (HUSE / DeViSE, see the module docstring) per item.

    ``adj``: undirected adjacency (:func:`undirected`); ``allowed``: (N,) bool,
    the candidate labels (default all).  For an item with several true
    categories, the best of their lists counts.
    """
    N = adj.shape[0]
    allowed = np.ones(N, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    cache: Dict[int, set] = {}
    per = max(min(k, int(allowed.sum())), 1)    # fewer candidates than k: out of all of them
    out = np.zeros(len(topk))
    for i, (row, t) in enumerate(zip(topk, _truth_lists(truth))):
        best = 0.0
        for c in t:
            c = int(c)
            if c not in cache:
                cache[c] = _within_hops(adj, c, k, allowed)
            gt = cache[c]
            best = max(best, sum(int(p) in gt for p in row[:k]) / per)
        out[i] = best
    return out


def tree_distance(top1: np.ndarray, truth: Sequence[Sequence[int]],
                  up_hops: sp.csr_matrix) -> np.ndarray:
    """(n,) hops between each item's top-1 category and its nearest true
    category through their nearest common ancestor: ``min over common
    ancestors c (or a == c / b == c) of hops(a -> c) + hops(b -> c)``.

    ``up_hops``: (N, N) CSR, ``[u, v]`` the fewest edges from u up to its
    ancestor v (:func:`hgraph.data.taxonomy.transitive_closure` with
    ``hops=True``).  In a tree this is the undirected shortest path; in a DAG
    it is the shortest path that climbs then descends (a detour through a
    shared *descendant* is not counted).  inf when no common ancestor exists.
    """
    top1 = np.asarray(top1, dtype=np.int64).reshape(-1)
    ip, ix, hv = up_hops.indptr, up_hops.indices, up_hops.data

    def ups(u: int):
        return (np.concatenate([[u], ix[ip[u]:ip[u + 1]]]),
                np.concatenate([[0], hv[ip[u]:ip[u + 1]]]).astype(np.float64))
    out = np.full(len(top1), np.inf)
    for i, (a, t) in enumerate(zip(top1, _truth_lists(truth))):
        na, ha = ups(int(a))
        best = np.inf
        for b in t:
            if int(b) == int(a):
                best = 0.0
                break
            nb, hb = ups(int(b))
            common, ia, ib = np.intersect1d(na, nb, assume_unique=True, return_indices=True)
            if len(common):
                best = min(best, float((ha[ia] + hb[ib]).min()))
        out[i] = best
    return out


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, alpha: float = 0.05,
                     seed: int = 0) -> Dict[str, float]:
    """Mean of ``a - b`` over items and its percentile bootstrap interval.

    ``a, b``: (n,) a per-item metric of two systems on the same items (paired:
    one resampling of the items for both).  Returns ``diff``, ``lo``, ``hi``
    (the ``1 - alpha`` interval) and ``p_le0``, the bootstrap share of
    resampled differences <= 0.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired_bootstrap needs two equal non-empty 1-d arrays, "
                         f"got {a.shape} and {b.shape}")
    d = a - b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    means = d[idx].mean(axis=1)
    return {"diff": float(d.mean()), "lo": float(np.quantile(means, alpha / 2)),
            "hi": float(np.quantile(means, 1 - alpha / 2)), "p_le0": float((means <= 0).mean())}


def item_metrics(topk: np.ndarray, rank: np.ndarray, truth: Sequence[Sequence[int]],
                 adj: sp.csr_matrix, up_hops: sp.csr_matrix,
                 allowed: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Per-item arrays of every metric: p1, p5, mrr, hp5, tree_dist."""
    return {"p1": precision_at(topk, truth, 1), "p5": precision_at(topk, truth, 5),
            "mrr": mrr(rank), "hp5": hierarchical_precision(topk, truth, 5, adj, allowed),
            "tree_dist": tree_distance(topk[:, 0], truth, up_hops)}
