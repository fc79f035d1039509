"""Points of a manifold -> two dimensions for a picture, keeping distance to the origin.

Pure maths over arrays (numpy, float64; torch tensors are converted); the plots of
:mod:`hgraph.viz` draw what this returns.  A ball of curvature ``-c`` has radius
``1/sqrt(c)`` and is scaled by ``sqrt(c)`` onto the unit disk (a similarity, so the
picture does not depend on ``c``); a point at hyperbolic distance ``r`` from the origin
lands at Euclidean radius ``tanh(sqrt(c) r / 2)`` (:func:`_disk_radius`).

Points with more than two dimensions are projected by :func:`project_to_disk`
with the **norm-preserving tangent PCA** (``projection='pca'``):

1. ``v = logmap_0(x)``: tangent vectors at the origin; ``|v|`` is the exact
   hyperbolic distance ``r`` from the origin (:func:`radius_and_tangent`).
2. Project ``v`` onto its two leading principal axes (uncentred PCA, i.e. the
   top-2 right singular vectors of ``v``, so the origin stays at the centre;
   the root of a taxonomy is normally there).
3. Keep only the *direction* of the projected vector and give it back the
   length ``r``, then map to the disk with ``expmap_0``.

The point is that distance from the centre keeps its meaning: in a
hyperbolic embedding of a hierarchy the distance to the origin encodes depth
(general categories near the centre, leaves near the boundary), and this
projection shows every point at exactly its true distance; only angles are
approximated.  A linear projection of the ball coordinates would shrink
norms (a projection never lengthens a vector) and crowd points towards the
centre; t-SNE and UMAP keep only local neighbourhoods and rescale freely, so
the radial depth structure - the thing a hyperbolic embedding is for - is
destroyed.

Lorentz points are converted to the ball first (``manifold_kind='lorentz'``
and ``curvature``), or pass points already converted with
:func:`hgraph.manifolds.to_poincare` and ``manifold_kind='poincare'``.
Euclidean points (``manifold_kind='euclidean'``) are projected by plain PCA with
no boundary.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

PROJECTIONS = ("auto", "pca", "none")
_KINDS = ("poincare", "lorentz", "euclidean")


def _np64(x) -> np.ndarray:
    try:
        import torch
        if isinstance(x, torch.Tensor):
            return x.detach().cpu().to(torch.float64).numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x, dtype=np.float64)


def _kind_and_c(manifold_kind, curvature: float) -> Tuple[str, float]:
    """Accept a kind name or a geoopt manifold (whose curvature wins)."""
    if not isinstance(manifold_kind, str):
        from hgraph import manifolds as M
        return M.kind(manifold_kind), M.curvature_of(manifold_kind)
    if manifold_kind not in _KINDS:
        raise ValueError(f"manifold_kind must be one of {_KINDS}, got {manifold_kind!r}")
    if manifold_kind != "euclidean" and not curvature > 0:
        raise ValueError(f"curvature must be > 0, got {curvature}")
    return manifold_kind, float(curvature)


def radius_and_tangent(points, manifold_kind="poincare", curvature: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Distance from the origin and tangent vectors at the origin, float64.

    ``points``: (N, D).  Returns ``r`` (N,) and ``v = logmap_0(x)`` (N, d) with
    ``|v| = r`` (d = D - 1 for Lorentz).  Euclidean: ``r = |x|``, ``v = x``.
    """
    kind, c = _kind_and_c(manifold_kind, curvature)
    x = _np64(points)
    if x.ndim != 2:
        raise ValueError(f"points must be (N, D), got shape {x.shape}")
    if kind == "euclidean":
        return np.linalg.norm(x, axis=1), x
    sc = math.sqrt(c)
    if kind == "lorentz":
        xs = x[:, 1:]
        n = np.linalg.norm(xs, axis=1)
        # r = sqrt(K) asinh(|xs| / sqrt(K)) with K = 1/c (uses only the space part)
        r = np.arcsinh(n * sc) / sc
    else:
        n = np.linalg.norm(x, axis=1)
        r = 2.0 * np.arctanh(np.clip(n * sc, 0.0, 1.0 - 1e-16)) / sc
        xs = x
    unit = np.divide(xs, n[:, None], out=np.zeros_like(xs), where=n[:, None] > 0)
    return r, unit * r[:, None]


RADIAL = ("poincare", "equidistant")


def project_to_disk(points, manifold_kind="poincare", curvature: float = 1.0,
                    projection: str = "auto", radial: str = "poincare") -> np.ndarray:
    """(N, D) points -> (N, 2) coordinates in the unit disk (or the plane for
    Euclidean points).

    ``projection``: ``'pca'`` is the norm-preserving tangent PCA of the
    module docstring; ``'none'`` requires two intrinsic dimensions;
    ``'auto'`` = ``'none'`` for two dimensions, else ``'pca'``.

    ``radial``: how the distance ``r`` from the origin becomes a radius in the
    picture.  ``'poincare'``: ``tanh(sqrt(c) r / 2)``, the true Poincaré-disk
    position.  ``'equidistant'``: ``r / max(r)`` (the log map at the origin
    drawn to scale, the azimuthal equidistant view): radii stay proportional
    to hyperbolic distance, which spreads out the deep levels that the
    Poincaré view squeezes against the boundary (level 4 of a CurvLearn tree
    sits at Euclidean norm > 0.99).
    """
    return _project(points, manifold_kind, curvature, projection, radial)[0]


def _project(points, manifold_kind, curvature, projection, radial):
    """(xy, r, r_max) with ``r`` the true distances from the origin."""
    kind, c = _kind_and_c(manifold_kind, curvature)
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
    if radial not in RADIAL:
        raise ValueError(f"radial must be one of {RADIAL}, got {radial!r}")
    r, v = radius_and_tangent(points, kind, c)
    dim = v.shape[1]
    if projection == "auto":
        projection = "none" if dim == 2 else "pca"
    if projection == "none":
        if dim != 2:
            raise ValueError(f"projection='none' needs 2-dimensional points, got {dim}; use 'pca'")
        w = v
    elif dim < 2:
        w = np.concatenate([v, np.zeros((len(v), 2 - dim))], axis=1)
    elif dim == 2:
        w = v
    else:
        # uncentred PCA: top-2 right singular vectors of v (the origin stays fixed)
        _, _, vt = np.linalg.svd(v, full_matrices=False)
        basis = vt[:2].T                                          # (d, 2)
        basis = basis * np.where(basis.sum(0) < 0, -1.0, 1.0)    # deterministic sign
        w = v @ basis
    r_max = float(r.max()) if len(r) else 1.0
    if kind == "euclidean":
        return w, r, r_max
    # unit direction of the projected tangent vector (r > 0 but no in-plane part: (1, 0))
    wn = np.linalg.norm(w, axis=1)
    tiny = wn <= 1e-12 * np.maximum(r, 1e-300)
    u = np.divide(w, wn[:, None], out=np.zeros_like(w), where=~tiny[:, None])
    u[tiny & (r > 0)] = (1.0, 0.0)
    return u * _disk_radius(r, c, radial, r_max)[:, None], r, r_max


def _disk_radius(r, c: float, radial: str, r_max: float):
    """Picture radius of hyperbolic distance ``r`` from the origin."""
    r = np.asarray(r, dtype=np.float64)
    if radial == "poincare":
        return np.tanh(math.sqrt(c) * r / 2.0)      # expmap_0 into the unit disk
    return r / (r_max if r_max > 0 else 1.0)
