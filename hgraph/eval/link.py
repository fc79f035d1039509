"""Link-prediction metrics: scored pairs (ROC-AUC, AP) and filtered parent ranking.

* :func:`link_prediction` scores each (child, parent) pair by minus its
  geodesic distance and reports scikit-learn's ``roc_auc_score`` and
  ``average_precision_score`` of held-out positives against negatives (the
  HGCN protocol, with distance as the score; Fermi-Dirac decoding is a
  monotone function of distance, so the metrics are the same).
* :func:`sample_lp_negatives` draws the negatives: ``k`` corrupted tails
  ``(child, w)`` per positive with ``w`` uniform over nodes, never the child
  itself and never a pair the caller forbids.
* :func:`parent_ranking` ranks each query's true parent among all candidate
  nodes by distance from the child, in the *filtered* setting of
  knowledge-graph evaluation (Bordes et al. 2013): the child itself and the
  child's other true answers are removed from the list before ranking.
  ``rank = 1 + #{candidates strictly closer}`` (ties counted in the parent's
  favour, as in :mod:`hgraph.eval.ranking`).
"""
from __future__ import annotations

from typing import Dict, Optional

import geoopt
import numpy as np
import scipy.sparse as sp
import torch

from hgraph import manifolds
from hgraph.data.pairs import NegativeSampler
from hgraph.eval.ranking import (ArrayLike, _as_bool_csr, _as_index, _as_mask, _check_points,
                                 _Engine)

Tensor = torch.Tensor

__all__ = ["link_prediction", "sample_lp_negatives", "parent_ranking", "pair_scores"]

_PAIR_CHUNK = 1 << 20


def _pairs(a: ArrayLike, name: str, n: int) -> np.ndarray:
    a = _as_index(a, name, n)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{name} must be (P, 2) rows (child, parent), got shape {a.shape}")
    return a


def pair_scores(manifold: geoopt.Manifold, x: Tensor, pairs: ArrayLike) -> np.ndarray:
    """(P,) float64 scores ``-d(x[a], x[b])`` for rows ``(a, b)`` of ``pairs`` (P, 2)."""
    p = _pairs(pairs, "pairs", x.shape[0])
    out = np.empty(len(p), dtype=np.float64)
    with torch.no_grad():
        for s in range(0, len(p), _PAIR_CHUNK):
            idx = torch.from_numpy(p[s:s + _PAIR_CHUNK]).to(x.device)
            d = manifolds.dist(manifold, x[idx[:, 0]], x[idx[:, 1]])
            out[s:s + len(idx)] = -d.detach().double().cpu().numpy()
    return out


def link_prediction(manifold: geoopt.Manifold, x: Tensor, pos: ArrayLike,
                    neg: ArrayLike) -> Dict[str, float]:
    """ROC-AUC and average precision of positive pairs against negative pairs.

    ``x``: (N, D) points; ``pos``: (P, 2), ``neg``: (Q, 2) long node-id rows.
    Each pair is scored by ``-d(x[a], x[b])``.  Returns
    ``{roc_auc, ap, num_pos, num_neg}``.
    """
    _check_points(x)
    pos = _pairs(pos, "pos", x.shape[0])
    neg = _pairs(neg, "neg", x.shape[0])
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("need at least one positive and one negative pair, "
                         f"got {len(pos)} and {len(neg)}")
    from sklearn.metrics import average_precision_score, roc_auc_score  # slow import: lazy

    scores = np.concatenate([pair_scores(manifold, x, pos), pair_scores(manifold, x, neg)])
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "ap": float(average_precision_score(labels, scores)),
        "num_pos": int(len(pos)),
        "num_neg": int(len(neg)),
    }


