"""Samplers of the graph regularisers' triplets and pairs (RAMEN / HUSE style).

The sampling half of the graph regulariser; the loss terms and
:class:`hgraph.losses.GraphRegularizer` (a sampler with its loss) live in
:mod:`hgraph.losses`.

The taxonomy is used only while training: each step samples triplets / pairs
from the *training* graph and adds a loss on the encoder's points.  The
encoder itself never sees the graph, so inference cost is unchanged
(Mittal et al. 2024, "Graph Regularized Encoder Training for Extreme
Classification").  Use::

    reg = hgraph.losses.GraphRegularizer(train_edges, num_nodes, kinds=("ancestor", "sibling"),
                           allowed=train_node_mask, level=taxonomy.level)
    samples = reg.sample(anchor_ids, rng)              # numpy, per step
    ids = reg.nodes(samples)                           # encode each node once
    z = encoder(x[ids], None, torch.as_tensor(ids))
    parts = reg.loss(manifold, z, index_map(ids, num_nodes), samples)
    loss = task_loss + lambda_at(epoch, reg_lambda, reg_warmup) * sum(parts.values())

Notation: ``N`` nodes; ``anc(u)`` the proper ancestors of ``u`` and
``desc(u)`` its proper descendants in the training graph; ``P(u)`` its
parents; ``d`` the manifold's geodesic distance.

Kinds
-----
``ancestor`` — triplets ``(u, a, w)``: ``a`` uniform over ``anc(u)``; ``w``
uniform over allowed nodes with ``w != u``, ``w ∉ anc(u)`` and
``w ∉ desc(u)``.  Descendants are excluded as well as ancestors because a
hierarchy embedding puts a child *closer* to ``u`` than ``u``'s far
ancestors (the child is 1 hop away, the root up to depth hops); pushing
descendants away would fight the task loss.  This is the negative set of
Nickel & Kiela's closure reconstruction (pairs unrelated in either
direction).

``sibling`` — triplets ``(u, s, w)``: ``p`` uniform over the parents of ``u``
that have another child, ``s`` uniform over ``children(p) \\ {u}``; ``w``
uniform over allowed nodes outside the subtrees of all of ``u``'s parents
and not an ancestor of ``u``: ``w ∉ anc(u) ∪ ⋃_{q∈P(u)} ({q} ∪ desc(q))``.
So ``w`` is never a sibling (through any parent, in a DAG), a nephew, the
parent or an ancestor (an ancestor is as close to ``u`` in hops as a
sibling, so it would be a contradictory negative).

Both triplet kinds use the hinge::

    L = mean_t relu(margin + d(z_u, z_pos) - d(z_u, z_w))

Hard negatives (``hard_negatives=True``): ``w`` is drawn, with the same
exclusions, from the allowed nodes at the level of the positive (``a`` for
``ancestor``, ``s`` for ``sibling``) that share no parent with the positive.
For ``ancestor`` this makes ``w`` a "cousin" of ``a``: in a tree its hop
distance to ``u`` is at least ``d_tree(u, a) + 4``, so the constraint agrees
with the tree metric.  When no such node exists (the positive is a root, or
every node at that level is a child of the positive's parents) the triplet
falls back to an ordinary negative.

``huse`` — distance consistency (HUSE, Narayana et al. 2019).  For each
anchor ``u`` two pairs: a *near* pair ``(u, v)`` with ``v`` reached by a
random walk of ``i`` steps up then ``j`` steps down, ``i ~ U{0..thr}``,
``j ~ U{0..thr-i}`` (so ``d_tree(u, v) <= thr = huse_threshold``:
ancestors, descendants, siblings, cousins...), and a *random* pair
``(u, v)`` with ``v`` uniform over allowed nodes.  The target is the
hierarchy distance, computed exactly::

    d_tree(u, v) = min_{c ∈ anc*(u) ∩ anc*(v)} h(u, c) + h(v, c)

(``anc*`` includes the node itself, ``h`` = fewest upward hops).  In a tree
this is the path length through the lowest common ancestor; in a DAG it is
the shortest up-then-down path.  Pairs with ``u == v`` or without a common
ancestor (different components of an edge-split training graph) are
dropped.  The loss, with ``T`` pairs, embedding distances ``δ_t`` and
targets ``t_t``::

    huse_scale = s (fixed):  L = mean_t (δ_t / s - t_t)^2
    huse_scale = None:       a* = Σ δ t / Σ δ^2    (least-squares 1/scale, detached)
                             L = mean_t (a* δ_t - t_t)^2 / mean_t t_t^2
                               = 1 - cos^2(δ, t)   ∈ [0, 1]

The default (``None``) fits the scale per batch: the regulariser then
constrains only the *shape* of the distances (relative distortion) and the
task loss alone decides the overall scale, so there is no scale
hyper-parameter to tune and no conflict with the ranking loss about how far
apart things are.  Detaching ``a*`` does not change the gradient (``a*``
minimises the loss, so ∂L/∂a = 0 there).  Being scale-invariant, its gradient
grows as 1/|δ| when all points collapse together; give a fixed ``huse_scale``
if that matters (e.g. with plain SGD from a near-origin init).  The squared
distortion was preferred to a margin-free rank consistency because its
targets are the hop counts themselves (HUSE's formulation) and it needs no
temperature.

Leak-freedom: ``allowed`` (N,) bool marks the training nodes.  Every edge with
an endpoint outside ``allowed`` is dropped before anything is built, and all
draws are over allowed nodes, so a held-out node never appears as anchor,
positive or negative, and adding or removing held-out nodes (with their
edges) changes neither the exclusion sets nor the samples.  (Holding out an
*internal* node disconnects its subtree from its ancestors in the training
graph — it is absent from training entirely.)

All samplers are vectorised numpy: a bounded number of rejection rounds,
then an exact pass (a dense item × candidate validity mask, chunked) for the
few items still without a negative, so every triplet whose anchor has a valid
negative gets one, drawn uniformly from the valid set.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
from hgraph.data.pairs import contains, matrix_keys, pair_matrix
from hgraph.data.taxonomy import transitive_closure

#: regulariser kinds (RegConfig.reg_kinds choices)
KINDS: Tuple[str, ...] = ("ancestor", "sibling", "huse")
TRIPLET_KINDS: Tuple[str, ...] = ("ancestor", "sibling")

_REJECT_ROUNDS = 16          # rejection rounds before the exact pass
_EXACT_CELLS = 1 << 22       # item x candidate cells per chunk of the exact pass
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


# ------------------------------------------------------------------ helpers
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


# ------------------------------------------------------------------ regulariser
class TripletSampler:
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
