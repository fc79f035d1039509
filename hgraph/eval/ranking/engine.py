"""The ranking engine: closer-than counts per source row, tiled over the keys.

``_Engine`` stores the columns candidate-first, builds each tile's key block
(:class:`~hgraph.eval.ranking.keys.RankKeys`), sets the targets, the source
and the exclusions to ``+inf`` and counts with
:func:`~hgraph.eval.ranking.counting.count_below`'s counters.

On the CPU tiles are ~1M keys (they stay in cache) and run on one worker
thread per core (numpy ufuncs release the GIL; torch's intra-op threads are
set to 1 for the duration and restored).  On other devices a tile is a
whole ``chunk`` of rows, counted with torch ops.  Memory is O(tile × N),
never O(N²).
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Tuple

import geoopt
import numpy as np
import scipy.sparse as sp
import torch

from hgraph.eval.ranking.counting import _STRATEGIES, _count_np, _count_torch, _nvalid
from hgraph.eval.ranking.keys import RankKeys

Tensor = torch.Tensor

#: keys per CPU tile: the tile's keys (float32) and compare mask stay in cache
_TILE_ELEMS = 1 << 20


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
