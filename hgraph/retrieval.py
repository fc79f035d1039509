"""Exact k-nearest-category search by hyperbolic distance.

:class:`HyperbolicIndex` answers "which k stored points are closest to each
query" for points on a Poincaré ball, a Lorentz hyperboloid or Euclidean
space, and returns exact geodesic distances.  The search has two stages:

1. **Coarse search** for ``m = k + margin`` candidates by one matrix product.
   On the hyperboloid (ball points are mapped there first with
   :func:`hgraph.manifolds.poincare_to_lorentz`) the distance is

       d(x, y) = sqrt(K) * arcosh(-<x, y>_L / K),   <x, y>_L = -x0 y0 + xs . ys,

   with ``K = 1 / c``; it is increasing in ``-<x, y>_L``.  Flipping the sign
   of the time coordinate on the database side, ``y~ = (-y0, ys)``, makes the
   plain dot product ``x . y~`` equal ``<x, y>_L``, so the nearest point is
   the one with the *largest inner product* and faiss's ``IndexFlatIP`` (or a
   float64 torch matmul when faiss is absent) finds it.  Euclidean points use
   ``IndexFlatL2`` (or ``torch`` squared distances).

2. **Exact re-ranking** of the candidates in float64 with the
   cancellation-free formula ``t = 2c |p - q|^2 / ((1 - c|p|^2)(1 - c|q|^2))``,
   ``d = arcosh(1 + t) / sqrt(c)`` on ball coordinates ``p, q``, and a
   **certificate** that nothing outside the candidates can be closer.

Why the certificate is needed (float32 precision of the identity).  faiss
works in float32.  The Lorentz coordinates of a point at distance r from the
origin are of size ``cosh(r)``, so ``x . y~`` is a difference of two numbers
of size ``cosh(r_x) cosh(r_y)`` whose result, ``cosh(d)``, is small for
near neighbours: the rounding error is about ``2^-24 cosh(r_x) cosh(r_y)``.
Two neighbours at distance ``d`` from a query at radius ``r`` can only be told
apart when ``cosh(d) - 1 ~ d^2 / 2`` exceeds that, i.e. for
``d > ~3.5e-4 cosh(r)`` (0.03 at r = 5, 3.8 at r = 10).  Ranking by the
float32 inner product alone therefore returns wrong neighbours for points far
from the origin.  The certificate bounds that error: if ``S`` is the exact
key (``-<q, y>_L``) of the k-th re-ranked candidate, every true competitor
``j`` (key below ``S``) lies within ``r_q + d_S`` of the origin, so its
float32 key is off by at most ``delta = C u q0 Y`` with
``Y = sqrt(K) cosh((r_q + d_S) / sqrt(K))`` (the largest time coordinate such
a competitor can have), ``u = 2^-24`` and ``C = 4 (D + 4)``: rounding the
inputs and summing D products in float32 is off by at most about
``(D + 2) u sum_i |q_i y_i| <= 2 (D + 2) u q0 y0``, and ``C`` doubles that.
Every point not retrieved has a float32 key at least ``tau`` (the largest
retrieved key), so when ``tau >= S + delta`` no competitor was missed.  A
query whose certificate fails is searched again with four times as many
candidates (at most all points, which is brute force).  The torch fallback
runs the same code with a float64 matmul (``u = 2^-53``) and rarely needs a
second round.  The results are exact up to ties (points at exactly the same
distance may be returned in either order; ties are broken by the smaller id).

Measured (20,000 Lorentz points, dim 10, clusters of radius 0.3 around 200
centres at distance r from the origin, 200 queries, k = 10): the largest
float32 key error is 1.3e-6 / 5.8e-5 / 3.7e-3 / 0.21 / 68 at r = 1 / 3 / 5 /
7 / 10, and plain float32 ``IndexFlatIP`` ranking returns 100% / 99.8% /
91% / 25% / 9.5% of the true 10 nearest; with the certificate every query is
exact (from r = 5 on, one extra round with 4x the candidates).

Points are converted to float64 once.  Lorentz points are re-projected onto
the hyperboloid (``x0 = sqrt(K + |xs|^2)``, as geoopt's ``projx``): a float32
point at r = 5 is otherwise off the hyperboloid by ~1e-3 and its distance to
itself would be ~0.05.  Ball points on or beyond the boundary (possible after
float32 rounding) are pulled inside to norm ``(1 - 2^-24) / sqrt(c)``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from hgraph import manifolds as M
from hgraph.export import Embeddings, load_embeddings

Tensor = torch.Tensor
ArrayLike = Union[Tensor, np.ndarray, Sequence]

#: unit roundoff of the coarse search's arithmetic
_UNIT_ROUNDOFF = {"faiss": 2.0 ** -24, "torch": 2.0 ** -53}
#: elements of float64 scratch per re-ranking chunk (Q_chunk * m * d)
_RERANK_ELEMENTS = 4_000_000
#: elements of the (Q_chunk, N) key matrix per coarse torch chunk
_COARSE_ELEMENTS = 8_000_000


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _as_tensor64(x: ArrayLike) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


class _Prepared:
    """float64 views of a set of points used by the search.

    ``ball``: (n, d) ball coordinates (Euclidean: the points), ``lam``: (n,)
    ``1 - c |p|^2`` computed without cancellation, ``coarse``: (n, D) the
    vectors the coarse search multiplies (hyperboloid coordinates).
    """

    def __init__(self, x: Tensor, kind: str, c: float):
        if x.dim() != 2:
            raise ValueError(f"points must be (N, D), got shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("points contain NaN or Inf")
        self.kind = kind
        if kind == "euclidean":
            self.ball = x
            self.lam = None
            self.coarse = x
            return
        K = 1.0 / c
        sk = math.sqrt(K)
        if kind == "lorentz":
            if x.shape[1] < 2:
                raise ValueError("Lorentz points need D >= 2 coordinates (time + space)")
            xs = x[:, 1:]
            x0 = torch.sqrt(K + (xs * xs).sum(-1))                  # re-projected time coordinate
            self.ball = sk * xs / (x0 + sk)[:, None]
            self.lam = 2.0 * sk / (x0 + sk)                          # 1 - c |p|^2, exact form
            self.coarse = torch.cat([x0[:, None], xs], dim=1)
        else:  # poincare
            limit = (1.0 - 2.0 ** -24) / math.sqrt(c)
            norm = x.norm(dim=-1, keepdim=True)
            x = torch.where(norm > limit, x * (limit / norm.clamp_min(1e-300)), x)
            self.ball = x
            lam = 1.0 - c * (x * x).sum(-1)
            self.lam = lam
            # hyperboloid coordinates from the ball (radius sqrt(K)):
            # x0 = sqrt(K) (K + |y|^2) / (K - |y|^2) = sqrt(K) (2 - lam) / lam, xs = 2 y / lam
            self.coarse = torch.cat([(sk * (2.0 - lam) / lam)[:, None], 2.0 * x / lam[:, None]], dim=1)

    def subset(self, idx: Tensor) -> "_Prepared":
        out = _Prepared.__new__(_Prepared)
        out.kind, out.ball, out.coarse = self.kind, self.ball[idx], self.coarse[idx]
        out.lam = None if self.lam is None else self.lam[idx]
        return out

    @property
    def time(self) -> Tensor:
        return self.coarse[:, 0]

    def norms(self) -> Tensor:
        return self.coarse.norm(dim=-1)


class HyperbolicIndex:
    """Exact k-nearest-neighbour index by geodesic distance.

    Args:
        points: (N, D) points on ``manifold`` (ball coordinates for Poincaré,
            (N, d + 1) hyperboloid coordinates for Lorentz); tensor or array,
            any float dtype (stored as float64).
        manifold: a geoopt manifold from :func:`hgraph.manifolds.make_manifold`.
        use_faiss: ``None`` = faiss when importable, else torch; ``True`` =
            require faiss (ImportError if missing); ``False`` = torch only.
        margin: extra candidates fetched before exact re-ranking
            (default ``max(16, k)``).

    After each :meth:`search`, :attr:`stats` holds ``rounds`` (coarse searches
    run), ``widened`` (queries whose certificate failed at least once) and
    ``max_candidates``.
    """

    def __init__(self, points: ArrayLike, manifold, use_faiss: Optional[bool] = None,
                 margin: Optional[int] = None):
        self.manifold = manifold
        self.kind = M.kind(manifold)
        self.curvature = M.curvature_of(manifold)
        x = _as_tensor64(points)
        self._db = _Prepared(x, self.kind, self.curvature)
        self.num_points = int(x.shape[0])
        self.dim = int(x.shape[1])
        if use_faiss is None:
            use_faiss = faiss_available()
        elif use_faiss and not faiss_available():
            raise ImportError("faiss is not installed (pip install faiss-cpu, or pass use_faiss=False)")
        self.backend = "faiss" if use_faiss else "torch"
        self.margin = margin
        self.stats: dict = {}
        # largest coarse-vector size and time coordinate (error bounds are capped by them)
        self._max_norm = float(self._db.norms().max()) if self.num_points else 0.0
        self._max_time = float(self._db.time.abs().max()) if self.num_points else 0.0
        self._faiss_index = None
        if self.backend == "faiss" and self.num_points:
            self._faiss_index = self._build_faiss()

    def __len__(self) -> int:
        return self.num_points

    def __repr__(self) -> str:
        return (f"HyperbolicIndex(num_points={self.num_points}, dim={self.dim}, "
                f"kind={self.kind!r}, curvature={self.curvature:g}, backend={self.backend!r})")

    # ------------------------------------------------------------ coarse
    def _build_faiss(self):
        import faiss
        v = self._db.coarse.clone()
        if self.kind == "euclidean":
            index = faiss.IndexFlatL2(v.shape[1])
        else:
            v[:, 0] = -v[:, 0]        # y~ = (-y0, ys): x . y~ = <x, y>_L
            index = faiss.IndexFlatIP(v.shape[1])
        index.add(np.ascontiguousarray(v.numpy().astype(np.float32)))
        return index

    def _coarse(self, q: _Prepared, m: int) -> Tuple[Tensor, Tensor]:
        """(Q, m) approximate keys (ascending) and ids.  Key: -<q, y>_L (hyperbolic)
        or |q - y|^2 (Euclidean)."""
        if self.backend == "faiss":
            qv = np.ascontiguousarray(q.coarse.numpy().astype(np.float32))
            scores, ids = self._faiss_index.search(qv, m)
            keys = torch.from_numpy(scores.astype(np.float64))
            if self.kind != "euclidean":
                keys = -keys
            return keys, torch.from_numpy(ids.astype(np.int64))
        db = self._db.coarse
        out_k, out_i = [], []
        step = max(1, _COARSE_ELEMENTS // max(1, self.num_points))
        if self.kind == "euclidean":
            db_sq = (db * db).sum(-1)
        else:
            dbt = db.clone()
            dbt[:, 0] = -dbt[:, 0]
        for s in range(0, q.coarse.shape[0], step):
            qc = q.coarse[s:s + step]
            if self.kind == "euclidean":
                keys = (qc * qc).sum(-1, keepdim=True) + db_sq[None, :] - 2.0 * (qc @ db.T)
            else:
                keys = -(qc @ dbt.T)
            kk, ii = torch.topk(keys, m, dim=1, largest=False, sorted=True)
            out_k.append(kk)
            out_i.append(ii)
        return torch.cat(out_k), torch.cat(out_i)

    # ------------------------------------------------------------ exact
    def _exact_t(self, q: _Prepared, qi: Tensor, ids: Tensor) -> Tensor:
        """Exact "key" per candidate, (Q, m) float64: t with d = arcosh(1 + t)/sqrt(c)
        (hyperbolic) or the squared distance (Euclidean)."""
        qn, m = ids.shape
        d = self._db.ball.shape[1]
        step = max(1, _RERANK_ELEMENTS // max(1, m * d))
        out = []
        for s in range(0, qn, step):
            sl = slice(s, s + step)
            cand = self._db.ball[ids[sl]]                              # (b, m, d)
            diff = cand - q.ball[qi[sl]][:, None, :]
            sq = (diff * diff).sum(-1)                                 # (b, m)
            if self.kind == "euclidean":
                out.append(sq)
            else:
                c = self.curvature
                lam = self._db.lam[ids[sl]] * q.lam[qi[sl]][:, None]
                out.append(2.0 * c * sq / lam)
        return torch.cat(out) if out else torch.empty(0, m, dtype=torch.float64)

    def _t_to_dist(self, t: Tensor) -> Tensor:
        if self.kind == "euclidean":
            return t.clamp_min(0.0).sqrt()
        t = t.clamp_min(0.0)
        return torch.log1p(t + torch.sqrt(t * (t + 2.0))) / math.sqrt(self.curvature)

    def _t_to_key(self, t: Tensor) -> Tensor:
        """Exact key in the coarse search's units: K (1 + t) or |q - y|^2."""
        if self.kind == "euclidean":
            return t
        return (1.0 + t) / self.curvature

    def _error_bound(self, q: _Prepared, qi: Tensor, S: Tensor, u: float) -> Tensor:
        """Bound on |coarse key - exact key| for any point whose exact key <= S."""
        C = 2.0 * (self._db.coarse.shape[1] + 4)        # the docstring's C is 2 * this
        if self.kind == "euclidean":
            qn = q.coarse[qi].norm(dim=-1)
            ymax = torch.clamp(qn + S.clamp_min(0).sqrt(), max=self._max_norm)
            return C * u * (qn + ymax) ** 2
        c = self.curvature
        sk = 1.0 / math.sqrt(c)                         # sqrt(K)
        q0 = q.time[qi]
        a = torch.acosh((q0 / sk).clamp_min(1.0))     # r_q / sqrt(K)
        b = torch.acosh((S * c).clamp_min(1.0))       # d_S / sqrt(K)
        y0 = torch.clamp(sk * torch.cosh(torch.clamp(a + b, max=700.0)), max=self._max_time)
        # |coarse key error| <= C u (|q0| y0 + |qs| |ys|) <= 2 C u q0 y0
        return 2.0 * C * u * q0 * y0

    # ------------------------------------------------------------ search
    def search(self, queries: ArrayLike, k: int,
               exclude_self_ids: Optional[ArrayLike] = None) -> Tuple[Tensor, Tensor]:
        """k nearest stored points of each query.

        Args:
            queries: (Q, D) points in the same model and coordinates as the
                stored points.
            k: number of neighbours.
            exclude_self_ids: optional (Q,) ids, one per query, never returned
                for that query (pass ``arange(Q)`` to query the stored points
                against themselves); ``-1`` excludes nothing.

        Returns:
            ``(dist, ids)``: (Q, k) float64 exact distances, ascending, and
            (Q, k) int64 ids; ties are ordered by id.
        """
        q = _as_tensor64(queries)
        if q.dim() == 1:
            q = q[None]
        if q.dim() != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must be (Q, {self.dim}), got shape {tuple(q.shape)}")
        nq = q.shape[0]
        excl = None
        if exclude_self_ids is not None:
            excl = torch.as_tensor(np.asarray(exclude_self_ids), dtype=torch.int64).reshape(-1)
            if excl.shape[0] != nq:
                raise ValueError(f"exclude_self_ids must have one id per query ({nq}), got {excl.shape[0]}")
        available = self.num_points - (1 if excl is not None else 0)
        if not 1 <= k <= max(available, 0):
            raise ValueError(f"k must be in 1..{available} for an index of {self.num_points} points, got {k}")
        qp = _Prepared(q, self.kind, self.curvature)
        u = _UNIT_ROUNDOFF[self.backend]
        margin = self.margin if self.margin is not None else max(16, k)
        m = min(self.num_points, k + margin + (1 if excl is not None else 0))

        out_d = torch.empty(nq, k, dtype=torch.float64)
        out_i = torch.empty(nq, k, dtype=torch.int64)
        pending = torch.arange(nq)
        rounds = 0
        widened = torch.zeros(nq, dtype=torch.bool)
        max_m = m
        while pending.numel():
            rounds += 1
            max_m = max(max_m, m)
            sub = qp.subset(pending)
            keys, ids = self._coarse(sub, m)
            local = torch.arange(pending.numel())
            t = self._exact_t(sub, local, ids)
            if excl is not None:
                t = torch.where(ids == excl[pending][:, None], torch.full_like(t, math.inf), t)
            # order by (exact t, id): sort by id first, then stable sort by t
            o = torch.argsort(ids, dim=1)
            ids_s, t_s = ids.gather(1, o), t.gather(1, o)
            o2 = torch.argsort(t_s, dim=1, stable=True)
            ids_s, t_s = ids_s.gather(1, o2)[:, :k], t_s.gather(1, o2)[:, :k]
            if m >= self.num_points:
                ok = torch.ones(pending.numel(), dtype=torch.bool)
            else:
                S = self._t_to_key(t_s[:, -1])
                S = S * (1.0 + 1e-12) + 1e-300                    # float64 slack of the exact key
                tau = keys.max(dim=1).values                      # largest retrieved coarse key
                ok = torch.isfinite(S) & (tau >= S + self._error_bound(sub, local, S, u))
            done = pending[ok]
            out_d[done] = self._t_to_dist(t_s[ok])
            out_i[done] = ids_s[ok]
            widened[pending[~ok]] = True
            pending = pending[~ok]
            m = min(self.num_points, 4 * m)
        self.stats = {"rounds": rounds, "widened": int(widened.sum()), "max_candidates": max_m,
                      "backend": self.backend}
        return out_d, out_i


