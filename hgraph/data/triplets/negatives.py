"""Drawing the triplets' negatives: validity tests, rejection rounds, the exact pass.

A mixin of :class:`~hgraph.data.triplets.sampler.TripletSampler`: it reads
the tables that ``TripletSampler.__init__`` builds (closure, parents,
children, levels, padded tables).  The exclusion rules are in
:mod:`hgraph.data.triplets`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from hgraph.data.pairs import contains
from hgraph.data.triplets.helpers import _any, _chunks, _expand

_REJECT_ROUNDS = 16          # rejection rounds before the exact pass
_EXACT_CELLS = 1 << 22       # item x candidate cells per chunk of the exact pass


class _NegativeDraws:
    """Negatives for triplets ``(anchor, positive, ·)``, uniform over the valid set."""

    # ---------------------------------------------------------------- validity
    def _is_anc(self, u: np.ndarray, w: np.ndarray) -> np.ndarray:
        """w ∈ anc(u), elementwise."""
        if self._anc_pad is None:
            return contains(self.clo_keys, u * self.num_nodes + w)
        out = np.empty(len(u), dtype=bool)
        for c in _chunks(len(u), self._anc_pad.shape[1]):
            out[c] = (self._anc_pad[u[c]] == w[c, None]).any(axis=1)
        return out

    def _shares_parent(self, w: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """w and ref have a common parent, elementwise."""
        if self._par_pad is None:
            item, pos = _expand(self.par.indptr, w)
            q = self.par.indices[pos].astype(np.int64)
            hit = contains(self.par_keys, ref[item] * self.num_nodes + q)
            return _any(item, hit, len(w))
        out = np.empty(len(w), dtype=bool)
        wp = self._par_pad.shape[1]
        for c in _chunks(len(w), wp * wp):
            pw = self._par_pad[w[c]]
            pr = self._par_pad[ref[c]]
            out[c] = ((pw[:, :, None] == pr[:, None, :]) & (pw[:, :, None] >= 0)).any(axis=(1, 2))
        return out

    def _invalid_ancestor(self, u: np.ndarray, w: np.ndarray) -> np.ndarray:
        return (w == u) | self._is_anc(u, w) | self._is_anc(w, u)

    def _invalid_sibling(self, u: np.ndarray, w: np.ndarray) -> np.ndarray:
        bad = self._is_anc(u, w) | (w == u)
        if self._par_pad is not None and self._par_pad.shape[1] == 1:   # tree: one parent
            q = self._par_pad[u, 0]
            has = q >= 0
            bad[has] |= self._is_anc(w[has], q[has])                # w ∈ desc(q)
            return bad
        item, pos = _expand(self.par.indptr, u)                     # q ∈ P(u)
        q = self.par.indices[pos].astype(np.int64)
        hit = self._is_anc(w[item], q)                              # w ∈ desc(q)
        return bad | _any(item, hit, len(u))

    def _invalid_hard(self, ref: np.ndarray, w: np.ndarray) -> np.ndarray:
        return (w == ref) | (self.level[w] != self.level[ref]) | self._shares_parent(w, ref)

    # ---------------------------------------------------------------- drawing
    @staticmethod
    def _reject(items: np.ndarray, propose: Callable, invalid: Callable,
                out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Rejection rounds; fills ``out[items]``; returns the items left."""
        todo = items
        for _ in range(_REJECT_ROUNDS):
            if len(todo) == 0:
                break
            cand = propose(todo, rng)
            bad = invalid(todo, cand)
            out[todo[~bad]] = cand[~bad]
            todo = todo[bad]
        return todo

    @staticmethod
    def _exact(items: np.ndarray, pool: np.ndarray, invalid: Callable,
               out: np.ndarray, rng: np.random.Generator) -> None:
        """Uniform valid candidate from ``pool`` for each item (dense, chunked)."""
        m = len(pool)
        if m == 0 or len(items) == 0:
            return
        step = max(1, _EXACT_CELLS // m)
        for s in range(0, len(items), step):
            it = items[s:s + step]
            k = len(it)
            bad = invalid(np.repeat(it, m), np.tile(pool, k)).reshape(k, m)
            score = rng.random((k, m))
            score[bad] = -1.0
            j = score.argmax(axis=1)
            ok = ~bad[np.arange(k), j]
            out[it[ok]] = pool[j[ok]]

    def _negatives(self, anchor: np.ndarray, ref: np.ndarray, kind: str,
                   rng: np.random.Generator) -> np.ndarray:
        """(T,) negatives for triplets (anchor, ref, ·); -1 where none exists."""
        T = len(anchor)
        out = np.full(T, -1, dtype=np.int64)
        base = self._invalid_ancestor if kind == "ancestor" else self._invalid_sibling
        plain = lambda i, w: base(anchor[i], w)                     # noqa: E731
        if self.hard_negatives and T:
            lv = self.level[ref]
            hard = lambda i, w: plain(i, w) | self._invalid_hard(ref[i], w)  # noqa: E731

            def propose_hard(i, g):
                L = lv[i]
                j = (g.random(len(i)) * self._lvl_count[L]).astype(np.int64)
                return self._lvl_nodes[self._lvl_start[L] + j]

            items = np.flatnonzero(self._hard_pool[ref] > 0)
            left = self._reject(items, propose_hard, hard, out, rng)
            for L in np.unique(lv[left]):
                sel = left[lv[left] == L]
                pool = self._lvl_nodes[self._lvl_start[L]:self._lvl_start[L] + self._lvl_count[L]]
                self._exact(sel, pool, hard, out, rng)
        items = np.flatnonzero(out < 0)
        if len(items):
            ids = self.allowed_ids

            def propose(i, g):
                return ids[g.integers(0, len(ids), size=len(i))]

            left = self._reject(items, propose, plain, out, rng)
            self._exact(left, ids, plain, out, rng)
        return out