def sample_lp_negatives(pos: ArrayLike, num_nodes: int, k: int,
                        forbidden: Optional[sp.spmatrix] = None, seed: int = 0,
                        rounds: int = 10) -> Tensor:
    """``k`` negative pairs ``(child, w)`` per positive row ``(child, parent)``.

    ``w`` is uniform over ``0..num_nodes-1``, ``w != child``, and
    ``forbidden[child, w]`` is False (``forbidden``: (N, N) scipy sparse bool,
    e.g. all true edges and ancestor pairs; only the direction given is
    checked: pass ``F + F.T`` to forbid both).  Vectorised rejection sampling:
    bad draws are redrawn for up to ``rounds`` rounds and the rest dropped, so
    the result may hold fewer than ``P * k`` rows (only when nearly every node
    is forbidden for some child).  Returns a (≤ P*k, 2) long tensor, rows of
    positive ``i`` first (order ``i * k + r``), on the CPU.
    """
    n = int(num_nodes)
    if n < 2:
        raise ValueError(f"num_nodes must be >= 2, got {num_nodes}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    p = _pairs(pos, "pos", n)
    # the training sampler, drawing from its own seeded generator: one negative
    # sampler in the package
    sampler = NegativeSampler(sp.csr_matrix((n, n), dtype=bool) if forbidden is None else
                              _as_bool_csr(forbidden, n, "forbidden"), n, rounds=rounds)
    neg, ok = sampler.sample(p[:, 0], k, np.random.default_rng(seed))
    child, w, keep = np.repeat(p[:, 0], k), neg.ravel(), ok.ravel()
    return torch.from_numpy(np.stack([child[keep], w[keep]], axis=1).astype(np.int64))


def parent_ranking(manifold: geoopt.Manifold, x: Tensor, queries: ArrayLike,
                   filter: Optional[sp.spmatrix] = None,
                   candidates: Optional[ArrayLike] = None,
                   chunk: int = 1024) -> Dict[str, float]:
    """Filtered rank of each query's true parent among candidate nodes.

    ``queries``: (Q, 2) rows ``(child, true_parent)``.  ``filter``: (N, N)
    scipy sparse bool; row ``c`` = true answers of child ``c`` to leave out
    of the ranking (pass all of c's true parents; the query's own parent is
    always ranked).  ``candidates``: (N,) bool mask of nodes that may be
    ranked (default all); the true parent is scored even when it is not a
    candidate.  The child itself is never a candidate.  For each query
    ``rank = 1 + #{candidates w, w != child, w not filtered : d(child, w) <
    d(child, parent)}``.  Returns ``{mrr, mean_rank, hits@1, hits@3,
    hits@10, num_queries}``.
    """
    _check_points(x)
    n = x.shape[0]
    q = _pairs(queries, "queries", n)
    if np.any(q[:, 0] == q[:, 1]):
        raise ValueError("a query has child == parent; a node is not its own parent")
    cand = _as_mask(candidates, n)
    eng = _Engine(manifold, x, cand, chunk)
    child, par = q[:, 0], q[:, 1]
    nq = len(q)
    tgt = sp.csr_matrix((np.ones(nq, dtype=bool), eng.pos_of[par], np.arange(nq + 1)),
                        shape=(nq, n))
    excl = None
    if filter is not None:
        f = _as_bool_csr(filter, n, "filter")[child].tocoo()
        cols = eng.pos_of[f.col]
        keep = cols < eng.ncand
        excl = sp.csr_matrix((np.ones(int(keep.sum()), dtype=bool), (f.row[keep], cols[keep])),
                             shape=(nq, n))
        excl.sort_indices()
    ranks = np.empty(nq, dtype=np.float64)
    for s in range(0, nq, eng.chunk):
        e = min(s + eng.chunk, nq)
        C, _, _, _ = eng.counts(child[s:e], tgt[s:e], None if excl is None else excl[s:e])
        ranks[s:e] = C[:, 0] + 1
    if nq == 0:
        nan = float("nan")
        return {"mrr": nan, "mean_rank": nan, "hits@1": nan, "hits@3": nan,
                "hits@10": nan, "num_queries": 0}
    return {
        "mrr": float(np.mean(1.0 / ranks)),
        "mean_rank": float(np.mean(ranks)),
        "hits@1": float(np.mean(ranks <= 1)),
        "hits@3": float(np.mean(ranks <= 3)),
        "hits@10": float(np.mean(ranks <= 10)),
        "num_queries": int(nq),
    }
