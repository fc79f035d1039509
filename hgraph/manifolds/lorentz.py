"""The hyperboloid ``<x, x>_L = -k`` (curvature ``-1/k``, geoopt's ``Lorentz(k)``):
the formulas hgraph writes itself, as pure functions of tensors.

``k``: a 0-d tensor in the points' dtype and device.  Points are (..., d+1),
time coordinate first; ``<., .>`` is the Minkowski product.  geoopt's
projection (``geoopt.manifolds.lorentz.math.project``) is used as it is; the
closed forms here replace geoopt functions that overflow or cancel in
float32 (reasons in each docstring).  The dispatch from a manifold object is
:mod:`hgraph.manifolds`.  At the end, the unit hyperboloid's (``k = 1``) in-place
row maths of the fused shallow trainer: :func:`inner`, :func:`project_rows`,
:func:`cosh_dist_minus_one`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from geoopt.manifolds.lorentz import math as gmath

from hgraph.manifolds.guards import arcosh1p, eps, max_tangent_norm

Tensor = torch.Tensor


def project(x: Tensor, k: Tensor) -> Tensor:
    """geoopt's projection onto the hyperboloid (time coordinate from the space part)."""
    return gmath.project(x, k=k)


def expmap0(u: Tensor, k: Tensor) -> Tensor:
    """``x = (sqrt(k) cosh(|u|/sqrt(k)), sqrt(k) sinh(|u|/sqrt(k)) u/|u|)`` for (..., d)
    tangent vectors at the origin -> (..., d+1); ``|u|`` capped at
    ``MAX_TANGENT_NORM * sqrt(k)`` so cosh never overflows whatever the
    curvature (geoopt's clamps lose small vectors in float32)."""
    cap = max_tangent_norm(u.dtype)
    norm = u.norm(dim=-1, keepdim=True).clamp_min(eps(u.dtype))
    sk = k.sqrt()
    n = norm.clamp_max(cap * sk)
    x0 = sk * torch.cosh(n / sk)
    xs = sk * torch.sinh(n / sk) * (u / norm)
    return torch.cat([x0, xs], dim=-1)


def logmap0(x: Tensor, k: Tensor) -> Tensor:
    """``u = sqrt(k) asinh(|x_s|/sqrt(k)) x_s / |x_s|`` (exact for small ``|x_s|``,
    unlike ``arcosh(x0/sqrt(k))`` in float32): (..., d+1) -> (..., d)."""
    sk = k.sqrt()
    xs = x[..., 1:]
    n = xs.norm(dim=-1, keepdim=True).clamp_min(eps(x.dtype))
    return sk * torch.asinh(n / sk) * (xs / n)


def dist0(x: Tensor, k: Tensor) -> Tensor:
    """``sqrt(k) asinh(|x_s| / sqrt(k))``, the norm of :func:`logmap0`.  geoopt's
    ``sqrt(k) arcosh(x0 / sqrt(k))`` goes negative near the origin in float32
    and loses every digit of small distances."""
    sk = k.sqrt()
    return sk * torch.asinh(x[..., 1:].norm(dim=-1) / sk)


def dist(x: Tensor, y: Tensor, k: Tensor) -> Tensor:
    """(...,) ``sqrt(k) arcosh(-<x, y> / k)``, elementwise with broadcasting."""
    inner = -x[..., 0] * y[..., 0] + (x[..., 1:] * y[..., 1:]).sum(-1)
    return k.sqrt() * arcosh1p(-inner / k - 1.0)


def pairwise(x: Tensor, y: Tensor, k: Tensor) -> Tensor:
    """(n, m) distances of (n, d+1) and (m, d+1) points by one matmul."""
    xs = x.clone()
    xs[..., 0] = -xs[..., 0]
    t = -(xs @ y.T) / k - 1.0
    return k.sqrt() * arcosh1p(t)


