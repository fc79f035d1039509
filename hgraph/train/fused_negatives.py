"""Negatives of the fused shallow trainer beyond uniform draws: the sorted closure keys
that filter u's ancestors out (:func:`closure_keys`, :func:`_member`) and each row's
nearest non-ancestors in the current table (:func:`nearest_non_ancestors`).

The ranking trained for is :func:`hgraph.eval.ranking.reconstruction` with
``positives = closure`` (row u = u's ancestors): descendants are non-positives,
so they are not filtered out of the negatives.  The draws themselves are
:meth:`hgraph.train.fused_step.Stepper.negatives`.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from hgraph.manifolds.lorentz import cosh_dist_minus_one

Tensor = torch.Tensor


def closure_keys(closure: sp.spmatrix, n: int) -> Tensor:
    c = sp.coo_matrix(closure)
    return torch.from_numpy(np.sort(c.row.astype(np.int64) * n + c.col.astype(np.int64)))


def nearest_non_ancestors(x: Tensor, keys: Tensor, k: int, method: str = "auto",
                          chunk: int = 256) -> Tensor:
    """(n, k): for every row of the hyperboloid table ``x``, ``k`` near rows that are
    neither itself nor among its closure pairs (``keys``: sorted ``u * n + w``).

    ``method`` ``"exact"``: the ``k`` nearest, ranked by the Minkowski product (its
    cancellation leaves ~1e-3 in ``cosh d`` at distance 15 from the origin, enough to pick
    neighbours); all pairs, so O(n^2): 207 s for WordNet nouns on one thread.
    ``"angle"``: faiss's HNSW graph over the rows' unit directions gives ``2k`` candidates
    by angle (a point far out is nearest to what lies in its direction), re-ranked by
    exact distance (:func:`cosh_dist_minus_one`): ~8 s for nouns (HNSW recall 0.99 against
    a flat search there).  An approximate list only changes which nodes are drawn more
    often: the importance weights keep the estimate of the uniform-draw loss unbiased.
    Rows with fewer than ``k`` valid candidates keep some self / ancestor entries, which
    the sampler drops like any other draw of them.  ``"auto"``: exact up to 20,000 rows.
    Deterministic with one thread (faiss's HNSW build is sequential then)."""
    n = x.shape[0]
    k = min(k, n - 1)
    extra = int(torch.bincount(keys // n, minlength=n).max()) + 1 if keys.numel() else 1
    if method == "auto":
        method = "exact" if n <= 20000 else "angle"
    if method not in ("exact", "angle"):
        raise ValueError(f"method must be 'exact', 'angle' or 'auto', got {method!r}")
    out = torch.empty(n, k, dtype=torch.long)
    if method == "exact":
        take = min(k + extra, n)
        xs, x0 = x[:, 1:], x[:, 0]
        for i in range(0, n, chunk):
            j = min(i + chunk, n)
            a = torch.outer(x0[i:j], x0) - xs[i:j] @ xs.T               # cosh d, (c, n)
            idx = torch.topk(a, take, dim=1, largest=False, sorted=True).indices
            rows = torch.arange(i, j).unsqueeze(1)
            bad = (idx == rows) | _member(keys, rows * n + idx)
            first = torch.argsort(bad.to(torch.int8), dim=1, stable=True)[:, :k]
            out[i:j] = idx.gather(1, first)
        return out
    import faiss
    pool = min(n, 2 * k + extra)
    e = torch.nn.functional.normalize(x[:, 1:].to(torch.float64), dim=1)
    e = np.ascontiguousarray(e.numpy().astype(np.float32))
    index = faiss.IndexHNSWFlat(e.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = max(128, pool)
    index.add(e)
    cand = torch.from_numpy(index.search(e, pool)[1]).long()
    rows_all = torch.arange(n).unsqueeze(1)
    cand = torch.where(cand < 0, rows_all, cand)                # missing -> self (invalid)
    step = max(1, (1 << 20) // pool)
    for i in range(0, n, step):
        j = min(i + step, n)
        c, rows = cand[i:j], rows_all[i:j]
        d = cosh_dist_minus_one(x[i:j].unsqueeze(1), x[c])
        d.masked_fill_((c == rows) | _member(keys, rows * n + c), math.inf)
        out[i:j] = c.gather(1, torch.argsort(d, dim=1, stable=True)[:, :k])
    return out


def _member(keys: Tensor, q: Tensor) -> Tensor:
    """Which of the keys ``q`` are in the sorted ``keys``."""
    pos = torch.searchsorted(keys, q).clamp_(max=keys.numel() - 1)
    return keys[pos] == q
