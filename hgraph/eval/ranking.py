"""Ranking metrics: graph reconstruction (mean rank, MAP) and the shared engine.

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

Ranking key.  Ranking within one source row only needs a per-row increasing
function of the distance, and for all three manifolds there is one that is a
single matrix product (no arcosh, no per-element work besides the product):

* Poincaré ball (curvature -c):
  ``d = arcosh(1 + 2c|x-y|^2 / ((1-c|x|^2)(1-c|y|^2))) / sqrt(c)`` is
  increasing in ``|x-y|^2 / (1-c|y|^2)`` for fixed ``x``, which is
  ``[x, |x|^2, 1] . [-2 b y, b, b |y|^2]`` with ``b = 1/(1-c|y|^2)``;
* Lorentz (``<x, x>_L = -k``): ``d = sqrt(k) arcosh(-<x, y>_L / k)`` is
  increasing in ``-<x, y>_L = x0 y0 - <x_s, y_s>``;
* Euclidean: ``|y|^2 - 2 <x, y>`` (the row-constant ``|x|^2`` dropped).

The cancellation in these sums is the same as in
:func:`hgraph.manifolds.pairwise_dist` (which also expands ``|x-y|^2``); pass
float64 points for more head-room.  Ties are judged on this key; exact ties
come from duplicate points, which get identical keys.

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

On the CPU tiles are ~1M keys (they stay in cache) and run on one worker
thread per core (numpy ufuncs release the GIL; torch's intra-op threads are
set to 1 for the duration and restored).  On other devices a tile is a
whole ``chunk`` of rows, counted with torch ops.  Memory is O(tile × N),
never O(N²).
"""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Optional, Tuple, Union

import geoopt
import numpy as np
import scipy.sparse as sp
import torch

from hgraph.manifolds import eps, kind

Tensor = torch.Tensor
ArrayLike = Union[np.ndarray, Tensor]

__all__ = ["reconstruction", "rank_keys", "RankKeys", "count_below"]


# ------------------------------------------------------------------ keys
class RankKeys:
    """Per-row increasing transform of the geodesic distance, as one matmul.

    ``RankKeys(manifold, y)`` prepares the column side once (``y``: (M, D));
    :meth:`block` then returns ``K`` (n, M) for rows ``x`` (n, D) with
    ``K[i, j] < K[i, l]  <=>  d(x_i, y_j) < d(x_i, y_l)`` (exact arithmetic).
    Keys are comparable within a row only.
    """

    def __init__(self, manifold: geoopt.Manifold, y: Tensor):
        self.kind = kind(manifold)
        y = y.detach()
        if self.kind == "poincare":
            c = manifold.c.detach().to(y)
            self.c = c
            sq = (y * y).sum(-1, keepdim=True)
            b = 1.0 / (1.0 - c * sq).clamp_min(eps(y.dtype))
            cols = torch.cat([-2.0 * b * y, b, b * sq], dim=1)
        elif self.kind == "lorentz":
            cols = torch.cat([y[:, :1], -y[:, 1:]], dim=1)
        else:
            cols = torch.cat([-2.0 * y, (y * y).sum(-1, keepdim=True)], dim=1)
        #: (D', M) column features, contiguous for the matmul
        self.cols_t = cols.T.contiguous()
        self.num_cols = y.shape[0]
        self.row_features: Optional[Tensor] = None

    def prepare_rows(self, x: Tensor) -> None:
        """Precompute row features of all of ``x`` (N, D); :meth:`block_ids` then indexes them."""
        self.row_features = self.rows(x)

    def rows(self, x: Tensor) -> Tensor:
        """(n, D') row features for points ``x`` (n, D)."""
        x = x.detach()
        if self.kind == "poincare":
            return torch.cat([x, (x * x).sum(-1, keepdim=True), torch.ones_like(x[:, :1])], dim=1)
        if self.kind == "lorentz":
            return x
        return torch.cat([x, torch.ones_like(x[:, :1])], dim=1)

    def block(self, x: Tensor, out: Optional[Tensor] = None) -> Tensor:
        """(n, M) keys of rows ``x`` against all columns (into ``out`` if given)."""
        return self._mm(self.rows(x), out)

    def block_ids(self, ids: Tensor, out: Optional[Tensor] = None) -> Tensor:
        """(n, M) keys of rows ``ids`` of the points given to :meth:`prepare_rows`."""
        return self._mm(self.row_features[ids], out)

    def _mm(self, a: Tensor, out: Optional[Tensor]) -> Tensor:
        if out is None:
            return a @ self.cols_t
        return torch.mm(a, self.cols_t, out=out)


