"""Manifolds: a registry over geoopt, plus what geoopt lacks.

geoopt supplies the manifolds (``PoincareBall``, ``Lorentz``, ``Euclidean``),
their projections, Möbius addition, exp/log maps at any point and the
Riemannian optimisers.  This package adds only:

* :data:`MANIFOLDS` — the registry the CLI's ``--manifold`` choices come from;
* the formulas hgraph writes itself, as pure functions of tensors per model:
  :mod:`.ball`, :mod:`.lorentz`, :mod:`.euclidean` (the shape of geoopt's
  ``manifolds/stereographic/math.py``), with every numerical guard in
  :mod:`.guards`;
* thin functions over a manifold object that dispatch once to those models
  (:func:`expmap0`, :func:`logmap0`, :func:`dist`, :func:`dist0`,
  :func:`pairwise_dist`, :func:`expmap_at`, :func:`to_poincare`, ...);
* :func:`reproducible_execution` — geoopt's TorchScript maths giving the same
  bits whatever the process computed before (resume, several seeds).

Why hand-written at all: :func:`pairwise_dist` is an (n, m) distance matrix by
one matmul per chunk (broadcasting ``manifold.dist(x[:, None], y[None])``
materialises (n, m, d) tensors and runs out of memory at 80k nodes);
:func:`expmap0` clips the tangent norm so inputs of any scale (norm 1e6) land
on the manifold without Inf/NaN, and is ~7x cheaper than geoopt's general
path; the ball distance keeps the digits geoopt's Möbius form loses near the
boundary.

Curvature convention: ``curvature`` is the positive number ``c`` with
sectional curvature ``-c``.  geoopt's ``PoincareBall(c)`` uses it directly;
geoopt's ``Lorentz(k)`` has ``k = 1 / c``.
"""
from __future__ import annotations

import contextlib
import math
import sys
from typing import Callable, Dict, Iterator, List, Optional

import geoopt
import torch
import torch.nn.functional as F

from hgraph.manifolds import ball, euclidean, lorentz
# the guards, re-exported: callers read them as hgraph.manifolds.EPS etc.
from hgraph.manifolds.guards import (BOUNDARY_EPS, EPS, MAX_TANGENT_NORM,  # noqa: F401
                                     arcosh1p, eps, max_tangent_norm)

Tensor = torch.Tensor

#: the closed-form ball distance and its autograd reference (tests compare them)
_PoincareDist = ball.PoincareDist
_poincare_dist = ball.dist_traceable
#: Lorentz <-> Poincaré isometry
lorentz_to_poincare = lorentz.to_poincare
poincare_to_lorentz = ball.to_lorentz


class LearnableLorentz(geoopt.Lorentz):
    """geoopt's Lorentz with ``k = softplus(raw)`` so a learned k stays positive.

    geoopt's ``Lorentz(learnable=True)`` optimises ``k`` unconstrained and can
    step it to zero or below; ``PoincareBall(learnable=True)`` already uses a
    softplus, and this mirrors it.
    """

    def __init__(self, k: float = 1.0):
        super().__init__(k=k, learnable=False)
        del self._parameters["k"]
        raw = math.log(math.expm1(k)) if k < 20 else k
        self.raw_k = torch.nn.Parameter(torch.tensor(raw, dtype=torch.get_default_dtype()))

    @property
    def k(self) -> Tensor:  # type: ignore[override]
        return F.softplus(self.raw_k)


def make_poincare(curvature: float = 1.0, learnable: bool = False) -> geoopt.Manifold:
    """geoopt's PoincareBall.  It stores c as softplus(raw) with raw = log(expm1(c)),
    which overflows for c > ~88; there raw = c + log1p(-exp(-c)) is set directly."""
    m = geoopt.PoincareBall(c=min(curvature, 20.0), learnable=learnable)
    if curvature > 20.0:
        with torch.no_grad():
            m.isp_c.fill_(curvature + math.log1p(-math.exp(-curvature)))
    return m


