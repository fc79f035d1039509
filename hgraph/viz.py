"""Pictures of embeddings and results (matplotlib, Agg backend, headless).

Every function takes arrays (numpy or torch), writes one PNG and returns its
path.  Nothing here trains or evaluates; callers pass what they have.

Disk pictures
-------------
:func:`plot_disk` draws points in the Poincaré disk coloured by level, like
CurvLearn's tree-pretrain pictures.  The disk is drawn as the unit disk:
a ball of curvature ``-c`` has radius ``1/sqrt(c)`` and is scaled by
``sqrt(c)`` (a similarity, so the picture does not depend on ``c``); a point
at hyperbolic distance ``r`` from the origin is drawn at Euclidean radius
``tanh(sqrt(c) r / 2)``.

Points with more than two dimensions are projected by :func:`project_to_disk`
with the **norm-preserving tangent PCA** (``projection='pca'``):

1. ``v = logmap_0(x)``: tangent vectors at the origin; ``|v|`` is the exact
   hyperbolic distance ``r`` from the origin.
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
Euclidean points (``manifold_kind='euclidean'``) are drawn by plain PCA with
no boundary.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PathLike = Union[str, Path]
PROJECTIONS = ("auto", "pca", "none")
_KINDS = ("poincare", "lorentz", "euclidean")
#: resolution of every PNG written here
DPI = 120


# ------------------------------------------------------------------ arrays
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


def subsample(level, max_points: int, seed: int = 0, keep: Optional[np.ndarray] = None) -> np.ndarray:
    """Sorted ids of at most ``max_points`` nodes, deterministic in ``seed``.

    Whole levels are kept from the top (level 0, 1, ...) while they fit; the
    remaining budget is drawn uniformly from the deeper nodes.  ``keep``
    (bool mask) marks nodes that are always kept.
    """
    lv = np.asarray(level).astype(np.int64).reshape(-1)
    n = len(lv)
    must = np.zeros(n, dtype=bool) if keep is None else np.asarray(keep, dtype=bool).copy()
    if n <= max_points:
        return np.arange(n)
    budget = max_points - int(must.sum())
    for l in np.unique(lv):
        sel = (lv == l) & ~must
        cnt = int(sel.sum())
        if cnt <= budget:
            must |= sel
            budget -= cnt
        else:
            break
    rest = np.flatnonzero(~must)
    if budget > 0 and len(rest):
        rng = np.random.default_rng(seed)
        must[rng.choice(rest, size=min(budget, len(rest)), replace=False)] = True
    return np.flatnonzero(must)


# ------------------------------------------------------------------ drawing helpers
def _level_colors(levels: Sequence[int]) -> Dict[int, tuple]:
    cmap = plt.get_cmap("tab10")
    return {int(l): cmap(i % 10) for i, l in enumerate(sorted(set(int(x) for x in levels)))}


def _marker_size(level: int, n_in_level: int) -> float:
    base = max(2.0, 40.0 / (1.0 + level) ** 1.3)
    if n_in_level > 20000:
        base = min(base, 1.5)
    elif n_in_level > 3000:
        base = min(base, 3.0)
    return base


def _nice_rings(r_max: float, n: int = 4) -> List[float]:
    """About ``n`` round distances below ``r_max`` for the reference rings."""
    if not r_max > 0:
        return []
    raw = r_max / (n + 0.5)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10)), key=lambda s_: abs(s_ - raw))
    return [step * i for i in range(1, n + 2) if step * i < r_max * 0.999]


def _disk_axes(ax, kind: str = "poincare", c: float = 1.0, radial: str = "poincare",
               r_max: float = 1.0):
    """Equal aspect, no ticks; for hyperbolic kinds the boundary circle and
    dashed rings at round hyperbolic distances from the origin, labelled."""
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for s_ in ax.spines.values():
        s_.set_visible(False)
    if kind == "euclidean":
        ax.axhline(0, color="0.9", lw=0.6, zorder=0)
        ax.axvline(0, color="0.9", lw=0.6, zorder=0)
        return
    ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="black", lw=1.2, zorder=0))
    edge = "boundary (d = inf)" if radial == "poincare" else f"d = {r_max:.3g} (max)"
    ax.text(0.0, -1.03, edge, ha="center", va="top", fontsize=7, color="0.3")
    ang = math.radians(62)
    if radial == "poincare":   # round distances spread over the visible radii
        rings = [d / math.sqrt(c) for d in (0.5, 1, 2, 3, 4, 5) if d / math.sqrt(c) < r_max]
    else:
        rings = _nice_rings(r_max)
    prev = 0.0
    for d in rings:
        rad = float(_disk_radius(d, c, radial, r_max))
        if rad > 0.985 or rad - prev < 0.06:
            continue
        prev = rad
        ax.add_patch(plt.Circle((0, 0), rad, fill=False, color="0.8", lw=0.6, ls="--", zorder=0))
        ax.text(rad * math.cos(ang), rad * math.sin(ang), f"d={d:.3g}", fontsize=6.5, color="0.45",
                ha="left", va="bottom", zorder=0)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.08, 1.05)


def _label(ax, xy, text, fontsize=7, color="black", weight="normal", dy=3.0):
    ax.annotate(text, xy, xytext=(3, dy), textcoords="offset points", fontsize=fontsize,
                color=color, weight=weight, zorder=6,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.75))


def _labels(ax, xy, texts, fontsize=7, color="black", placed=None):
    """Label points without overlapping earlier labels.

    Each label is a box of about ``0.0075 * fontsize / 7 * 2.1`` data units per
    character by ``0.036`` high (the disk axes span 2.1 units over ~7 inches);
    the first vertical offset in 0, -1, +1, -2, +2, ... line heights that
    overlaps no earlier box is used, with a thin leader line when moved.
    ``placed`` holds the boxes already drawn (x0, y0, x1, y1).
    """
    placed = [] if placed is None else placed
    ch = 0.0155 * fontsize / 7.0
    lh = 0.038 * fontsize / 7.0
    for p, t in zip(np.asarray(xy, dtype=float).reshape(-1, 2), texts):
        w = ch * len(t) + 0.01
        for k in (0, -1, 1, -2, 2, -3, 3, -4, 4):
            x0, y0 = p[0] + 0.012, p[1] + 0.008 + k * lh
            box = (x0, y0, x0 + w, y0 + lh)
            if not any(box[0] < q[2] and q[0] < box[2] and box[1] < q[3] and q[1] < box[3]
                       for q in placed):
                break
        placed.append(box)
        ax.annotate(t, p, xytext=(box[0], box[1]), textcoords="data", fontsize=fontsize,
                    color=color, zorder=6, va="bottom", ha="left",
                    bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.75),
                    arrowprops=None if k == 0 else dict(arrowstyle="-", color="0.5", lw=0.5))
    return placed


def _disk_figure():
    """Square disk axes with a right margin for the legend (fixed layout, so
    saving needs one draw, not the two of ``bbox_inches='tight'``)."""
    fig = plt.figure(figsize=(10.0, 7.5))
    ax = fig.add_axes((0.01, 0.01, 0.70, 0.88))
    return fig, ax


def _save(fig, path: PathLike, tight: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def _names_of(names, ids):
    return [str(names[i]) for i in ids]


# ------------------------------------------------------------------ plots
def plot_disk(points, level, path: PathLike, manifold_kind="poincare", curvature: float = 1.0,
              title: Optional[str] = None, projection: str = "auto", max_points: int = 20000,
              seed: int = 0, names: Optional[Sequence[str]] = None, label_top: int = 0,
              radial: str = "poincare") -> Path:
    """Points in the Poincaré disk coloured by level, with a legend.

    Args:
        points: (N, D) points (ball coordinates, or hyperboloid coordinates
            with ``manifold_kind='lorentz'``); ``manifold_kind`` may also be a
            geoopt manifold.
        level: (N,) int level of each point (0 = root).
        path: PNG to write.
        projection: ``'auto' | 'pca' | 'none'`` (see the module docstring).
        max_points: subsample to this many (all shallow levels kept, the rest
            drawn uniformly with ``seed``).
        names, label_top: label the ``label_top`` shallowest nodes (ties by id).
        radial: ``'poincare'`` (true disk position) or ``'equidistant'``
            (radius proportional to hyperbolic distance; see
            :func:`project_to_disk`).  Dashed rings mark round distances.
    Returns: ``path``.
    """
    kind, c = _kind_and_c(manifold_kind, curvature)
    lv = np.asarray(level).astype(np.int64).reshape(-1)
    xy, _, r_max = _project(points, kind, c, projection, radial)
    if len(lv) != len(xy):
        raise ValueError(f"level has {len(lv)} entries for {len(xy)} points")
    keep = subsample(lv, max_points, seed)
    fig, ax = _disk_figure()
    _disk_axes(ax, kind, c, radial, r_max)
    colors = _level_colors(lv)
    counts = np.bincount(lv - lv.min()) if len(lv) else []
    for l in sorted(colors, reverse=True):  # deep levels first, shallow on top
        sel = keep[lv[keep] == l]
        if not len(sel):
            continue
        n_l = int(counts[l - lv.min()])
        shown = "" if len(sel) == n_l else f", {len(sel):,} shown"
        ax.scatter(xy[sel, 0], xy[sel, 1], s=_marker_size(l, len(sel)), color=colors[l],
                   label=f"level {l} (n={n_l:,}{shown})", alpha=0.8 if l > 1 else 1.0,
                   linewidths=0, zorder=2 + 1.0 / (1 + l), rasterized=len(sel) > 2000)
    if label_top and names is not None:
        order = np.lexsort((np.arange(len(lv)), lv))[:label_top]
        _labels(ax, xy[order], _names_of(names, order))
    handles, labels = ax.get_legend_handles_labels()
    order = np.argsort([int(s.split()[1]) for s in labels])
    leg = ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left",
                    bbox_to_anchor=(1.0, 1.0), fontsize=9, title="level", markerscale=3,
                    frameon=False)
    for h in leg.legend_handles:
        h.set_alpha(1.0)
        h.set_sizes([30])
    if title is None:
        title = f"{len(lv):,} nodes, {kind}" + (f" (c={c:g})" if kind != "euclidean" else "")
    d = _dim_of(points, kind)
    sub = f"dim {d}" + ("" if d == 2 else ", norm-preserving tangent PCA" if kind != "euclidean" else ", PCA")
    if kind != "euclidean" and radial != "poincare":
        sub += ", radius = distance / max"
    ax.set_title(f"{title}\n{sub}", fontsize=11)
    return _save(fig, path)


def _dim_of(points, kind: str) -> int:
    shape = getattr(points, "shape", None) or np.asarray(points).shape
    return int(shape[1]) - (1 if kind == "lorentz" else 0)


def _descendants(tax, root: int) -> np.ndarray:
    from scipy.sparse import csgraph
    order = csgraph.breadth_first_order(tax.parent_to_child, root, directed=True,
                                        return_predecessors=False)
    return np.asarray(order, dtype=np.int64)


def plot_subtree(points, tax, root_name_or_id, path: PathLike, manifold_kind="poincare",
                 curvature: float = 1.0, title: Optional[str] = None, projection: str = "auto",
                 max_points: int = 20000, seed: int = 0, label_children: int = 10,
                 radial: str = "poincare") -> Path:
    """The subtree under one node, at its global position in the disk.

    The projection is computed on all points (so positions match
    :func:`plot_disk`); the rest of the taxonomy is drawn faint grey, the
    subtree on top coloured by level, its root as a star with its name, and
    up to ``label_children`` of the root's children labelled.

    Args:
        points: (N, D) points; row ``i`` is node ``i`` of ``tax``.
        tax: :class:`hgraph.data.taxonomy.Taxonomy`.
        root_name_or_id: node id (int) or name/key (str).
    """
    kind, c = _kind_and_c(manifold_kind, curvature)
    if isinstance(root_name_or_id, (int, np.integer)):
        root = int(root_name_or_id)
        if not 0 <= root < tax.num_nodes:
            raise ValueError(f"node id {root} out of range 0..{tax.num_nodes - 1}")
    else:
        root = tax.index(root_name_or_id)
    lv = np.asarray(tax.level).astype(np.int64)
    xy, _, r_max = _project(points, kind, c, projection, radial)
    sub = _descendants(tax, root)
    in_sub = np.zeros(len(lv), dtype=bool)
    in_sub[sub] = True
    keep = subsample(lv, max_points, seed, keep=in_sub)
    rest = keep[~in_sub[keep]]
    fig, ax = _disk_figure()
    _disk_axes(ax, kind, c, radial, r_max)
    ax.scatter(xy[rest, 0], xy[rest, 1], s=1.5, color="0.82", linewidths=0, zorder=1,
               label=f"rest ({len(lv) - len(sub):,})", rasterized=len(rest) > 2000)
    colors = _level_colors(lv)          # same colours as plot_disk
    for l in sorted(set(lv[sub].tolist()), reverse=True):
        sel = sub[lv[sub] == l]
        if l == lv[root]:
            continue
        ax.scatter(xy[sel, 0], xy[sel, 1], s=max(4.0, _marker_size(l, len(sel))), color=colors[l],
                   label=f"level {l} (n={len(sel):,})", linewidths=0, alpha=0.9,
                   zorder=2 + 1.0 / (1 + l))
    ax.scatter([xy[root, 0]], [xy[root, 1]], marker="*", s=220, color=colors[int(lv[root])],
               edgecolors="black", linewidths=0.8, zorder=5,
               label=f"root {tax.names[root]} (level {int(lv[root])})")
    _label(ax, xy[root], str(tax.names[root]), fontsize=10, weight="bold")
    rx, ry = xy[root]
    root_box = (rx, ry - 0.01, rx + 0.025 * len(str(tax.names[root])) + 0.03, ry + 0.06)
    kids = np.asarray(tax.children(root))[:label_children]
    _labels(ax, xy[kids], [str(tax.names[ch]) for ch in kids], color="0.2", placed=[root_box])
    if title is None:
        title = f"subtree under {tax.names[root]} ({len(sub):,} node{'' if len(sub) == 1 else 's'})"
    d = _dim_of(points, kind)
    sub_t = f"{kind}, dim {d}" + ("" if d == 2 else ", norm-preserving tangent PCA")
    if kind != "euclidean" and radial != "poincare":
        sub_t += ", radius = distance / max"
    ax.set_title(f"{title}\n{sub_t}", fontsize=11)
    handles, labels = ax.get_legend_handles_labels()
    rank = [(-1 if lb.startswith("root") else 10 ** 9 if lb.startswith("rest") else int(lb.split()[1]))
            for lb in labels]
    order = np.argsort(rank, kind="stable")
    leg = ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left",
                    bbox_to_anchor=(1.0, 1.0), fontsize=9, frameon=False, markerscale=1.5)
    for h in leg.legend_handles:
        h.set_alpha(1.0)
    return _save(fig, path)


def plot_norm_by_level(points_or_norms, level, path: PathLike, manifold_kind="poincare",
                       curvature: float = 1.0, title: Optional[str] = None) -> Path:
    """Box plot of the distance to the origin per level.

    ``points_or_norms``: (N, D) points (distances computed in float64) or (N,)
    distances already computed.
    """
    kind, c = _kind_and_c(manifold_kind, curvature)
    a = _np64(points_or_norms)
    r = a if a.ndim == 1 else radius_and_tangent(a, kind, c)[0]
    lv = np.asarray(level).astype(np.int64).reshape(-1)
    if len(lv) != len(r):
        raise ValueError(f"level has {len(lv)} entries for {len(r)} points")
    levels = sorted(set(lv.tolist()))
    data = [r[lv == l] for l in levels]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(levels) + 2), 4.5))
    colors = _level_colors(levels)
    bp = ax.boxplot(data, showfliers=True, patch_artist=True, widths=0.6,
                    flierprops=dict(markersize=2, alpha=0.4), medianprops=dict(color="black"))
    ax.set_xticks(range(1, len(levels) + 1),
                  [f"{l}\nn={len(d):,}" for l, d in zip(levels, data)])
    for patch, l in zip(bp["boxes"], levels):
        patch.set_facecolor(colors[l])
        patch.set_alpha(0.8)
    means = [float(d.mean()) if len(d) else np.nan for d in data]
    ax.plot(range(1, len(levels) + 1), means, "o--", color="0.3", ms=4, lw=1, label="mean")
    ax.set_xlabel("level")
    ax.set_ylabel("hyperbolic distance to origin" if kind != "euclidean" else "norm")
    if len(set(lv.tolist())) > 1 and np.std(r) > 0:
        from hgraph.eval.hierarchy import spearman   # scipy.stats: slow import, so here
        rho = spearman(lv, r)
        ax.text(0.02, 0.97, f"Spearman(level, distance) = {rho:.3f}", transform=ax.transAxes,
                va="top", fontsize=9)
    ax.legend(loc="lower right", fontsize=9, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or "distance to origin by level", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def _history_columns(history) -> Tuple[np.ndarray, Dict[str, np.ndarray], str]:
    if isinstance(history, Mapping):
        cols = {k: np.asarray([np.nan if v is None else v for v in vals], dtype=float)
                for k, vals in history.items()}
        n = max((len(v) for v in cols.values()), default=0)
        cols = {k: np.concatenate([v, np.full(n - len(v), np.nan)]) for k, v in cols.items()}
    else:
        rows = list(history)
        keys: List[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        cols = {k: np.asarray([np.nan if r.get(k) is None else r.get(k) for r in rows], dtype=float)
                for k in keys}
        n = len(rows)
    xname = "epoch" if "epoch" in cols else ("step" if "step" in cols else "")
    x = cols.pop(xname) if xname else np.arange(1, n + 1, dtype=float)
    return x, cols, xname or "epoch"


def plot_curves(history, path: PathLike, title: Optional[str] = None) -> Path:
    """Training curves.

    ``history``: ``{name: [values per epoch]}`` or a list of dicts (one per
    epoch, with ``'epoch'``; missing or None values are skipped).  Series
    whose name contains ``'loss'`` go to the left panel (log scale when
    positive and spanning more than a factor 20), all others (validation
    metrics) to the right panel; one panel when only one kind exists.
    """
    x, cols, xname = _history_columns(history)
    losses = {k: v for k, v in cols.items() if "loss" in k.lower()}
    others = {k: v for k, v in cols.items() if "loss" not in k.lower()}
    groups = [(g, lbl) for g, lbl in ((losses, "loss"), (others, "metric")) if g]
    if not groups:
        raise ValueError("history has no series to plot")
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4), squeeze=False)
    for ax, (g, lbl) in zip(axes[0], groups):
        for name, v in g.items():
            ok = np.isfinite(v)
            sparse = ok.sum() < 0.5 * len(v) or ok.sum() <= 30
            ax.plot(x[ok], v[ok], marker="o" if sparse else None, ms=3, lw=1.4, label=name)
        vals = np.concatenate([v[np.isfinite(v)] for v in g.values()])
        if lbl == "loss" and len(vals) and vals.min() > 0 and vals.max() / vals.min() > 20:
            ax.set_yscale("log")
        ax.set_xlabel(xname)
        ax.set_ylabel(lbl)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9, frameon=False)
    fig.suptitle(title or "training", fontsize=11)
    fig.tight_layout()
    return _save(fig, path, tight=True)


def plot_bars(df, path: PathLike, metrics: Optional[Sequence[str]] = None,
              title: Optional[str] = None, layout: str = "auto") -> Path:
    """Grouped bar chart of a comparison table with error bars.

    Args:
        df: pandas DataFrame, one row per method (the index, or a ``method``
            column), one column per metric, optional ``<metric>_std`` columns
            for error bars.
        metrics: columns to show (default: every numeric column not ending in
            ``_std``).
        layout: ``'grouped'`` (metrics on the x axis, one bar per method),
            ``'panels'`` (one panel per metric, each with its own y scale),
            ``'auto'`` (grouped when all metric values lie in [0, 1] or the
            largest values differ by less than 3x, else panels - MR ~ 5 next to
            MAP ~ 0.8 would flatten one of them).
    """
    import pandas as pd
    if "method" in df.columns:
        df = df.set_index("method")
    if metrics is None:
        metrics = [c for c in df.columns if not str(c).endswith("_std")
                   and pd.api.types.is_numeric_dtype(df[c])]
    metrics = list(metrics)
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"metrics not in the table: {missing}")
    if not metrics:
        raise ValueError("no metric columns to plot")
    vals = df[metrics].to_numpy(dtype=float)
    stds = np.stack([df[f"{m}_std"].to_numpy(dtype=float) if f"{m}_std" in df.columns
                     else np.full(len(df), np.nan) for m in metrics], axis=1)
    methods = [str(i) for i in df.index]
    if layout == "auto":
        mx = np.nanmax(np.abs(vals), axis=0)
        in_unit = np.nanmin(vals) >= 0 and np.nanmax(vals) <= 1
        layout = "grouped" if in_unit or (np.nanmax(mx) <= 3 * max(np.nanmin(mx), 1e-300)) else "panels"
    cmap = plt.get_cmap("tab10")
    if layout == "grouped":
        fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(metrics) * max(1, len(methods)) * 0.45 + 2), 4.2))
        width = 0.8 / max(1, len(methods))
        xs = np.arange(len(metrics))
        for j, meth in enumerate(methods):
            pos = xs - 0.4 + width * (j + 0.5)
            err = stds[j]                     # NaN (no _std column): no bar drawn
            bars = ax.bar(pos, vals[j], width, yerr=err if np.isfinite(stds[j]).any() else None,
                          capsize=3, color=cmap(j % 10), label=meth)
            ax.bar_label(bars, labels=[_fmt_val(v) for v in vals[j]], fontsize=7, padding=2)
        ax.set_xticks(xs, metrics)
        ax.legend(fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(title or "comparison", fontsize=11)
    elif layout == "panels":
        fig, axes = plt.subplots(1, len(metrics), figsize=(max(3.2 * len(metrics), 5), 4.2),
                                 squeeze=False)
        for k, (ax, met) in enumerate(zip(axes[0], metrics)):
            err = stds[:, k]
            bars = ax.bar(np.arange(len(methods)), vals[:, k],
                          yerr=err if np.isfinite(stds[:, k]).any() else None, capsize=3,
                          color=[cmap(j % 10) for j in range(len(methods))])
            ax.bar_label(bars, labels=[_fmt_val(v) for v in vals[:, k]], fontsize=7, padding=2)
            ax.set_xticks(np.arange(len(methods)), methods, rotation=30, ha="right", fontsize=8)
            ax.set_title(met, fontsize=10)
            ax.grid(axis="y", alpha=0.3)
        fig.suptitle(title or "comparison", fontsize=11)
        fig.tight_layout()
    else:
        raise ValueError(f"layout must be 'auto', 'grouped' or 'panels', got {layout!r}")
    return _save(fig, path, tight=True)


def _fmt_val(v: float) -> str:
    if not np.isfinite(v):
        return ""
    return f"{v:.3g}"


__all__ = ["plot_disk", "plot_subtree", "plot_norm_by_level", "plot_curves", "plot_bars",
           "project_to_disk", "radius_and_tangent", "subsample", "PROJECTIONS", "RADIAL"]


def plot_run(run_dir: Path, points, tax, manifold, history, subtrees: Sequence[int] = ()) -> None:
    """A run folder's pictures: training curves; on a hyperbolic manifold the
    disk by level (Lorentz mapped to the ball; also with radius = distance to
    the origin), norm by level, and the subtree under each node of ``subtrees``."""
    from hgraph import manifolds as M
    from hgraph.results import slug
    run_dir = Path(run_dir)
    if history:      # a fixed baseline (features) has no training curve
        plot_curves(history, run_dir / "curves.png", title=f"{run_dir.name}: training")
    if M.kind(manifold) == "euclidean":
        return
    pts = M.to_poincare(manifold, points).numpy()
    c = M.curvature_of(manifold)
    plot_disk(pts, tax.level, run_dir / "disk.png", curvature=c,
              title=f"{run_dir.name}: embeddings by level")
    # radius proportional to hyperbolic distance from the origin: deep levels no
    # longer merge into the boundary
    plot_disk(pts, tax.level, run_dir / "disk_equidistant.png", curvature=c,
              title=f"{run_dir.name}: by level (radius = distance to origin)",
              radial="equidistant")
    plot_norm_by_level(pts, tax.level, run_dir / "norm_by_level.png", curvature=c)
    for node in subtrees:
        plot_subtree(pts, tax, node, run_dir / f"subtree_{slug(tax.names[node])}.png",
                     curvature=c)