# ------------------------------------------------------------------ helpers
def search_index(emb: Embeddings, use_faiss: Optional[bool] = None) -> "HyperbolicIndex":
    """A :class:`HyperbolicIndex` over ``emb.points``, built once per faiss choice
    and cached on ``emb``."""
    if use_faiss not in emb._search:
        emb._search[use_faiss] = HyperbolicIndex(emb.points, emb.manifold, use_faiss=use_faiss)
    return emb._search[use_faiss]


def _embeddings(run_or_embeddings) -> Embeddings:
    if isinstance(run_or_embeddings, Embeddings):
        return run_or_embeddings
    if isinstance(run_or_embeddings, (str, Path)):
        return load_embeddings(run_or_embeddings)
    raise TypeError("expected a run directory or an Embeddings object, got "
                    f"{type(run_or_embeddings).__name__}")


def nearest(run_or_embeddings, node: Union[int, str], k: int = 10,
            use_faiss: Optional[bool] = None) -> List[Tuple[str, float, int]]:
    """The k categories nearest to ``node``, the node itself excluded.

    Args:
        run_or_embeddings: a run directory written by
            :func:`hgraph.export.save_embeddings`, or an ``Embeddings``.
        node: an id (int) or a name; a string that is not a name but is an
            integer is taken as an id.
        k: number of neighbours (capped at N - 1).

    Returns: ``[(name, distance, level), ...]`` nearest first.
    Raises: :class:`hgraph.errors.HGraphInputError` for an unknown node.
    """
    emb = _embeddings(run_or_embeddings)
    i = emb.id_of(node)
    k = min(int(k), len(emb) - 1)
    if k < 1:
        return []
    index = search_index(emb, use_faiss)
    d, ids = index.search(emb.points[i:i + 1], k, exclude_self_ids=[i])
    return [(emb.names[j], float(dd), int(emb.levels[j])) for dd, j in zip(d[0].tolist(), ids[0].tolist())]


