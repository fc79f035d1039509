"""Counting, per row, the keys strictly below each threshold (:func:`count_below`).

Counting.  For a tile of source rows the key block ``K`` (rows × N) is one
matmul; each positive's key is gathered from it (bit-identical, so a positive
is never "closer than itself"); positives and the source itself are then set
to ``+inf`` in ``K``, and the entries strictly below each positive's key are
counted.  Three ways to count, chosen per tile by a cost model fed with a
column sample:

* *dense*: one compare-and-count pass over the tile per positive slot (rows
  are ordered by their number of positives, so slot ``j`` touches only rows
  that have one); cost ∝ N × positives;
* *sparse*: one pass of elementwise minima gives the minimum of each
  interleaved block of 8 columns; only the blocks whose minimum lies below
  the row's largest positive key are read and compared.  Far cheaper for a
  good embedding, where few nodes are closer than the positives;
* *sort*: sort each row, binary-search the positives; cost ∝ N log N,
  independent of the number of positives (wins for a poor embedding with
  very many positives per row).

On the CPU 'auto' also mixes the first two within a tile: the sparse pass
for each row's positives up to a cutoff and a dense pass for each one above
it (a good embedding of a deep hierarchy has most ancestors near and a few,
such as the root, far).

:class:`hgraph.eval.ranking.engine._Engine` cuts the work into tiles and
calls the numpy (CPU) or torch (other devices) counter per tile.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from hgraph.eval.ranking.checks import ArrayLike

Tensor = torch.Tensor


#: columns sampled to estimate how many keys lie below a row's largest threshold
_SAMPLE_COLS = 256
_STRATEGIES = ("auto", "dense", "sparse", "sort")
#: block size of the sparse strategy's block-minimum filter
_BLOCK = 8
#: cost model for the counting strategy, in units of one dense
#: compare-and-count of one key against one threshold
_SPARSE_SCAN_COST = 1.2        # block minima, per key
_SPARSE_KEPT_COST = 8.0        # gather + bookkeeping, per key of a block that is read
_SPARSE_CMP_COST = 5.0         # per key read per threshold
_SORT_COST = 14.0              # sorting a row (numpy's SIMD quicksort), per key


def _choose(frac: float, sum_valid: float, rows: int, P: int) -> str:
    """Cheapest strategy per column, given the fraction of keys below the row maxima."""
    read = min(1.0, 1.0 - (1.0 - frac) ** _BLOCK)     # share of blocks read (keys scattered)
    cost = {"dense": sum_valid,
            "sparse": rows * (_SPARSE_SCAN_COST
                              + read * (_SPARSE_KEPT_COST + _SPARSE_CMP_COST * P)),
            "sort": rows * _SORT_COST}
    return min(cost, key=cost.get)


def _nvalid(deg: np.ndarray, P: int) -> np.ndarray:
    """(P,) number of rows with more than j thresholds (rows sorted by deg, descending)."""
    return np.searchsorted(-deg, -np.arange(P), side="left").astype(np.int64)


def _flat_rows(K: np.ndarray) -> Tuple[np.ndarray, int]:
    """A 1-D array over the rows of ``K`` and the row stride, for ``np.take``.

    ``K`` is usually a column slice ``buf[:, :M]`` of a C-contiguous tile;
    then the tile itself is used (no copy).
    """
    base = K.base
    if (isinstance(base, np.ndarray) and base.ndim == 2 and base.flags.c_contiguous
            and K.strides == base.strides and K.shape[0] == base.shape[0]
            and K.__array_interface__["data"][0] == base.__array_interface__["data"][0]):
        return base.reshape(-1), base.shape[1]
    K = np.ascontiguousarray(K)
    return K.reshape(-1), K.shape[1]


def _plan(frac: np.ndarray, valid: np.ndarray) -> Tuple[str, np.ndarray]:
    """Choose how to count one tile: ('sort', _) or ('mixed', low).

    ``frac`` (R, P): sampled share of a row's keys below each threshold;
    ``low`` (R, P) marks the slots counted by the sparse pass (all slots of
    a row up to a cutoff share ``phi``, the cutoff that minimises the cost
    model), the other valid slots get one dense pass each.
    """
    R, P = frac.shape
    f = np.where(valid, frac, np.inf)
    phis = np.concatenate([[-1.0], np.unique(f[valid])])             # -1: no sparse pass
    low = valid[None] & (f[None] <= phis[:, None, None])              # (C, R, P)
    fcut = np.where(low, f[None], 0.0).max(axis=2)                    # (C, R)
    read = 1.0 - (1.0 - np.minimum(fcut, 1.0)) ** _BLOCK              # share of blocks read
    sparse = np.where(low.any(axis=(1, 2)), R * _SPARSE_SCAN_COST, 0.0) \
        + (read * (_SPARSE_KEPT_COST + _SPARSE_CMP_COST * P)).sum(axis=1)
    cost = sparse + (valid[None] & ~low).sum(axis=(1, 2))
    best = int(np.argmin(cost))
    if R * _SORT_COST < cost[best]:
        return "sort", low[0]
    return "mixed", low[best]


def _sparse_pass(K: np.ndarray, T: np.ndarray, tcut: np.ndarray, out: np.ndarray) -> None:
    """Add to ``out`` the keys below each threshold among the blocks that hold a key < tcut.

    Exact for thresholds <= the row's ``tcut``.  Interleaved blocks: block b
    of a row is columns b, b + nb, ..., so the block minima are G - 1
    elementwise np.minimum passes (SIMD).
    """
    R, M = K.shape
    P = T.shape[1]
    G = _BLOCK
    nb = M // G
    if nb:
        bmin = K[:, :nb * G].reshape(R, G, nb).min(axis=1)       # (R, nb), from a view
        # (np.nonzero on 2-D and np.count_nonzero(axis=...) are slow paths)
        r, b = np.divmod(np.flatnonzero(bmin < tcut[:, None]), nb)
        if len(r):
            flat, stride = _flat_rows(K)
            idx = (np.arange(G) * nb)[:, None] + (r * stride + b)[None, :]
            vals = np.take(flat, idx)                           # (G, S); 2x faster than K[r, c]
            Tr = T[r]
            per = np.empty((len(r), P), dtype=np.int64)
            for j in range(P):                                  # G <= 255: uint8 sums are exact
                per[:, j] = (vals < Tr[:, j]).view(np.uint8).sum(axis=0, dtype=np.uint8)
            cs = np.zeros((len(r) + 1, P), dtype=np.int64)
            np.cumsum(per, axis=0, out=cs[1:])
            ends = np.cumsum(np.bincount(r, minlength=R))
            starts = np.concatenate([[0], ends[:-1]])
            out += cs[ends] - cs[starts]
    if nb * G < M:                                              # the < G leftover columns
        rest = K[:, nb * G:]
        for j in range(P):
            out[:, j] += (rest < T[:, j:j + 1]).sum(axis=1)


def _count_np(K: np.ndarray, T: np.ndarray, strategy: str,
              mbuf: Optional[np.ndarray] = None) -> np.ndarray:
    """numpy :func:`count_below` (CPU): ufuncs that release the GIL, no temporaries per pass.

    'auto' mixes per row: the sparse pass counts the thresholds below a
    cutoff, one dense pass per remaining threshold (a good embedding of a
    deep hierarchy has most positives near and a few, like the root, far).
    """
    R, M = K.shape
    P = T.shape[1]
    out = np.zeros((R, P), dtype=np.int64)
    if R == 0 or P == 0 or M == 0:
        return out
    valid = T > -np.inf
    if strategy == "auto":
        sample = K[:, ::max(1, M // _SAMPLE_COLS)]
        frac = (sample[:, None, :] < T[:, :, None]).mean(axis=2)
        strategy, low = _plan(frac, valid)
    elif strategy == "dense":
        low = np.zeros_like(valid)
    elif strategy == "sparse":
        low = valid
    elif strategy != "sort":
        raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}")
    if strategy == "sort":
        srt = np.sort(K, axis=1)
        for i in range(R):                # side='left': number of keys strictly below
            out[i] = np.searchsorted(srt[i], T[i], side="left")
        return out
    if low.any():
        _sparse_pass(K, T, np.where(low, T, -np.inf).max(axis=1), out)
        out[~low] = 0                     # slots above the cutoff were not counted in full
    hi = valid & ~low
    if hi.any():
        m = np.empty(M, dtype=bool) if mbuf is None else mbuf[:M]
        for i, j in zip(*np.nonzero(hi)):
            np.less(K[i], T[i, j], out=m)
            out[i, j] = np.count_nonzero(m)   # 1-D count_nonzero: ~5x faster than axis=1
    return out


def _count_torch(K: Tensor, T: Tensor, nvalid: np.ndarray, strategy: str) -> Tensor:
    """torch :func:`count_below` (for accelerators)."""
    B, P = T.shape
    out = torch.zeros(B, P, dtype=torch.int64, device=K.device)
    if B == 0 or P == 0 or K.shape[1] == 0:
        return out
    tmax = T.amax(dim=1)
    if strategy == "auto":
        step = max(1, K.shape[1] // _SAMPLE_COLS)
        frac = float((K[:, ::step] < tmax[:, None]).float().mean())
        strategy = _choose(frac, float(nvalid.sum()), B, P)
    if strategy == "dense":
        for j in range(P):
            n = int(nvalid[j])
            if n == 0:
                break
            out[:n, j] = torch.count_nonzero(K[:n] < T[:n, j:j + 1], dim=1)
    elif strategy == "sparse":
        r, c = torch.nonzero(K < tmax[:, None], as_tuple=True)
        piece = 1 << 22
        for s in range(0, r.numel(), piece):
            rs, cs = r[s:s + piece], c[s:s + piece]
            out.index_add_(0, rs, (K[rs, cs][:, None] < T[rs]).to(out.dtype))
    elif strategy == "sort":
        srt = torch.sort(K, dim=1).values
        out[:] = torch.searchsorted(srt, T.contiguous(), side="left")
    else:
        raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}")
    return out


def count_below(K: ArrayLike, T: ArrayLike, nvalid: Optional[np.ndarray] = None,
                strategy: str = "auto"):
    """``C[i, j] = #{m : K[i, m] < T[i, j]}`` for a block of keys.

    ``K``: (B, M) keys; ``T``: (B, P) thresholds, unused slots ``-inf``
    (numpy arrays or torch tensors, same kind).  ``nvalid``: (P,) number of
    leading rows whose slot ``j`` is used (rows ordered by their number of
    thresholds, descending; used by the torch path); default all rows.
    ``strategy``: 'dense' (one compare-and-count pass per slot), 'sparse'
    (read only the keys near or below the row's largest threshold), 'sort'
    (sort each row, binary-search the thresholds; cost independent of P) or
    'auto' (cost model on a column sample; on numpy it mixes per row: sparse
    for the thresholds below a cutoff, dense for the others).  Returns (B, P)
    int64 of the same kind as ``K``.
    """
    B, P = T.shape
    nvalid = np.full(P, B, dtype=np.int64) if nvalid is None else np.asarray(nvalid)
    if isinstance(K, Tensor):
        return _count_torch(K, T, nvalid, strategy)
    return _count_np(np.asarray(K), np.asarray(T), strategy)