def make_lorentz(curvature: float = 1.0, learnable: bool = False) -> geoopt.Manifold:
    if learnable:
        return LearnableLorentz(k=1.0 / curvature)
    return geoopt.Lorentz(k=1.0 / curvature, learnable=False)


def make_euclidean(curvature: float = 0.0, learnable: bool = False) -> geoopt.Manifold:
    return geoopt.Euclidean(ndim=1)


#: name -> factory(curvature, learnable) -> geoopt manifold
MANIFOLDS: Dict[str, Callable[..., geoopt.Manifold]] = {
    "poincare": make_poincare,
    "lorentz": make_lorentz,
    "euclidean": make_euclidean,
}


def make_manifold(name: str, curvature: float = 1.0, learnable: bool = False) -> geoopt.Manifold:
    """Build a manifold from the registry; raises ValueError on an unknown name."""
    try:
        factory = MANIFOLDS[name]
    except KeyError:
        raise ValueError(f"unknown manifold {name!r}; choose from {sorted(MANIFOLDS)}") from None
    if name != "euclidean" and not curvature > 0:
        raise ValueError(f"curvature must be > 0 for {name}, got {curvature}")
    return factory(curvature=curvature, learnable=learnable)


def kind(manifold: geoopt.Manifold) -> str:
    """'poincare' | 'lorentz' | 'euclidean' for a manifold object."""
    if isinstance(manifold, geoopt.Lorentz):
        return "lorentz"
    if isinstance(manifold, geoopt.Stereographic):
        return "poincare"
    if isinstance(manifold, geoopt.Euclidean):
        return "euclidean"
    raise TypeError(f"unsupported manifold {type(manifold).__name__}")


def ambient_dim(name: str, dim: int) -> int:
    """Size of the coordinate vector for an intrinsic dimension ``dim``."""
    return dim + 1 if name == "lorentz" else dim


def curvature_of(manifold: geoopt.Manifold) -> float:
    """Positive c (curvature -c); 0 for Euclidean."""
    k = kind(manifold)
    if k == "poincare":
        return float(manifold.c.detach())
    if k == "lorentz":
        return float(1.0 / manifold.k.detach())
    return 0.0


# --------------------------------------------------------------- dispatch
class _BallOps:
    """The ball's operations on a geoopt ``PoincareBall``: ``c`` handed to
    :mod:`.ball` in the points' dtype and device; geoopt where it suffices."""

    @staticmethod
    def expmap0(m, u):
        return m.projx(ball.expmap0(u, m.c.to(u)))

    @staticmethod
    def logmap0(m, x):
        return ball.logmap0(x, m.c.to(x))

    @staticmethod
    def dist0(m, x):
        return m.dist0(x)

    @staticmethod
    def dist(m, x, y):
        return ball.dist(x, y, m.c.to(x))

    @staticmethod
    def pairwise_block(m, y):
        y_sq = (y * y).sum(-1)
        return lambda a: ball.pairwise(a, y, m.c.to(a), y_sq)

    @staticmethod
    def expmap_at(m, x, v):
        # geoopt's tanh saturates on the ball: no clip needed
        return m.projx(m.expmap(x, v))

    @staticmethod
    def logmap(m, x, y):
        return m.logmap(x, y)

    @staticmethod
    def project(m, x):
        return m.projx(x)

    @staticmethod
    def to_poincare(m, x):
        return x