def nearest_to_vector(points: ArrayLike, run_or_embeddings, k: int = 10,
                      query_kind: Optional[str] = None,
                      use_faiss: Optional[bool] = None) -> List[List[Tuple[str, float, int]]]:
    """The k stored categories nearest to each of some new points.

    For points produced by an encoder from new features (inductive nodes).

    Args:
        points: (Q, D) or (D,) points.  By default they must be in the same
            model as the stored embeddings; ``query_kind='poincare'`` or
            ``'lorentz'`` converts them (at the stored curvature) first.
        run_or_embeddings: a run directory or an ``Embeddings``.

    Returns: one list of ``(name, distance, level)`` per query, nearest first.
    """
    emb = _embeddings(run_or_embeddings)
    q = _as_tensor64(points)
    if q.dim() == 1:
        q = q[None]
    if query_kind is not None and query_kind != emb.kind:
        K = 1.0 / emb.curvature if emb.curvature > 0 else 1.0
        if query_kind == "poincare" and emb.kind == "lorentz":
            q = M.poincare_to_lorentz(q, K)
        elif query_kind == "lorentz" and emb.kind == "poincare":
            q = M.lorentz_to_poincare(q, K)
        else:
            raise ValueError(f"cannot convert {query_kind} points to {emb.kind} embeddings")
    k = min(int(k), len(emb))
    index = search_index(emb, use_faiss)
    d, ids = index.search(q, k)
    return [[(emb.names[j], float(dd), int(emb.levels[j])) for dd, j in zip(dr, ir)]
            for dr, ir in zip(d.tolist(), ids.tolist())]


__all__ = ["HyperbolicIndex", "nearest", "nearest_to_vector", "faiss_available"]