def to_poincare(x: Tensor, k=1.0) -> Tensor:
    """Hyperboloid (..., d+1) -> ball (..., d) of radius sqrt(k) (curvature -1/k)."""
    sk = torch.as_tensor(k, dtype=x.dtype, device=x.device).sqrt()
    return sk * x[..., 1:] / (x[..., :1] + sk)


def clip(x: Tensor, k: Tensor) -> Tensor:
    """Pull points (N, d+1) back to distance ``<= MAX_TANGENT_NORM * sqrt(k)`` from
    the origin (radially) and project them.

    Every hyperboloid output of the HGCN layers passes through here (or through
    :func:`expmap0`, which has the same bound), so coordinates stay below
    ``sqrt(k) cosh(MAX_TANGENT_NORM)`` (1.6e6 sqrt(k) in float32) and
    Minkowski products below 1e13 k: no overflow downstream.
    """
    sk = k.sqrt()
    xs = x[..., 1:]
    n = xs.norm(dim=-1, keepdim=True).clamp_min(eps(x.dtype))
    smax = sk * math.sinh(max_tangent_norm(x.dtype))
    return project(F.pad(xs * torch.clamp(smax / n, max=1.0), (1, 0)), k)


def logmap(x: Tensor, y: Tensor, k: Tensor) -> Tensor:
    """``log_x(y)``; ``x, y``: (N, d+1) -> (N, d+1) tangent at ``x``.

    With ``<x, x> = <y, y> = -k`` and ``a = -<x, y> / k = cosh(dist / sqrt k)``:

        q = <y - x, y - x> / (2k) = a - 1,          w = (y - x) - q x = y - a x
        s = arcosh(1 + q) / (sqrt(q) sqrt(q + 2)),  log_x(y) = s w

    since ``|w|_L = sqrt(k) sqrt(a^2 - 1)``.  geoopt's ``logmap`` forms
    ``<x, y>`` directly and divides by ``|w|_L`` recomputed from ``w``; both
    cancel catastrophically in float32 once the points are a few units from
    the origin (its result reaches 1e16, then NaN, near distance 6-10).  Here
    ``q`` comes from the difference ``y - x`` (accurate for nearby points)
    and is clamped at ``EPS``; ``s`` lies in (0, 1] and ``s q`` is at most
    ``arcosh(1 + q)``, so the result is finite and bounded.
    """
    diff = y - x
    q = (diff[..., 1:].pow(2).sum(-1, keepdim=True) - diff[..., :1].pow(2)) / (2.0 * k)
    q = q.clamp_min(eps(x.dtype))
    root = q.sqrt() * (q + 2.0).sqrt()                 # sqrt(a^2 - 1), no overflow
    s = torch.log1p(q + root) / root                   # arcosh(1 + q) / sqrt(a^2 - 1)
    return s * diff - (s * q) * x


def translate(x: Tensor, u: Tensor, k: Tensor) -> Tensor:
    """Hyperboloid analogue of Möbius addition: ``exp_x(PT_{o->x}(u))``.

    ``x``: (N, d+1) points; ``u``: (d,) or (N, d) space part of a tangent
    vector at the origin ``o = (sqrt k, 0)``:

        v = (0, u) + <x, (0, u)> / (k + sqrt(k) x_0) * (o + x)     (PT_{o->x})
        y = cosh(|u| / sqrt k) x + sqrt(k) sinh(|u| / sqrt k) v / |u|

    Closed forms instead of geoopt's ``transp0`` / ``expmap``: the
    denominator ``k + sqrt(k) x_0 >= 2k`` never vanishes (geoopt divides by the
    squared distance of ``x`` from the origin, inaccurate in float32 near
    it) and ``|v|_L = |u|`` is exact (recomputing it from ``v`` cancels
    catastrophically far from the origin).  ``|u|`` is clipped to
    ``MAX_TANGENT_NORM * sqrt(k)``; the result goes through :func:`clip`.
    Returns (N, d+1).
    """
    sk = k.sqrt()
    cap = max_tangent_norm(u.dtype) * sk
    n = u.norm(dim=-1, keepdim=True).clamp_min(eps(u.dtype))
    u = u * torch.clamp(cap / n, max=1.0)
    n = torch.minimum(n, cap)
    x0, xs = x[..., :1], x[..., 1:]
    coef = (xs * u).sum(-1, keepdim=True) / (k + sk * x0)
    v = torch.cat([coef * (sk + x0), u + coef * xs], dim=-1)
    y = torch.cosh(n / sk) * x + (sk * torch.sinh(n / sk) / n) * v
    return clip(y, k)


