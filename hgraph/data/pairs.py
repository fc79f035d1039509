"""Sparse pair relations: one home for building them, keying them, testing
membership, and drawing negatives: filtered negatives of pairs
(:class:`NegativeSampler`, the node tasks) and the siblings of a category
(:class:`SiblingNegatives`, the item task).

A relation over N nodes is an (N, N) CSR matrix (row u, column v: the pair
``(u, v)``) or, for look-ups, the sorted int64 keys ``u * N + v``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp


def pair_matrix(rows: np.ndarray, cols: np.ndarray, n: int, dtype=np.int8) -> sp.csr_matrix:
    """Binary (N, N) CSR of the pairs ``(rows[i], cols[i])``: duplicates merged,
    every stored value 1 (True), indices sorted."""
    m = sp.csr_matrix((np.ones(len(rows), dtype=dtype), (rows, cols)), shape=(n, n))
    m.sum_duplicates()
    m.data[:] = 1
    m.sort_indices()
    return m


def symmetric(m: sp.spmatrix) -> sp.csr_matrix:
    """``m OR m.T`` as a bool CSR."""
    m = sp.csr_matrix(m, dtype=bool)
    return (m + m.T).astype(bool).tocsr()


def pair_keys(u: np.ndarray, v: np.ndarray, num_nodes: int) -> np.ndarray:
    """Encode pairs of node ids as int64 keys ``u * N + v`` (for set lookups)."""
    return np.asarray(u, dtype=np.int64) * num_nodes + np.asarray(v, dtype=np.int64)


def matrix_keys(m: sp.csr_matrix, n: int) -> np.ndarray:
    """Sorted int64 keys ``row * n + col`` of the stored entries of CSR ``m``."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    keys = rows * n + m.indices.astype(np.int64)
    return keys if m.has_sorted_indices else np.sort(keys)


def contains(sorted_keys: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Boolean mask of ``q``'s shape: is each key of ``q`` in ``sorted_keys``."""
    q = np.asarray(q)
    if len(sorted_keys) == 0:
        return np.zeros(q.shape, dtype=bool)
    i = np.minimum(np.searchsorted(sorted_keys, q), len(sorted_keys) - 1)
    return sorted_keys[i] == q


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
        if len(flagged):
            hit[flagged] = contains(self.keys, k[flagged])
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


class SiblingNegatives:
    """Per category: its siblings (other children of its parents) and, when
    those are fewer than asked for, random candidates of the same level."""

    def __init__(self, tax, cand: np.ndarray):
        """``tax``: a :class:`~hgraph.data.taxonomy.Taxonomy`; ``cand``: the allowed ids."""
        ok = np.zeros(tax.num_nodes, dtype=bool)
        ok[cand] = True
        self.ok = ok
        c2p, p2c = tax.child_to_parent, tax.parent_to_child
        self.c2p, self.p2c = c2p, p2c
        lv = tax.level
        self.by_level = {int(v): np.flatnonzero((lv == v) & ok) for v in np.unique(lv)}
        self.level = lv

    def sample(self, cats: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        out = []
        for c in cats:
            sib = []
            for p in self.c2p.indices[self.c2p.indptr[c]:self.c2p.indptr[c + 1]]:
                ch = self.p2c.indices[self.p2c.indptr[p]:self.p2c.indptr[p + 1]]
                sib.extend(int(x) for x in ch if x != c and self.ok[x])
            if len(sib) > k:
                sib = list(rng.choice(sib, size=k, replace=False))
            if len(sib) < k:
                pool = self.by_level[int(self.level[c])]
                if len(pool):
                    sib.extend(rng.choice(pool, size=k - len(sib)).tolist())
            out.extend(sib)
        return np.asarray(out, dtype=np.int64)
