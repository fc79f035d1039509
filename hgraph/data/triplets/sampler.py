"""The sampler of the graph regularisers' triplets and pairs.

:class:`TripletSampler` builds the training graph's tables (parents,
children, the hop-count closure, levels, the sizes of the negative pools)
and samples ``ancestor`` / ``sibling`` triplets and ``huse`` pairs; the
kinds and their rules are described in :mod:`hgraph.data.triplets`.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from hgraph.data.pairs import matrix_keys, pair_matrix
from hgraph.data.triplets.distance import _TreeDistance
from hgraph.data.triplets.helpers import _PAD_MAX, _expand, _padded, _pick, distance_closure
from hgraph.data.triplets.negatives import _NegativeDraws

#: regulariser kinds (RegConfig.reg_kinds choices)
KINDS: Tuple[str, ...] = ("ancestor", "sibling", "huse")
TRIPLET_KINDS: Tuple[str, ...] = ("ancestor", "sibling")


class TripletSampler(_NegativeDraws, _TreeDistance):
    """Triplets and pairs for the graph regularisers, sampled from a training graph.

    Args:
        train_edges: (E, 2) int rows ``(child, parent)`` of the training graph.
        num_nodes: N.
        kinds: subset of :data:`KINDS`.
        hard_negatives: draw triplet negatives at the positive's level with a
            different parent (see the module docstring).
        level: (N,) int node levels used by hard negatives (pass
            ``taxonomy.level``); None computes the fewest hops to a parentless
            node of the training graph.
        allowed: (N,) bool training-node mask; None allows all nodes.
        huse_threshold: longest random walk (hops) of the near ``huse`` pairs.
        seed: seed of the generator used when ``sample`` gets none.
    """

    def __init__(self, train_edges: np.ndarray, num_nodes: int,
                 kinds: Sequence[str] = ("ancestor", "sibling"),
                 hard_negatives: bool = False, level: Optional[np.ndarray] = None,
                 allowed: Optional[np.ndarray] = None, huse_threshold: int = 4,
                 seed: int = 0):
        n = int(num_nodes)
        if n < 1:
            raise ValueError(f"num_nodes must be >= 1, got {num_nodes}")
        kinds = tuple(kinds)
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds or len(set(kinds)) != len(kinds):
            raise ValueError(f"regulariser kinds must be distinct values from {list(KINDS)}, got {list(kinds)}")
        if huse_threshold < 1:
            raise ValueError(f"huse_threshold must be >= 1, got {huse_threshold}")
        e = np.asarray(train_edges, dtype=np.int64).reshape(-1, 2)
        if len(e) and (e.min() < 0 or e.max() >= n):
            raise ValueError(f"train_edges hold ids outside 0..{n - 1}")
        if allowed is None:
            allowed = np.ones(n, dtype=bool)
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != (n,):
            raise ValueError(f"allowed must have shape ({n},), got {allowed.shape}")

        self.num_nodes = n
        self.kinds = kinds
        self.hard_negatives = bool(hard_negatives)
        self.huse_threshold = int(huse_threshold)
        self.allowed = allowed.copy()
        self.allowed_ids = np.flatnonzero(allowed).astype(np.int64)
        self._rng = np.random.default_rng(seed)

        # training graph restricted to allowed nodes
        keep = allowed[e[:, 0]] & allowed[e[:, 1]] & (e[:, 0] != e[:, 1])
        e = e[keep]
        self.edges = e
        self.par = pair_matrix(e[:, 0], e[:, 1], n, dtype=np.int32)            # row u: parents of u
        self.chi = self.par.T.tocsr()                     # row p: children of p
        self.chi.sort_indices()
        self.par_keys = matrix_keys(self.par, n)                # child * n + parent
        self.chi_keys = matrix_keys(self.chi, n)                # parent * n + child
        self.n_par = np.diff(self.par.indptr).astype(np.int64)
        self.n_chi = np.diff(self.chi.indptr).astype(np.int64)

        # closure with hop counts
        self.closure = distance_closure(e, n)             # (u, a) -> hops
        self.clo_keys = matrix_keys(self.closure, n)            # descendant * n + ancestor
        self.n_anc = np.diff(self.closure.indptr).astype(np.int64)
        self.n_desc = np.bincount(self.closure.indices, minlength=n).astype(np.int64)
        # padded tables (fast membership for shallow hierarchies); None when too wide
        wa = int(self.n_anc.max()) if n else 0
        self._anc_pad = _padded(self.closure, wa) if wa <= _PAD_MAX else None
        self._hop_pad = _padded(self.closure, wa, data=True) if wa <= _PAD_MAX else None
        wp = int(self.n_par.max()) if n else 0
        self._par_pad = _padded(self.par, wp) if wp <= _PAD_MAX else None

        # levels
        if level is None:
            level = self._levels_from_graph()
        level = np.asarray(level, dtype=np.int64).reshape(-1)
        if level.shape != (n,):
            raise ValueError(f"level must have shape ({n},), got {level.shape}")
        if len(self.allowed_ids) and level[self.allowed_ids].min() < 0:
            raise ValueError("level must be >= 0 for every allowed node")
        self.level = level
        lv = level[self.allowed_ids]
        order = np.argsort(lv, kind="stable")
        self._lvl_nodes = self.allowed_ids[order]
        nl = int(lv.max()) + 1 if len(lv) else 1
        self._lvl_count = np.bincount(lv, minlength=nl).astype(np.int64)
        self._lvl_start = (np.cumsum(self._lvl_count) - self._lvl_count).astype(np.int64)

        # parents that have >= 2 children (sibling positives)
        sp_mask = self.n_chi[self.par.indices] >= 2
        rows = np.repeat(np.arange(n), self.n_par)[sp_mask]
        cols = self.par.indices[sp_mask].astype(np.int64)
        self.sib_par = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
        self.sib_par.sort_indices()
        # slot of u among the children of p, for every sib_par entry (u, p)
        su = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.sib_par.indptr))
        sq = self.sib_par.indices.astype(np.int64)
        self._sib_slot = (np.searchsorted(self.chi_keys, sq * n + su)
                          - self.chi.indptr[sq]).astype(np.int64)

        # how many plain negatives exist (anchors with none are dropped up front)
        na = len(self.allowed_ids)
        self._anc_valid = na - 1 - self.n_anc - self.n_desc
        # sibling: upper bound n_allowed - max_q |anc(q) ∪ {q} ∪ desc(q)| (exact in a tree)
        item, pos = _expand(self.par.indptr, np.arange(n))
        q = self.par.indices[pos]
        block = np.zeros(n, dtype=np.int64)
        np.maximum.at(block, item, self.n_anc[q] + 1 + self.n_desc[q])
        self._sib_valid = na - block
        self._hard_pool = (self._hard_pool_sizes()
                           if self.hard_negatives and set(kinds) & set(TRIPLET_KINDS) else None)

    # ---------------------------------------------------------------- set-up
    def _levels_from_graph(self) -> np.ndarray:
        """Fewest hops to a parentless node (0 for parentless nodes)."""
        n = self.num_nodes
        lv = np.zeros(n, dtype=np.int64)
        c = self.closure
        rows = np.repeat(np.arange(n), np.diff(c.indptr))
        is_root = self.n_par[c.indices] == 0
        big = np.iinfo(np.int64).max
        best = np.full(n, big, dtype=np.int64)
        np.minimum.at(best, rows[is_root], c.data[is_root].astype(np.int64))
        has = best < big
        lv[has] = best[has]
        return lv

    def _hard_pool_sizes(self) -> np.ndarray:
        """(N,) allowed nodes at level(r) sharing no parent with r (excluding r)."""
        n = self.num_nodes
        lv = self.level
        nl = len(self._lvl_count)
        total = np.zeros(n, dtype=np.int64)
        ok = (lv >= 0) & (lv < nl)
        total[ok] = self._lvl_count[lv[ok]]
        shared = np.zeros(n, dtype=np.int64)       # nodes at level(r) that are children of P(r), r included
        # one parent: children of q at level L, counted once per (q, L)
        c, q = self.edges[:, 0], self.edges[:, 1]
        ql = np.unique(q * nl + np.clip(lv[c], 0, nl - 1), return_counts=True)
        one = np.flatnonzero(self.n_par == 1)
        if len(one):
            q1 = self.par.indices[self.par.indptr[one]].astype(np.int64)
            k = q1 * nl + np.clip(lv[one], 0, nl - 1)
            i = np.searchsorted(ql[0], k)
            shared[one] = ql[1][i]
        # several parents: the union of their children (expanded; rare outside DAGs)
        many = np.flatnonzero(self.n_par > 1)
        if len(many):
            item, pos = _expand(self.par.indptr, many)
            qq = self.par.indices[pos].astype(np.int64)
            it2, pos2 = _expand(self.chi.indptr, qq)
            rr = many[item[it2]]
            cc = self.chi.indices[pos2].astype(np.int64)
            same = lv[cc] == lv[rr]
            keys = np.unique(rr[same] * n + cc[same])
            shared += np.bincount(keys // n, minlength=n)
        self_in = np.where(self.n_par == 0, 1, 0)  # parentless r: only r itself is excluded
        return np.where(self.allowed, total - shared - self_in, 0)

    # ---------------------------------------------------------------- samplers
    def _ancestor(self, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = u[(self.n_anc[u] > 0) & (self._anc_valid[u] > 0)]
        a = _pick(self.closure.indptr, self.closure.indices, u, rng)
        w = self._negatives(u, a, "ancestor", rng)
        ok = w >= 0
        return np.stack([u[ok], a[ok], w[ok]], axis=1)

    def _sibling(self, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = u[(np.diff(self.sib_par.indptr)[u] > 0) & (self._sib_valid[u] > 0)]
        e = _pick(self.sib_par.indptr, None, u, rng)                # entry (u, p) of sib_par
        p = self.sib_par.indices[e].astype(np.int64)
        k = self._sib_slot[e]                                       # u's slot among p's children
        start = self.chi.indptr[p].astype(np.int64)
        deg = self.n_chi[p]
        j = (rng.random(len(u)) * (deg - 1)).astype(np.int64)
        j += j >= k
        s = self.chi.indices[start + j].astype(np.int64)
        w = self._negatives(u, s, "sibling", rng)
        ok = w >= 0
        return np.stack([u[ok], s[ok], w[ok]], axis=1)

    def _walk(self, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        thr = self.huse_threshold
        up = rng.integers(0, thr + 1, size=len(u))
        down = (rng.random(len(u)) * (thr - up + 1)).astype(np.int64)
        x = u.copy()
        for step in range(thr):
            act = np.flatnonzero((step < up) & (self.n_par[x] > 0))
            if len(act) == 0:
                break
            x[act] = _pick(self.par.indptr, self.par.indices, x[act], rng)
        for step in range(thr):
            act = np.flatnonzero((step < down) & (self.n_chi[x] > 0))
            if len(act) == 0:
                break
            x[act] = _pick(self.chi.indptr, self.chi.indices, x[act], rng)
        return x

    def _huse(self, u: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        v_near = self._walk(u, rng)
        v_rand = self.allowed_ids[rng.integers(0, len(self.allowed_ids), size=len(u))]
        a = np.concatenate([u, u])
        b = np.concatenate([v_near, v_rand])
        keep = a != b
        a, b = a[keep], b[keep]
        d = self.tree_distance(a, b)
        ok = d >= 0
        return np.stack([a[ok], b[ok]], axis=1), d[ok].astype(np.float64)

    # ---------------------------------------------------------------- public
    def sample(self, anchors: np.ndarray,
               generator: Optional[np.random.Generator] = None) -> Dict[str, np.ndarray]:
        """Sample one triplet per anchor for each triplet kind, two pairs for ``huse``.

        ``anchors``: (B,) int64 global ids; ids outside ``allowed`` are dropped,
        and so are anchors with no valid positive / negative for a kind.
        Returns ``{"ancestor": (T, 3), "sibling": (T, 3)}`` rows
        ``(anchor, positive, negative)`` and, for ``huse``, ``"huse"``: (T, 2)
        pairs and ``"huse_dist"``: (T,) float64 hierarchy distances; only the
        configured kinds appear.  Deterministic given the generator's state.
        """
        rng = self._rng if generator is None else generator
        a = np.asarray(anchors, dtype=np.int64).reshape(-1)
        if len(a) and (a.min() < 0 or a.max() >= self.num_nodes):
            raise ValueError(f"anchors hold ids outside 0..{self.num_nodes - 1}")
        a = a[self.allowed[a]]
        out: Dict[str, np.ndarray] = {}
        for kind in self.kinds:
            if kind == "ancestor":
                out[kind] = self._ancestor(a, rng)
            elif kind == "sibling":
                out[kind] = self._sibling(a, rng)
            else:
                out["huse"], out["huse_dist"] = self._huse(a, rng)
        return out

    @staticmethod
    def nodes(samples: Dict[str, np.ndarray]) -> np.ndarray:
        """Sorted unique global ids that ``samples`` touch."""
        parts = [np.asarray(v, dtype=np.int64).reshape(-1)
                 for k, v in samples.items() if k != "huse_dist"]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(parts))