# ------------------------------------------------------------------ unit hyperboloid rows (k = 1)
# The fused shallow trainer (:mod:`hgraph.train.fused`) works on float64 tables on
# ``<x, x> = -1`` and updates them in place; these are its formulas.

def inner(a: Tensor, b: Tensor) -> Tensor:
    """Minkowski product over the last axis: ``<a_s, b_s> - a_0 b_0``."""
    return (a[..., 1:] * b[..., 1:]).sum(-1) - a[..., 0] * b[..., 0]


def project_rows(x: Tensor, max_radius: float = 0.0) -> Tensor:
    """Rows (n, d+1) back onto ``<x, x>_L = -1``, in place: time coordinate from the space
    part; with ``max_radius``, a row farther from the origin is pulled back to it radially.

    Unlike :func:`project` (geoopt's, any ``k``, a new tensor) it writes into ``x``, caps
    the radius, and forms ``|x_s|^2`` as a sum of squares (the fused trainer's bits)."""
    sq = (x[:, 1:] * x[:, 1:]).sum(1)
    if max_radius:
        cap = math.sinh(max_radius)
        far = sq > cap * cap
        if bool(far.any()):
            x[far, 1:] *= (cap / sq[far].sqrt()).unsqueeze(1)
            sq = torch.where(far, torch.full_like(sq, cap * cap), sq)
    x[:, 0] = torch.sqrt(1.0 + sq)
    return x


def cosh_dist_minus_one(x: Tensor, y: Tensor) -> Tensor:
    """``cosh d(x, y) - 1`` for hyperboloid rows (broadcast over leading axes), without
    cancellation.

    ``-<x, y>_L - 1`` subtracts products of size ``cosh r_x cosh r_y``: at distance 19.5
    from the origin that is ~2e16, so float64 leaves an absolute error of a few units, and
    a parent-child pair out there (``cosh 1 - 1`` ≈ 0.54) gets a distance of noise.  With
    ``s = sinh r = |x_s|``, ``c = cosh r = x_0`` and unit directions ``e``,

        cosh d - 1 = (s_x - s_y)^2 (1 + cosh(r_x - r_y)) / (c_x + c_y)^2 + s_x s_y |e_x - e_y|^2 / 2

    (the radial part is ``cosh(r_x - r_y) - 1`` written as a square, the angular part
    ``s_x s_y (1 - cos θ)``): two non-negative terms, each as precise as the rows'
    float coordinates allow (tests: 1e-9 relative up to distance 10 from the origin; at
    19.5 the rounding of the directions leaves ~1e-5 relative in ``cosh d - 1`` for
    d = 1e-3, ~1e-8 absolute in d).
    """
    cx, cy = x[..., 0], y[..., 0]
    sx = torch.sqrt((cx - 1.0) * (cx + 1.0))      # = |x_s| for rows put back by project_rows()
    sy = torch.sqrt((cy - 1.0) * (cy + 1.0))
    ex = x[..., 1:] * (1.0 / sx.clamp_min(1e-300)).unsqueeze(-1)
    ey = y[..., 1:] * (1.0 / sy.clamp_min(1e-300)).unsqueeze(-1)
    radial = (sx - sy) ** 2 * (1.0 + torch.cosh(torch.asinh(sx) - torch.asinh(sy))) / (cx + cy) ** 2
    return radial + 0.5 * sx * sy * (ex - ey).pow_(2).sum(-1)
