"""Disk pictures: :func:`plot_disk` draws points in the Poincaré disk coloured by level,
like CurvLearn's tree-pretrain pictures; :func:`plot_subtree` draws the subtree under one
node at its global position.

The disk is drawn as the unit disk; points with more than two dimensions go through the
norm-preserving tangent PCA of :mod:`hgraph.manifolds.projection`, so every point sits at
its true distance from the centre (dashed rings mark round distances).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hgraph.manifolds.projection import _disk_radius, _kind_and_c, _project  # noqa: E402
from hgraph.viz.draw import (PathLike, _label, _labels, _level_colors,  # noqa: E402
                             _marker_size, _names_of, _save, subsample)


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


def _disk_figure():
    """Square disk axes with a right margin for the legend (fixed layout, so
    saving needs one draw, not the two of ``bbox_inches='tight'``)."""
    fig = plt.figure(figsize=(10.0, 7.5))
    ax = fig.add_axes((0.01, 0.01, 0.70, 0.88))
    return fig, ax


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
        projection: ``'auto' | 'pca' | 'none'`` (see
            :mod:`hgraph.manifolds.projection`).
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