def rank_keys(manifold: geoopt.Manifold, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
    """(n, m) ranking keys of ``x`` (n, D) against ``y`` (m, D) (default ``x``).

    See :class:`RankKeys`; keys order each row like the geodesic distances.
    """
    return RankKeys(manifold, x if y is None else y).block(x)


# ------------------------------------------------------------------ counting
#: keys per CPU tile: the tile's keys (float32) and compare mask stay in cache
_TILE_ELEMS = 1 << 20
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


# ------------------------------------------------------------------ engine
def _as_bool_csr(m, n: int, name: str) -> sp.csr_matrix:
    if not sp.issparse(m):
        raise ValueError(f"{name} must be a scipy sparse (N, N) matrix, got {type(m).__name__}")
    if m.shape != (n, n):
        raise ValueError(f"{name} has shape {m.shape}, expected ({n}, {n}) to match x")
    m = sp.csr_matrix(m, dtype=bool, copy=True)
    m.eliminate_zeros()
    if m.diagonal().any():     # u is never its own positive
        m.setdiag(False)
        m.eliminate_zeros()
    m.sort_indices()
    return m


def _check_points(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"x must be an (N, D) tensor, got {getattr(x, 'shape', type(x))}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or Inf; ranking metrics need finite points")


def _as_index(a: ArrayLike, name: str, n: int) -> np.ndarray:
    if isinstance(a, Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer node ids, got {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= n):
        raise ValueError(f"{name} holds node ids outside [0, {n}); got {a.min()}..{a.max()}")
    return a


def _as_mask(m: Optional[ArrayLike], n: int) -> np.ndarray:
    if m is None:
        return np.ones(n, dtype=bool)
    if isinstance(m, Tensor):
        m = m.detach().cpu().numpy()
    m = np.asarray(m)
    if m.dtype != bool or m.shape != (n,):
        raise ValueError(f"candidates must be a bool mask of shape ({n},), got {m.dtype} {m.shape}")
    return m


class _Engine:
    """Counts, per source row, the candidate nodes strictly closer than each target.

    Columns are stored candidate-first: ``order[p]`` is the node at position
    ``p``, positions ``< ncand`` are candidates.  Targets and exclusions are
    given in position space.
    """

    def __init__(self, manifold: geoopt.Manifold, x: Tensor, cand: np.ndarray, chunk: int):
        if int(chunk) < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.x = x.detach()
        n = x.shape[0]
        cand_idx = np.flatnonzero(cand)
        self.order = np.concatenate([cand_idx, np.flatnonzero(~cand)])
        self.pos_of = np.empty_like(self.order)
        self.pos_of[self.order] = np.arange(n)
        self.ncand = len(cand_idx)
        y = self.x if self.ncand == n else self.x[torch.from_numpy(self.order).to(x.device)]
        self.keys = RankKeys(manifold, y)
        self.keys.prepare_rows(self.x)
        self.cpu = x.device.type == "cpu"
        self.chunk = int(chunk)
        # CPU: small tiles (cache) on worker threads; elsewhere one block per chunk
        self.tile = max(1, min(self.chunk, _TILE_ELEMS // max(n, 1))) if self.cpu else self.chunk
        self.threads = max(1, torch.get_num_threads()) if self.cpu else 1
        self._local = threading.local()

    def _buffers(self, rows: int, n: int):
        loc = self._local
        if getattr(loc, "rows", 0) < rows:
            loc.kbuf = torch.empty(rows, n, dtype=self.x.dtype)
            loc.mbuf = np.empty(n, dtype=bool)
            loc.rows = rows
        return loc.kbuf[:rows], loc.mbuf

    def _tile(self, src, ix: "_ChunkIndex", a, b, P, strategy):
        n = self.x.shape[0]
        R = b - a
        ids = torch.from_numpy(src[a:b]).to(self.x.device)
        rr, jj, cc = ix.targets(a, b)
        er, ec = ix.excluded(a, b)
        nvalid = _nvalid(ix.deg[a:b], P)
        selfpos = self.pos_of[src[a:b]]
        if self.cpu:
            kbuf, mbuf = self._buffers(R, n)
            K = self.keys.block_ids(ids, out=kbuf).numpy()
            T = np.full((R, P), -np.inf, dtype=K.dtype)
            T[rr, jj] = K[rr, cc]
            K[rr, cc] = np.inf
            K[np.arange(R), selfpos] = np.inf
            K[er, ec] = np.inf
            C = _count_np(K[:, :self.ncand], T, strategy, mbuf)
            return C, T
        dev = self.x.device
        K = self.keys.block_ids(ids)
        rr_t, jj_t, cc_t, er_t, ec_t = (torch.from_numpy(v).to(dev) for v in (rr, jj, cc, er, ec))
        T = torch.full((R, P), float("-inf"), dtype=K.dtype, device=dev)
        T[rr_t, jj_t] = K[rr_t, cc_t]
        K[rr_t, cc_t] = float("inf")
        K[torch.arange(R, device=dev), torch.from_numpy(selfpos).to(dev)] = float("inf")
        K[er_t, ec_t] = float("inf")
        C = _count_torch(K[:, :self.ncand], T, nvalid, strategy)
        return C.cpu().numpy(), T.cpu().numpy()

    def counts(self, src: np.ndarray, tgt: sp.csr_matrix, excl: Optional[sp.csr_matrix] = None,
               strategy: str = "auto") -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Closer-than counts for source rows ``src`` (B,).

        ``tgt``: (B, N) CSR, row i = target positions of source i, rows sorted
        by number of targets, descending.  ``excl``: (B, N) CSR of further
        positions left out of the count (the targets and the source itself
        always are).  Returns ``(C, T, valid, deg)`` (numpy): ``C`` (B, P)
        int64 = #{candidate positions not left out with key < T[i, j]},
        ``T`` (B, P) target keys, ``valid`` (B, P) bool, ``deg`` (B,).
        """
        if strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}")
        B = len(src)
        ix = _ChunkIndex(tgt, excl)
        deg = ix.deg
        P = int(deg.max()) if B else 0
        C = np.zeros((B, P), dtype=np.int64)
        T = np.full((B, P), -np.inf)
        valid = np.arange(P)[None, :] < deg[:, None]
        if B == 0 or P == 0:
            return C, T, valid, deg
        spans = [(a, min(a + self.tile, B)) for a in range(0, B, self.tile)]

        def work(span):
            a, b = span
            c, t = self._tile(src, ix, a, b, P, strategy)
            C[a:b] = c
            T[a:b] = t

        with torch.no_grad():
            if self.threads > 1 and len(spans) > 1:
                # one worker per core, each single-threaded: torch's intra-op
                # threads on these thin matmuls cost more in hand-offs than they
                # save.  torch.set_num_threads is process-wide; restored below.
                prev = torch.get_num_threads()
                torch.set_num_threads(1)
                try:
                    with ThreadPoolExecutor(self.threads) as pool:
                        for _ in pool.map(work, spans):
                            pass
                finally:
                    torch.set_num_threads(prev)
            else:
                for span in spans:
                    work(span)
        return C, T, valid, deg


class _ChunkIndex:
    """Coordinates of a chunk's targets and exclusions, sliced per tile."""

    def __init__(self, tgt: sp.csr_matrix, excl: Optional[sp.csr_matrix]):
        self.tptr = tgt.indptr.astype(np.int64)
        self.deg = np.diff(self.tptr)
        self.trow = np.repeat(np.arange(len(self.deg)), self.deg)
        self.tslot = np.arange(tgt.nnz) - self.tptr[self.trow]
        self.tcol = tgt.indices.astype(np.int64)
        if excl is None:
            excl = sp.csr_matrix(tgt.shape, dtype=bool)
        self.eptr = excl.indptr.astype(np.int64)
        self.erow = np.repeat(np.arange(len(self.eptr) - 1), np.diff(self.eptr))
        self.ecol = excl.indices.astype(np.int64)

    def targets(self, a: int, b: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = self.tptr[a], self.tptr[b]
        return self.trow[lo:hi] - a, self.tslot[lo:hi], self.tcol[lo:hi]

    def excluded(self, a: int, b: int) -> Tuple[np.ndarray, np.ndarray]:
        lo, hi = self.eptr[a], self.eptr[b]
        return self.erow[lo:hi] - a, self.ecol[lo:hi]


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


# ------------------------------------------------------------------ public
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