class _LorentzOps:
    """The hyperboloid's operations on a geoopt ``Lorentz``: ``k`` handed to
    :mod:`.lorentz` in the points' dtype and device."""

    @staticmethod
    def expmap0(m, u):
        return lorentz.expmap0(u, m.k.to(u))

    @staticmethod
    def logmap0(m, x):
        return lorentz.logmap0(x, m.k.to(x))

    @staticmethod
    def dist0(m, x):
        return lorentz.dist0(x, m.k.to(x))

    @staticmethod
    def dist(m, x, y):
        return lorentz.dist(x, y, m.k.to(x))

    @staticmethod
    def pairwise_block(m, y):
        return lambda a: lorentz.pairwise(a, y, m.k.to(a))

    @staticmethod
    def expmap_at(m, x, v):
        # v onto the tangent space at x, its norm clipped (cosh of more overflows in
        # float32), geoopt's expmap, then back within the clip radius
        v = m.proju(x, v)
        cap = max_tangent_norm(v.dtype) * m.k.to(v).sqrt()
        n = m.norm(v, keepdim=True)
        v = v * torch.clamp(cap / n, max=1.0)
        y = m.expmap(x, v, norm_tan=False, project=False)
        return lorentz.clip(y, m.k.to(y))

    @staticmethod
    def logmap(m, x, y):
        return lorentz.logmap(x, y, m.k.to(x))

    @staticmethod
    def project(m, x):
        return lorentz.clip(x, m.k.to(x))

    @staticmethod
    def to_poincare(m, x):
        return lorentz.to_poincare(x, m.k.detach())


class _EuclideanOps:
    """Flat space: the identity maps and :mod:`.euclidean`."""

    @staticmethod
    def expmap0(m, u):
        return u

    @staticmethod
    def logmap0(m, x):
        return x

    @staticmethod
    def dist0(m, x):
        return euclidean.dist0(x)

    @staticmethod
    def dist(m, x, y):
        return euclidean.dist(x, y)

    @staticmethod
    def pairwise_block(m, y):
        return lambda a: euclidean.pairwise(a, y)

    @staticmethod
    def expmap_at(m, x, v):
        return x + v

    @staticmethod
    def logmap(m, x, y):
        return y - x

    @staticmethod
    def project(m, x):
        return x

    @staticmethod
    def to_poincare(m, x):
        return x


#: kind -> the operations of that model: the one place that dispatches on it
_OPS = {"poincare": _BallOps, "lorentz": _LorentzOps, "euclidean": _EuclideanOps}


def expmap0(manifold: geoopt.Manifold, u: Tensor) -> Tensor:
    """Tangent vectors at the origin (..., d) onto the manifold, for any input
    scale: (..., D), D = d + 1 on the hyperboloid (:func:`ball.expmap0` then
    geoopt's projection; :func:`lorentz.expmap0`; the identity)."""
    return _OPS[kind(manifold)].expmap0(manifold, u)


def logmap0(manifold: geoopt.Manifold, x: Tensor) -> Tensor:
    """Inverse of :func:`expmap0`: (..., D) points -> (..., d) tangent vectors."""
    return _OPS[kind(manifold)].logmap0(manifold, x)


def origin(manifold: geoopt.Manifold, dim: int, dtype=None, device=None) -> Tensor:
    """The origin as a (D,) point (D = dim + 1 on the hyperboloid)."""
    k = kind(manifold)
    o = torch.zeros(ambient_dim(k, dim), dtype=dtype, device=device)
    if k == "lorentz":
        o[0] = manifold.k.detach().sqrt().to(o)
    return o


def dist0(manifold: geoopt.Manifold, x: Tensor) -> Tensor:
    """(...,) distance of each point from the origin (geoopt's on the ball;
    :func:`lorentz.dist0` on the hyperboloid, accurate near the origin)."""
    return _OPS[kind(manifold)].dist0(manifold, x)


def dist(manifold: geoopt.Manifold, x: Tensor, y: Tensor) -> Tensor:
    """Elementwise geodesic distance, broadcasting over leading dims: (...,).

    Same closed forms as :func:`pairwise_dist` (arcosh of the ball's or the
    hyperboloid's invariant), so training losses and evaluation rank with one
    formula.  geoopt's ball distance goes through Möbius addition and artanh,
    which loses several digits within 1e-3 of the boundary where trained
    embeddings live; the arcosh form keeps them (tested against geoopt away
    from the boundary and against float64 near it).
    """
    return _OPS[kind(manifold)].dist(manifold, x, y)


