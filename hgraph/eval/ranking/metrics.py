"""Graph reconstruction: mean rank and MAP of each source's positives.

Definitions (Nickel & Kiela 2017, "Poincaré Embeddings for Learning
Hierarchical Representations", Sec. 4.1):

* a *source* ``u`` is a node with at least one positive; its positives are
  row ``u`` of the ``positives`` matrix (for reconstruction this is usually
  :attr:`Taxonomy.closure`: u's proper ancestors);
* for each positive ``v`` of ``u``:
  ``rank(u, v) = 1 + #{w not in positives(u) ∪ {u} : d(u, w) < d(u, v)}``,
  i.e. ``v`` is ranked among u's non-neighbours only, so other positives never
  push it down.  **Mean rank** is the mean over all (u, v) pairs;
* **MAP** is the mean over sources of the average precision of the ranking of
  all nodes except ``u`` by distance, with positives(u) relevant:
  ``AP(u) = mean_v (1 + #positives strictly closer than v) /
  (1 + #nodes w != u strictly closer than v)``.

Direction of the positives.  Both reference implementations rank one
direction of the closure, never a symmetrised one: poincare-embeddings
(``hype/graph.py: eval_reconstruction``) builds ``adj[id1] = {id2, ...}`` from
the training pairs, which are ``(hyponym, hypernym)`` rows of the transitive
closure (``wordnet/transitive_closure.py``; symmetrised only with ``-sym``);
gensim's ``ReconstructionEvaluation`` builds ``relations[item_1] |= {item_2}``
from the same TSV rows.  So with ``positives = Taxonomy.closure`` (row ``u`` =
u's ancestors) these functions compute what the references compute.  We use
the matrix as given; a caller who wants descendants too passes
``closure + closure.T``.

Ties and the source itself.  A node counts as closer only when it is
*strictly* closer (``<``), the optimistic convention.  poincare-embeddings
ranks by position after ``sort()`` (ties broken by sort order) and computes
AP with scikit-learn over all nodes with u pushed last (tied items count
together at the tie's threshold): without ties its MR and MAP equal ours
(the tests check the MAP against scikit-learn).  gensim 4.4 also uses ``<``
but leaves u itself (distance 0) among the non-neighbours, so every rank is
ours + 1 and every precision ``k / (rank_k + k - 1)`` is computed with that
extra item: its MR is exactly ours + 1 and its MAP lower (checked on a
trained gensim model: MR 10.69 vs our 9.69, MAP 0.238 vs our 0.345, and
ours with u counted reproduces 0.238).  Diagonal entries of ``positives``
(u ∈ positives(u)) are ignored.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import geoopt
import numpy as np
import scipy.sparse as sp
import torch

from hgraph.eval.ranking.checks import _as_bool_csr, _check_points
from hgraph.eval.ranking.engine import _Engine

Tensor = torch.Tensor


def _ap_and_ranks(C: np.ndarray, T: np.ndarray, valid: np.ndarray, deg: np.ndarray):
    """Per-source AP and per-pair ranks from closer-than counts (optimistic ties)."""
    PC = ((T[:, None, :] < T[:, :, None]) & valid[:, None, :]).sum(-1)   # positives closer
    prec = np.where(valid, (1.0 + PC) / (1.0 + C + PC), 0.0)
    ap = prec.sum(1) / np.maximum(deg, 1)
    ranks = (C + 1)[valid]
    return ap, ranks


def _rank_eval(manifold: geoopt.Manifold, x: Tensor, sources: np.ndarray,
               positives: sp.csr_matrix, cand: np.ndarray, chunk: int,
               strategy: str = "auto") -> Dict[str, object]:
    """Mean rank and MAP of each source's positives among candidate nodes.

    ``positives``: (N, N) bool CSR, diagonal removed.  Positives that are not
    candidates are dropped; sources left with none are skipped.
    """
    eng = _Engine(manifold, x, cand, chunk)
    pc = positives[sources]
    if eng.ncand < x.shape[0]:
        pc = pc[:, eng.order[:eng.ncand]]   # column j = candidate position j
    pc = sp.csr_matrix(pc)
    pc.sort_indices()
    deg = np.diff(pc.indptr)
    keep = np.flatnonzero(deg > 0)
    keep = keep[np.argsort(-deg[keep], kind="stable")]
    sources, pc = sources[keep], pc[keep]
    sum_rank = 0
    aps = np.empty(len(sources))
    n_pairs = 0
    for s in range(0, len(sources), eng.chunk):
        C, T, valid, d = eng.counts(sources[s:s + eng.chunk], pc[s:s + eng.chunk],
                                    strategy=strategy)
        ap, ranks = _ap_and_ranks(C, T, valid, d)
        aps[s:s + len(ap)] = ap
        sum_rank += int(ranks.sum())
        n_pairs += int(ranks.size)
    n_src = len(sources)
    return {
        "mean_rank": sum_rank / n_pairs if n_pairs else float("nan"),
        # fsum is exactly rounded: the same MAP whatever the chunking or order
        "map": math.fsum(aps) / n_src if n_src else float("nan"),
        "num_sources": int(n_src),
        "num_pairs": int(n_pairs),
    }


def reconstruction(manifold: geoopt.Manifold, x: Tensor, positives: sp.spmatrix,
                   sample: Optional[int] = None, seed: int = 0,
                   chunk: int = 1024, candidates: Optional[np.ndarray] = None
                   ) -> Dict[str, object]:
    """Graph reconstruction: mean rank and MAP (Nickel & Kiela 2017).

    ``candidates``: optional (N,) bool mask of the nodes that may be ranked
    (e.g. the training nodes when some nodes are held out for inductive
    placement: an untrained shallow row near the origin would otherwise
    outrank true ancestors); sources are restricted to it too.  None = all.

    ``x``: (N, D) points on ``manifold`` (any device; work runs there).
    ``positives``: (N, N) scipy sparse bool; row ``u`` = u's positives (pass
    :attr:`Taxonomy.closure` for the standard ancestor reconstruction; see the
    module docstring for the direction and tie conventions).
    ``sample``: evaluate a uniform random sample of this many sources (those
    with at least one positive), drawn with ``numpy.random.default_rng(seed)``;
    exact when ``sample`` >= the number of sources.  ``chunk``: source rows per
    block (on accelerators the block is chunk × N keys plus a chunk × N mask;
    on the CPU it is further cut into cache-sized tiles, spread over
    ``torch.get_num_threads()`` worker threads; ``torch.set_num_threads(1)``
    makes it serial).  Results do not depend on ``chunk`` or the threads.

    Returns ``{mean_rank, map, num_sources, num_pairs, sampled, sample_size}``
    (``sample_size`` = number of sources evaluated).
    """
    _check_points(x)
    n = x.shape[0]
    pos = _as_bool_csr(positives, n, "positives")
    sources = np.flatnonzero(np.diff(pos.indptr) > 0)
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=bool).reshape(-1)
        if candidates.shape[0] != n:
            raise ValueError(f"candidates must have {n} entries, got {candidates.shape[0]}")
        sources = sources[candidates[sources]]
    sampled = sample is not None and sample < len(sources)
    if sample is not None and sample < 1:
        raise ValueError(f"sample must be >= 1 or None, got {sample}")
    if sampled:
        rng = np.random.default_rng(seed)
        sources = np.sort(rng.choice(sources, size=int(sample), replace=False))
    res = _rank_eval(manifold, x, sources, pos,
                     np.ones(n, dtype=bool) if candidates is None else candidates, chunk)
    res["sampled"] = bool(sampled)
    res["sample_size"] = res["num_sources"]
    return res
