"""Every numerical guard of the manifold maths, in one place.

Constants per dtype and the guarded elementary functions built on them.  The
models' formulas (:mod:`.ball`, :mod:`.lorentz`, :mod:`.euclidean`) and the
layers take their clamps from here; nothing else defines an epsilon for
points or tangent vectors.
"""
from __future__ import annotations

from typing import Dict

import torch

Tensor = torch.Tensor

#: smallest argument of arcosh(1 + t) (keeps the gradient 1/sqrt(t(t+2)) finite);
#: also the floor of norms that are divided by
EPS: Dict[torch.dtype, float] = {torch.float16: 1e-4, torch.bfloat16: 1e-4,
                                 torch.float32: 1e-10, torch.float64: 1e-20}
#: largest tangent-vector norm fed to expmap0.  Beyond it tanh saturates on the
#: ball (so nothing is lost) and cosh overflows on the hyperboloid; the point
#: at this distance from the origin is already at the float boundary.
MAX_TANGENT_NORM: Dict[torch.dtype, float] = {torch.float16: 5.0, torch.bfloat16: 5.0,
                                              torch.float32: 15.0, torch.float64: 30.0}
#: closest approach to the ball's boundary, relative: points stay within
#: (1 - eps) / sqrt(c) of the centre (geoopt's projx uses the same margin)
BOUNDARY_EPS: Dict[torch.dtype, float] = {torch.float16: 1e-3, torch.bfloat16: 1e-3,
                                          torch.float32: 4e-3, torch.float64: 1e-5}


def eps(dtype: torch.dtype) -> float:
    """:data:`EPS` of ``dtype`` (1e-10 for others)."""
    return EPS.get(dtype, 1e-10)


def max_tangent_norm(dtype: torch.dtype) -> float:
    """:data:`MAX_TANGENT_NORM` of ``dtype`` (15 for others)."""
    return MAX_TANGENT_NORM.get(dtype, 15.0)


def boundary_eps(dtype: torch.dtype) -> float:
    """:data:`BOUNDARY_EPS` of ``dtype`` (1e-5 for others)."""
    return BOUNDARY_EPS.get(dtype, 1e-5)


def arcosh1p(t: Tensor) -> Tensor:
    """arcosh(1 + t) for t >= 0, stable near 0 and for large t (t clamped at eps)."""
    t = t.clamp_min(eps(t.dtype))
    return torch.log1p(t + torch.sqrt(t * (t + 2.0)))