def pairwise_dist(manifold: geoopt.Manifold, x: Tensor, y: Optional[Tensor] = None,
                  chunk: Optional[int] = None) -> Tensor:
    """Geodesic distance matrix.

    ``x``: (n, D), ``y``: (m, D) (defaults to ``x``).  Returns (n, m).  Work is
    one matmul per block of ``chunk`` rows of ``x`` (all rows at once when
    ``chunk`` is None), so memory is O(chunk * m), never O(n * m * D).
    """
    y = x if y is None else y
    block = _OPS[kind(manifold)].pairwise_block(manifold, y)
    if chunk is None or chunk >= x.shape[0]:
        return block(x)
    return torch.cat([block(x[i:i + chunk]) for i in range(0, x.shape[0], chunk)])


def expmap_at(manifold: geoopt.Manifold, x: Tensor, v: Tensor) -> Tensor:
    """``exp_x(v)`` on the manifold; ``x, v``: (N, D) -> (N, D).

    On the hyperboloid ``v`` is projected onto the tangent space at ``x``, its
    Riemannian norm clipped to ``MAX_TANGENT_NORM * sqrt(k)`` (``cosh`` of a
    larger argument overflows in float32), mapped by geoopt's ``expmap`` and
    passed through :func:`lorentz.clip`.  On the ball geoopt's ``tanh``
    saturates, so no clip is needed; in Euclidean space this is ``x + v``.
    """
    return _OPS[kind(manifold)].expmap_at(manifold, x, v)


def logmap(manifold: geoopt.Manifold, x: Tensor, y: Tensor) -> Tensor:
    """``log_x(y)`` (N, D): :func:`lorentz.logmap` on the hyperboloid (geoopt's
    cancels in float32), geoopt's on the ball, ``y - x`` in flat space."""
    return _OPS[kind(manifold)].logmap(manifold, x, y)


def project(manifold: geoopt.Manifold, x: Tensor) -> Tensor:
    """Points onto the manifold: on the hyperboloid also pulled back within
    ``MAX_TANGENT_NORM * sqrt(k)`` of the origin (:func:`lorentz.clip`)."""
    return _OPS[kind(manifold)].project(manifold, x)


def to_poincare(manifold: geoopt.Manifold, x: Tensor) -> Tensor:
    """Points of any registered manifold as coordinates in a Poincaré ball.

    Lorentz points map to the ball of the same curvature; Poincaré points are
    returned as they are; Euclidean points are returned unchanged.
    """
    return _OPS[kind(manifold)].to_poincare(manifold, x)


# --------------------------------------------------------------- execution
def _geoopt_script_functions() -> List[torch.jit.ScriptFunction]:
    """The TorchScript functions of every geoopt module loaded so far."""
    found: Dict[int, torch.jit.ScriptFunction] = {}
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == "geoopt" or name.startswith("geoopt.")):
            continue
        for v in list(vars(mod).values()):
            if isinstance(v, torch.jit.ScriptFunction):
                found[id(v)] = v
    return list(found.values())


def _flush_geoopt_executors() -> None:
    for f in _geoopt_script_functions():
        flush = getattr(f, "_debug_flush_compilation_cache", None)
        if flush is not None:
            flush()


@contextlib.contextmanager
def reproducible_execution() -> Iterator[None]:
    """Within ``with``: geoopt's TorchScript maths computes the same bits on every call.

    geoopt's maths is TorchScript.  Its profiling executor runs a function's
    first calls as recorded and then an optimised graph with its own (symbolic)
    gradients, which rounds differently in the last bits; once built, that graph
    is used even where optimisation is switched off.  Results then depended on
    what the process had computed before: a run resumed in a fresh process
    drifted from the uninterrupted one (1e-8 relative from the first resumed
    step), and an earlier run in the same process changed the next one.  Here
    the executors' caches are dropped on entry and on exit and optimisation is
    off (for this thread), so every call runs the same unoptimised graph.  On
    CPU this costs nothing measurable (TorchScript does not fuse on CPU).
    """
    _flush_geoopt_executors()
    try:
        with torch.jit.optimized_execution(False):
            yield
    finally:
        _flush_geoopt_executors()
