"""The hierarchy distance of the ``huse`` pairs: fewest up-then-down hops.

A mixin of :class:`~hgraph.data.triplets.sampler.TripletSampler`: it reads
the hop-count closure and padded tables that ``TripletSampler.__init__``
builds.
"""
from __future__ import annotations

import numpy as np

from hgraph.data.triplets.helpers import _chunks, _expand


class _TreeDistance:
    """``d_tree(u, v) = min_c h(u, c) + h(v, c)`` over common ancestors-or-self ``c``."""

    def tree_distance(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """(T,) hierarchy distance ``min_c h(u,c) + h(v,c)`` over common
        ancestors-or-self ``c`` in the training graph; -1 where there is none."""
        n = self.num_nodes
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        T = len(u)

        def side(x):
            item, pos = _expand(self.closure.indptr, x)
            keys = np.concatenate([np.arange(T, dtype=np.int64) * n + x,
                                   item * n + self.closure.indices[pos]])
            hops = np.concatenate([np.zeros(T, dtype=np.int64),
                                   self.closure.data[pos].astype(np.int64)])
            return keys, hops

        if self._anc_pad is not None:
            return self._tree_distance_padded(u, v)
        ku, hu = side(u)
        kv, hv = side(v)
        common, iu, iv = np.intersect1d(ku, kv, assume_unique=True, return_indices=True)
        out = np.full(T, -1, dtype=np.int64)
        if len(common) == 0:
            return out
        tot = hu[iu] + hv[iv]
        pair = common // n                                           # sorted
        starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        out[pair[starts]] = np.minimum.reduceat(tot, starts)
        return out

    def _tree_distance_padded(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        T = len(u)
        out = np.full(T, -1, dtype=np.int64)
        w = self._anc_pad.shape[1] + 1
        big = np.iinfo(np.int32).max
        for c in _chunks(T, 4 * w):
            uc, vc = u[c].astype(np.int32), v[c].astype(np.int32)
            au = np.concatenate([uc[:, None], self._anc_pad[u[c]]], axis=1)     # (t, w), self first
            av = np.concatenate([vc[:, None], self._anc_pad[v[c]]], axis=1)
            hu = np.concatenate([np.zeros((len(uc), 1), np.int32), self._hop_pad[u[c]]], axis=1)
            hv = np.concatenate([np.zeros((len(vc), 1), np.int32), self._hop_pad[v[c]]], axis=1)
            best = np.full(len(uc), big, dtype=np.int32)
            for i in range(w):
                x = au[:, i]
                m = av == x[:, None]                 # an id occurs at most once per row
                m &= (x >= 0)[:, None]
                hit = m.any(axis=1)
                cand = hu[:, i] + (hv * m).sum(axis=1, dtype=np.int32)
                np.minimum(best, np.where(hit, cand, big), out=best)
            out[c] = np.where(best < big, best, -1)
        return out
