"""The Poincaré ball of curvature ``-c``: the formulas hgraph writes itself,
as pure functions of tensors (``c``: a 0-d tensor, the positive curvature
magnitude, already in the points' dtype and device).

geoopt's ``PoincareBall`` supplies projection, Möbius addition and its own
distance to the origin; these closed forms are the ones geoopt lacks or
computes less accurately / more slowly (reasons in each docstring).  The
dispatch from a manifold object is :mod:`hgraph.manifolds`.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from hgraph.manifolds.guards import arcosh1p, boundary_eps, eps, max_tangent_norm

Tensor = torch.Tensor


def expmap0(u: Tensor, c: Tensor) -> Tensor:
    """``x = tanh(sqrt(c)|u|) u / (sqrt(c)|u|)`` for (..., d) tangent vectors at
    the origin, before projection.  ``sqrt(c)|u|`` is capped at
    ``MAX_TANGENT_NORM / 2``: tanh saturates long before, and the cap keeps the
    gradient of the rescaling finite for inputs of any scale."""
    cap = max_tangent_norm(u.dtype)
    norm = u.norm(dim=-1, keepdim=True).clamp_min(eps(u.dtype))
    sc = c.sqrt()
    n = norm.clamp_max(cap / (2.0 * sc))
    return torch.tanh(sc * n) * (u / (sc * norm))


def logmap0(x: Tensor, c: Tensor) -> Tensor:
    """``u = artanh(sqrt(c)|x|) x / (sqrt(c)|x|)``; the clamp at the boundary
    margin guards artanh(1) (points are kept inside the ball by projx)."""
    sc = c.sqrt()
    n = x.norm(dim=-1, keepdim=True).clamp_min(eps(x.dtype))
    z = (sc * n).clamp_max(1.0 - boundary_eps(x.dtype))
    return torch.atanh(z) * (x / (sc * n))


def dist(x: Tensor, y: Tensor, c: Tensor) -> Tensor:
    """(...,) elementwise distance ``arcosh(1 + 2c|x-y|^2 / ((1-c|x|^2)(1-c|y|^2))) / sqrt(c)``:
    :class:`PoincareDist` (closed-form backward) for a fixed curvature,
    :func:`dist_traceable` when ``c`` needs a gradient."""
    if not c.requires_grad:
        return PoincareDist.apply(x, y, c)
    return dist_traceable(x, y, c)


def dist_traceable(x: Tensor, y: Tensor, c: Tensor) -> Tensor:
    """The ball's distance by autograd-traceable ops (learnable ``c``; the reference
    the closed-form backward of :class:`PoincareDist` is tested against)."""
    diff = ((x - y) ** 2).sum(-1)
    denom = ((1.0 - c * (x * x).sum(-1)) * (1.0 - c * (y * y).sum(-1))).clamp_min(eps(x.dtype))
    return arcosh1p(2.0 * c * diff / denom) / c.sqrt()


class PoincareDist(torch.autograd.Function):
    """:func:`dist_traceable` with a closed-form backward (fixed curvature).

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
    autograd over :func:`dist_traceable` (float32, float64, gradcheck).
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


def pairwise(x: Tensor, y: Tensor, c: Tensor, y_sq: Optional[Tensor] = None) -> Tensor:
    """(n, m) distances of (n, d) and (m, d) points by one matmul;
    ``y_sq``: (m,) squared norms of ``y`` when already known."""
    x_sq = (x * x).sum(-1, keepdim=True)                   # (n, 1)
    ysq = (y * y).sum(-1) if y_sq is None else y_sq        # (m,)
    diff = (x_sq + ysq[None, :] - 2.0 * (x @ y.T)).clamp_min(0.0)
    denom = ((1.0 - c * x_sq) * (1.0 - c * ysq[None, :])).clamp_min(eps(x.dtype))
    return arcosh1p(2.0 * c * diff / denom) / c.sqrt()


def to_lorentz(y: Tensor, k=1.0) -> Tensor:
    """Ball of radius sqrt(k) (..., d) -> hyperboloid (..., d+1) of ``<x, x> = -k``."""
    kk = torch.as_tensor(k, dtype=y.dtype, device=y.device)
    sq = (y * y).sum(-1, keepdim=True)
    denom = (kk - sq).clamp_min(eps(y.dtype))
    x0 = kk.sqrt() * (kk + sq) / denom
    xs = 2.0 * kk * y / denom
    return torch.cat([x0, xs], dim=-1)
