"""Hierarchy metrics: does the geometry encode depth, and can ancestors be found?

* :func:`norm_level_spearman` — Spearman rank correlation between each
  node's distance from the origin (:func:`hgraph.manifolds.dist0`) and its
  level; positive means deeper categories lie farther out, as a tree embedded
  in hyperbolic space should (Nickel & Kiela 2017, Fig. 2; gensim's
  ``NormsEvaluation`` idea).
* :func:`ancestor_map` — for query nodes (e.g. inductively placed ones), the
  MAP of ranking their true ancestors among candidate nodes; the same
  definition and code as :func:`hgraph.eval.reconstruction`, restricted to
  the given queries and candidates.
"""
from __future__ import annotations

from typing import Dict, Optional

import geoopt
import numpy as np
import scipy.sparse as sp
import torch
from scipy.stats import spearmanr

from hgraph import manifolds
from hgraph.eval.ranking import (ArrayLike, _as_bool_csr, _as_index, _as_mask, _check_points,
                                 _rank_eval)

Tensor = torch.Tensor

__all__ = ["norm_level_spearman", "ancestor_map"]


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman rank correlation of two (N,) arrays (average ranks for ties;
    ``scipy.stats.spearmanr``); NaN when either side is constant."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(spearmanr(a, b).statistic)


def norm_level_spearman(manifold: geoopt.Manifold, x: Tensor, level: ArrayLike) -> Dict[str, float]:
    """Spearman correlation of distance-to-origin with level.

    ``x``: (N, D) points; ``level``: (N,) depth of each node (root 0).
    Returns ``{spearman, pvalue}`` (NaN when either side is constant).
    """
    _check_points(x)
    lv = level.detach().cpu().numpy() if isinstance(level, Tensor) else np.asarray(level)
    if lv.shape != (x.shape[0],):
        raise ValueError(f"level must have shape ({x.shape[0]},), got {lv.shape}")
    with torch.no_grad():
        r0 = manifolds.dist0(manifold, x.detach()).double().cpu().numpy()
    if len(r0) < 2 or np.all(lv == lv[0]) or np.all(r0 == r0[0]):
        return {"spearman": float("nan"), "pvalue": float("nan")}
    res = spearmanr(r0, lv)
    return {"spearman": float(res.statistic), "pvalue": float(res.pvalue)}


def ancestor_map(manifold: geoopt.Manifold, x: Tensor, queries: ArrayLike,
                 positives: sp.spmatrix, candidates: Optional[ArrayLike] = None,
                 chunk: int = 1024) -> Dict[str, object]:
    """MAP (and mean rank) of each query's true ancestors among candidate nodes.

    ``queries``: node ids (duplicates counted once); ``positives``: (N, N)
    scipy sparse bool, row ``q`` = q's true ancestors (e.g.
    :attr:`Taxonomy.closure`); ``candidates``: (N,) bool mask of the nodes
    that may be retrieved (default all).  Each query ranks the candidate
    nodes other than itself by distance; relevant items are its ancestors
    that are candidates (an ancestor outside the candidates cannot be
    retrieved, so it is dropped).  Definitions of rank and AP as in
    :func:`hgraph.eval.reconstruction`.  Returns ``{map, mean_rank,
    num_queries, num_pairs, num_skipped}``; ``num_skipped`` counts queries
    with no ancestor among the candidates (left out of both means).
    """
    _check_points(x)
    n = x.shape[0]
    qs = np.unique(_as_index(queries, "queries", n).reshape(-1))
    pos = _as_bool_csr(positives, n, "positives")
    cand = _as_mask(candidates, n)
    res = _rank_eval(manifold, x, qs, pos, cand, chunk)
    out = {"map": res["map"], "mean_rank": res["mean_rank"],
           "num_queries": res["num_sources"], "num_pairs": res["num_pairs"],
           "num_skipped": int(len(qs) - res["num_sources"])}
    return out
