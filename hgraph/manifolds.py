"""Manifolds: a registry over geoopt, plus what geoopt lacks.

geoopt supplies the manifolds (``PoincareBall``, ``Lorentz``, ``Euclidean``),
their exp/log maps, projections and elementwise distances, and the Riemannian
optimisers.  This module adds only:

* :data:`MANIFOLDS` — the registry the CLI's ``--manifold`` choices come from;
* :func:`pairwise_dist` — an (n, m) distance matrix by one matmul per chunk.
  Broadcasting ``manifold.dist(x[:, None], y[None])`` materialises
  (n, m, d) tensors and runs out of memory at 80k nodes, so this is
  hand-written;
* :func:`expmap0` — geoopt's ``expmap0`` behind a tangent-norm clip so that
  inputs of any scale (norm 1e6) land on the manifold without Inf/NaN;
* :func:`to_poincare` / :func:`lorentz_to_poincare` /
  :func:`poincare_to_lorentz` — the isometry between the two models;
* the numerical guards, all here: :data:`EPS`, :data:`MAX_TANGENT_NORM`;
* :func:`reproducible_execution` — geoopt's TorchScript maths giving the same
  bits whatever the process computed before (resume, several seeds).

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
from torch.autograd.function import once_differentiable

Tensor = torch.Tensor

# --------------------------------------------------------------- guards
#: smallest argument of arcosh(1 + t) (keeps the gradient 1/sqrt(t(t+2)) finite)
EPS: Dict[torch.dtype, float] = {torch.float16: 1e-4, torch.bfloat16: 1e-4,
                                 torch.float32: 1e-10, torch.float64: 1e-20}
#: largest tangent-vector norm fed to expmap0.  Beyond it tanh saturates on the
#: ball (so nothing is lost) and cosh overflows on the hyperboloid; the point
#: at this distance from the origin is already at the float boundary.
MAX_TANGENT_NORM: Dict[torch.dtype, float] = {torch.float16: 5.0, torch.bfloat16: 5.0,
                                              torch.float32: 15.0, torch.float64: 30.0}


#: closest approach to the ball's boundary, relative (geoopt's projx uses the same)
BOUNDARY_EPS: Dict[torch.dtype, float] = {torch.float16: 1e-3, torch.bfloat16: 1e-3,
                                          torch.float32: 4e-3, torch.float64: 1e-5}


def eps(dtype: torch.dtype) -> float:
    return EPS.get(dtype, 1e-10)


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
    ball = geoopt.PoincareBall(c=min(curvature, 20.0), learnable=learnable)
    if curvature > 20.0:
        with torch.no_grad():
            ball.isp_c.fill_(curvature + math.log1p(-math.exp(-curvature)))
    return ball


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


# --------------------------------------------------------------- maps
def expmap0(manifold: geoopt.Manifold, u: Tensor) -> Tensor:
    """Map tangent vectors at the origin onto the manifold, for any input scale.

    ``u``: (..., d) Euclidean vectors.  For the Lorentz model the output is
    (..., d + 1) (a zero time coordinate is implied).  The tangent norm is
    clipped by rescaling (direction and gradients stay finite) to
    :data:`MAX_TANGENT_NORM` in units of the curvature radius — ``sqrt(k)`` on
    the hyperboloid, so cosh never overflows whatever the curvature, and
    ``1 / (2 sqrt(c))`` on the ball, where tanh has long saturated.

    Closed forms rather than geoopt's ``expmap0``: the same maths, but
    geoopt's general Möbius-gyrovector path costs ~7x more forward+backward
    on (80k, 64) tensors, which dominated HGCN's step time, and its
    hyperboloid clamps lose small vectors in float32.
    ball:        x = tanh(sqrt(c)|u|) u / (sqrt(c)|u|)
    hyperboloid: x = (sqrt(k) cosh(|u|/sqrt(k)), sqrt(k) sinh(|u|/sqrt(k)) u/|u|)
    """
    k = kind(manifold)
    if k == "euclidean":
        return u
    cap = MAX_TANGENT_NORM.get(u.dtype, 15.0)
    tiny = eps(u.dtype)
    norm = u.norm(dim=-1, keepdim=True).clamp_min(tiny)
    if k == "poincare":
        # tanh saturates long before the cap; capping sqrt(c)|u| keeps the
        # gradient of the rescaling finite for inputs of any scale
        sc = manifold.c.to(u).sqrt()
        n = norm.clamp_max(cap / (2.0 * sc))
        x = torch.tanh(sc * n) * (u / (sc * norm))
        return manifold.projx(x)
    sk = manifold.k.to(u).sqrt()
    n = norm.clamp_max(cap * sk)
    x0 = sk * torch.cosh(n / sk)
    xs = sk * torch.sinh(n / sk) * (u / norm)
    return torch.cat([x0, xs], dim=-1)


def logmap0(manifold: geoopt.Manifold, x: Tensor) -> Tensor:
    """Inverse of :func:`expmap0`: (..., D) points -> (..., d) tangent vectors.

    ball:        u = artanh(sqrt(c)|x|) x / (sqrt(c)|x|)
    hyperboloid: u = sqrt(k) asinh(|x_s|/sqrt(k)) x_s / |x_s|   (exact for
                 small |x_s|, unlike arcosh(x0/sqrt(k)) in float32)
    """
    k = kind(manifold)
    if k == "euclidean":
        return x
    tiny = eps(x.dtype)
    if k == "poincare":
        sc = manifold.c.to(x).sqrt()
        n = x.norm(dim=-1, keepdim=True).clamp_min(tiny)
        # points are kept inside the ball by projx; the clamp guards artanh(1)
        z = (sc * n).clamp_max(1.0 - BOUNDARY_EPS.get(x.dtype, 1e-5))
        return torch.atanh(z) * (x / (sc * n))
    sk = manifold.k.to(x).sqrt()
    xs = x[..., 1:]
    n = xs.norm(dim=-1, keepdim=True).clamp_min(tiny)
    return sk * torch.asinh(n / sk) * (xs / n)


def origin(manifold: geoopt.Manifold, dim: int, dtype=None, device=None) -> Tensor:
    """The origin as a (D,) point (D = dim + 1 on the hyperboloid)."""
    k = kind(manifold)
    d = ambient_dim(k, dim)
    o = torch.zeros(d, dtype=dtype, device=device)
    if k == "lorentz":
        o[0] = manifold.k.detach().sqrt().to(o)
    return o


def dist0(manifold: geoopt.Manifold, x: Tensor) -> Tensor:
    """(...,) distance of each point from the origin.

    hyperboloid: ``sqrt(k) asinh(|x_s| / sqrt(k))``, the norm of :func:`logmap0`.
    geoopt's ``sqrt(k) arcosh(x0 / sqrt(k))`` goes negative near the origin in
    float32 (``x0`` rounds below ``sqrt(k)`` and its clamp lets ``arcosh`` of
    a number below 1 through) and loses every digit of small distances.
    """
    k = kind(manifold)
    if k == "euclidean":
        return x.norm(dim=-1)
    if k == "lorentz":
        sk = manifold.k.to(x).sqrt()
        return sk * torch.asinh(x[..., 1:].norm(dim=-1) / sk)
    return manifold.dist0(x)


def dist(manifold: geoopt.Manifold, x: Tensor, y: Tensor) -> Tensor:
    """Elementwise geodesic distance, broadcasting over leading dims: (...,).

    Same closed forms as :func:`pairwise_dist` (arcosh of the ball's or the
    hyperboloid's invariant), so training losses and evaluation rank with one
    formula.  geoopt's ball distance goes through Möbius addition and artanh,
    which loses several digits within 1e-3 of the boundary where trained
    embeddings live; the arcosh form keeps them (tested against geoopt away
    from the boundary and against float64 near it).
    """
    k = kind(manifold)
    if k == "euclidean":
        return (x - y).norm(dim=-1)
    if k == "poincare":
        c = manifold.c.to(x)
        if not c.requires_grad:
            return _PoincareDist.apply(x, y, c)
        return _poincare_dist(x, y, c)
    kk = manifold.k.to(x)
    inner = -x[..., 0] * y[..., 0] + (x[..., 1:] * y[..., 1:]).sum(-1)
    return kk.sqrt() * _arcosh1p(-inner / kk - 1.0)


def _poincare_dist(x: Tensor, y: Tensor, c: Tensor) -> Tensor:
    """The ball's distance by autograd-traceable ops (learnable ``c``; the reference
    the closed-form backward of :class:`_PoincareDist` is tested against)."""
    diff = ((x - y) ** 2).sum(-1)
    denom = ((1.0 - c * (x * x).sum(-1)) * (1.0 - c * (y * y).sum(-1))).clamp_min(eps(x.dtype))
    return _arcosh1p(2.0 * c * diff / denom) / c.sqrt()


class _PoincareDist(torch.autograd.Function):
    """:func:`_poincare_dist` with a closed-form backward (fixed curvature).

    Every training loss is a function of these distances, and autograd over
    the formula records about 40 elementwise ops on (B, K, D) tensors; on CPU
    that was most of a shallow step's forward + backward (12 ms of 57 ms at
    1024 pairs x 10 negatives, WordNet nouns).  With ``t = 2c|x-y|^2 / (ab)``,
    ``a = 1 - c|x|^2``, ``b = 1 - c|y|^2``, ``d = arcosh(1 + t) / sqrt(c)``::

        dd/dx = G (diff + (c|x-y|^2 / a) x),   dd/dy = G (-diff + (c|x-y|^2 / b) y),
        G = 4c / (ab sqrt(c) sqrt(t (t + 2))),  diff = x - y

    which is 4 elementwise ops on the (B, K, D) tensors.  The clamps of the
    forward zero the same terms autograd zeroes (``t`` below eps: no gradient;
    ``ab`` below eps: no gradient through the conformal factors).  Broadcast
    inputs get their gradient summed back to their shape.  Tested against
    autograd over :func:`_poincare_dist` (float32, float64, gradcheck).
    """

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, c: Tensor) -> Tensor:
        e = eps(x.dtype)
        diff = x - y
        d2 = (diff * diff).sum(-1)
        a = 1.0 - c * (x * x).sum(-1)
        b = 1.0 - c * (y * y).sum(-1)
        ab_raw = a * b
        ab = ab_raw.clamp_min(e)
        t_raw = 2.0 * c * d2 / ab
        t = t_raw.clamp_min(e)
        sq = torch.sqrt(t * (t + 2.0))
        ctx.save_for_backward(x, y, c, diff, d2, a, b, ab, sq,
                              t_raw >= e, ab_raw >= e)
        return torch.log1p(t + sq) / c.sqrt()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        x, y, c, diff, d2, a, b, ab, sq, t_live, ab_live = ctx.saved_tensors
        # dL/dt, zero where the forward clamped t
        g = torch.where(t_live, grad / (c.sqrt() * sq), grad.new_zeros(()))
        s = g * (4.0 * c / ab)                                    # coefficient of diff
        r = torch.where(ab_live, s * c * d2 / ab, s.new_zeros(()))  # conformal-factor terms
        sd = s.unsqueeze(-1) * diff
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = torch.addcmul(sd, (r * b).unsqueeze(-1), x)
            if gx.shape != x.shape:
                gx = gx.sum_to_size(x.shape)
        if ctx.needs_input_grad[1]:
            gy = torch.addcmul(-sd, (r * a).unsqueeze(-1), y)
            if gy.shape != y.shape:
                gy = gy.sum_to_size(y.shape)
        return gx, gy, None


def _arcosh1p(t: Tensor) -> Tensor:
    """arcosh(1 + t) for t >= 0, stable near 0 and for large t."""
    t = t.clamp_min(eps(t.dtype))
    return torch.log1p(t + torch.sqrt(t * (t + 2.0)))


def _pairwise_block(manifold: geoopt.Manifold, x: Tensor, y: Tensor,
                    y_sq: Optional[Tensor]) -> Tensor:
    k = kind(manifold)
    if k == "euclidean":
        return torch.cdist(x, y)
    if k == "poincare":
        c = manifold.c.to(x)
        x_sq = (x * x).sum(-1, keepdim=True)                   # (n, 1)
        ysq = (y * y).sum(-1) if y_sq is None else y_sq        # (m,)
        diff = (x_sq + ysq[None, :] - 2.0 * (x @ y.T)).clamp_min(0.0)
        denom = ((1.0 - c * x_sq) * (1.0 - c * ysq[None, :])).clamp_min(eps(x.dtype))
        return _arcosh1p(2.0 * c * diff / denom) / c.sqrt()
    # lorentz: d = sqrt(k) arcosh(-<x, y>_L / k)
    kk = manifold.k.to(x)
    xs = x.clone()
    xs[..., 0] = -xs[..., 0]
    t = -(xs @ y.T) / kk - 1.0
    return kk.sqrt() * _arcosh1p(t)


def pairwise_dist(manifold: geoopt.Manifold, x: Tensor, y: Optional[Tensor] = None,
                  chunk: Optional[int] = None) -> Tensor:
    """Geodesic distance matrix.

    ``x``: (n, D), ``y``: (m, D) (defaults to ``x``).  Returns (n, m).  Work is
    one matmul per block of ``chunk`` rows of ``x`` (all rows at once when
    ``chunk`` is None), so memory is O(chunk * m), never O(n * m * D).
    """
    y = x if y is None else y
    y_sq = (y * y).sum(-1) if kind(manifold) == "poincare" else None
    if chunk is None or chunk >= x.shape[0]:
        return _pairwise_block(manifold, x, y, y_sq)
    return torch.cat([_pairwise_block(manifold, x[i:i + chunk], y, y_sq)
                      for i in range(0, x.shape[0], chunk)])


# --------------------------------------------------------------- model maps
def lorentz_to_poincare(x: Tensor, k: Tensor | float = 1.0) -> Tensor:
    """Hyperboloid (..., d+1) -> ball (..., d) of radius sqrt(k) (curvature -1/k)."""
    sk = torch.as_tensor(k, dtype=x.dtype, device=x.device).sqrt()
    return sk * x[..., 1:] / (x[..., :1] + sk)


def poincare_to_lorentz(y: Tensor, k: Tensor | float = 1.0) -> Tensor:
    """Ball of radius sqrt(k) (..., d) -> hyperboloid (..., d+1); inverse of the above."""
    kk = torch.as_tensor(k, dtype=y.dtype, device=y.device)
    sq = (y * y).sum(-1, keepdim=True)
    denom = (kk - sq).clamp_min(eps(y.dtype))
    x0 = kk.sqrt() * (kk + sq) / denom
    xs = 2.0 * kk * y / denom
    return torch.cat([x0, xs], dim=-1)


def to_poincare(manifold: geoopt.Manifold, x: Tensor) -> Tensor:
    """Points of any registered manifold as coordinates in a Poincaré ball.

    Lorentz points map to the ball of the same curvature; Poincaré points are
    returned as they are; Euclidean points are returned unchanged.
    """
    if kind(manifold) == "lorentz":
        return lorentz_to_poincare(x, manifold.k.detach())
    return x


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
