"""torch-geometric conversion, neighbour sampling and filtered negative sampling."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp
import torch

from hgraph.data.taxonomy import Taxonomy, pair_keys

Tensor = torch.Tensor


def to_pyg(tax: Taxonomy, edges: Optional[np.ndarray] = None,
           x: Optional[np.ndarray] = None):
    """A ``torch_geometric.data.Data`` for message passing.

    ``edges``: (E, 2) rows (child, parent) to include (default: all of the
    taxonomy's edges; pass the *training* edges for a leak-free graph).
    Both directions are present in ``edge_index`` (2, 2E), so information
    flows up and down the hierarchy.  ``x``: (N, F) features or None;
    ``level``: (N,) depth; ``node_ids``: (N,) global ids (carried through
    neighbour sampling as ``n_id``).
    """
    from torch_geometric.data import Data
    from torch_geometric.utils import coalesce

    e = tax.edges if edges is None else np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    ei = torch.from_numpy(np.concatenate([e.T, e[:, ::-1].T], axis=1).copy())
    ei = coalesce(ei, num_nodes=tax.num_nodes)
    data = Data(edge_index=ei, num_nodes=tax.num_nodes)
    data.level = torch.from_numpy(tax.level.copy())
    data.node_ids = torch.arange(tax.num_nodes)
    if x is not None:
        data.x = torch.as_tensor(np.asarray(x))
    return data


def has_neighbor_sampler() -> bool:
    """True when torch-geometric can sample neighbours (pyg-lib or torch-sparse)."""
    try:
        import torch_geometric.typing as t
        return bool(getattr(t, "WITH_PYG_LIB", False) or getattr(t, "WITH_TORCH_SPARSE", False))
    except ImportError:  # pragma: no cover
        return False


class NegativeSampler:
    """Uniform negatives for anchors, filtered against a set of forbidden pairs.

    ``forbidden``: (N, N) bool CSR; ``(u, w)`` is never returned as a
    negative for anchor ``u`` when ``forbidden[u, w]`` (nor ``w == u``).
    Pass the *full* relation (all edges or the full closure, both
    directions), so that held-out positives are never trained as negatives
    (filtered sampling, as PyG's RandomLinkSplit and filtered ranking do).
    ``candidates``: optional (C,) node ids negatives are drawn from (e.g.
    training nodes only in the inductive setting).

    Sampling is vectorised rejection: draw, look the pairs up in a sorted key
    array, redraw the bad ones for up to ``rounds`` rounds; anything still bad
    is reported in the returned mask (False) and must be ignored by the loss.

    The lookup goes through a one-hash bit filter first (16 bits per key, so
    ~6% false positives): a random pair is almost never forbidden, and one
    probe of the filter replaces a binary search over all keys (~21 probes,
    most of them cache misses at WordNet-nouns size: 1.5M keys).  Only the
    pairs the filter flags are searched.  numpy has no hash-set lookup for
    integer arrays (``np.isin`` sorts both sides), hence the hand-written filter.
    """

    _HASH = np.uint64(0x9E3779B97F4A7C15)     # Fibonacci hashing multiplier (2^64 / phi)

    def __init__(self, forbidden: sp.spmatrix, num_nodes: int,
                 candidates: Optional[np.ndarray] = None, rounds: int = 20):
        f = sp.coo_matrix(forbidden)
        self.num_nodes = int(num_nodes)
        self.keys = np.unique(pair_keys(f.row, f.col, self.num_nodes))
        self.candidates = None if candidates is None else np.asarray(candidates, dtype=np.int64)
        self.rounds = rounds
        self._bits = int(np.clip(np.ceil(np.log2(16 * max(len(self.keys), 1))), 13, 32))
        self._filter = np.zeros(1 << (self._bits - 3), dtype=np.uint8)
        h = self._hash(self.keys)
        low = (h & np.uint64(7)).astype(np.uint8)
        for b in range(8):     # one bit position per pass, so repeated bytes write equal values
            byte = h[low == b] >> np.uint64(3)
            self._filter[byte] = self._filter[byte] | np.uint8(1 << b)

    def _hash(self, keys: np.ndarray) -> np.ndarray:
        return (keys.astype(np.int64).view(np.uint64) * self._HASH) >> np.uint64(64 - self._bits)

    def is_forbidden(self, u: np.ndarray, w: np.ndarray) -> np.ndarray:
        keys = pair_keys(u, w, self.num_nodes)
        k = keys.ravel()
        h = self._hash(k)
        flagged = np.flatnonzero(
            (self._filter[h >> np.uint64(3)] >> (h & np.uint64(7)).astype(np.uint8)) & 1)
        hit = np.zeros(k.shape, dtype=bool)
        if len(self.keys) and len(flagged):
            kf = k[flagged]
            pos = np.minimum(np.searchsorted(self.keys, kf), len(self.keys) - 1)
            hit[flagged] = self.keys[pos] == kf
        return hit.reshape(keys.shape) | (np.asarray(u) == np.asarray(w))

    def _draw(self, size, rng: np.random.Generator) -> np.ndarray:
        if self.candidates is None:
            return rng.integers(0, self.num_nodes, size=size, dtype=np.int64)
        return self.candidates[rng.integers(0, len(self.candidates), size=size)]

    def sample(self, anchors: np.ndarray, k: int,
               rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """``anchors``: (B,) -> negatives (B, k) int64 and a validity mask (B, k)."""
        anchors = np.asarray(anchors, dtype=np.int64)
        u = np.repeat(anchors[:, None], k, axis=1)
        neg = self._draw(u.shape, rng)
        bad = self.is_forbidden(u, neg)
        for _ in range(self.rounds):
            if not bad.any():
                break
            idx = np.nonzero(bad)
            neg[idx] = self._draw(len(idx[0]), rng)
            bad[idx] = self.is_forbidden(u[idx], neg[idx])
        return neg, ~bad


def symmetric(m: sp.spmatrix) -> sp.csr_matrix:
    """``m OR m.T`` as a bool CSR."""
    m = sp.csr_matrix(m, dtype=bool)
    return (m + m.T).astype(bool).tocsr()
