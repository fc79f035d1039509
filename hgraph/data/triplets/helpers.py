"""Array helpers of the triplet samplers.

:func:`index_map` (global id -> row of the encoded points),
:func:`distance_closure` (ancestors with hop counts), and the CSR helpers:
row expansion, uniform picks, padded tables and their chunking.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import scipy.sparse as sp

from hgraph.data.taxonomy import transitive_closure

_PAD_MAX = 32                # widest padded ancestor / parent table (else sorted-key look-ups)
_PAD_CELLS = 1 << 23         # cells per chunk of a padded-table comparison


def index_map(ids: np.ndarray, num_nodes: int) -> np.ndarray:
    """(num_nodes,) int64 array mapping global id -> row in ``ids`` (-1 elsewhere).

    ``ids``: (n,) distinct global ids, in the row order of the encoded points.
    """
    ids = np.asarray(ids, dtype=np.int64)
    out = np.full(num_nodes, -1, dtype=np.int64)
    out[ids] = np.arange(len(ids), dtype=np.int64)
    return out


def distance_closure(edges: np.ndarray, num_nodes: int) -> sp.csr_matrix:
    """Ancestor relation with hop counts.

    ``edges``: (E, 2) rows ``(child, parent)``.  Returns ``D`` (N, N) int32 CSR,
    sorted indices, with ``D[u, a] = h >= 1`` iff ``a`` is a proper ancestor of
    ``u``, ``h`` the fewest upward hops.  Frontier expansion: the pairs first
    reached at step ``h`` are exactly those at shortest distance ``h``.
    """
    return transitive_closure(edges, num_nodes, hops=True)


def _expand(indptr: np.ndarray, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Flatten CSR rows: (item index, position into indices) for every entry."""
    start = indptr[rows].astype(np.int64)
    deg = indptr[rows + 1].astype(np.int64) - start
    item = np.repeat(np.arange(len(rows), dtype=np.int64), deg)
    offs = np.arange(int(deg.sum()), dtype=np.int64) - np.repeat(np.cumsum(deg) - deg, deg)
    return item, np.repeat(start, deg) + offs


def _pick(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """One uniform entry of each CSR row (every row must be non-empty); its
    position in ``indices`` when ``indices`` is None."""
    start = indptr[rows].astype(np.int64)
    deg = indptr[rows + 1].astype(np.int64) - start
    j = (rng.random(len(rows)) * deg).astype(np.int64)
    if indices is None:
        return start + j
    return indices[start + j].astype(np.int64)


def _any(item: np.ndarray, hit: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(item[hit], minlength=n) > 0


def _padded(m: sp.csr_matrix, width: int, data: bool = False) -> np.ndarray:
    """CSR rows as an (N, width) int64 table padded with -1 (or the data, padded 0)."""
    n = m.shape[0]
    deg = np.diff(m.indptr)
    out = np.full((n, width), 0 if data else -1, dtype=np.int32)
    rows = np.repeat(np.arange(n), deg)
    cols = np.arange(m.nnz) - np.repeat(m.indptr[:-1], deg)
    out[rows, cols] = m.data if data else m.indices
    return out


def _chunks(total: int, width: int):
    step = max(1, _PAD_CELLS // max(1, width))
    for s in range(0, total, step):
        yield slice(s, min(total, s + step))
