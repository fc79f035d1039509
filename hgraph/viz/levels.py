"""Distance to the origin per level (:func:`plot_norm_by_level`): a box plot, with the
rank correlation of level and distance."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hgraph.manifolds.projection import _kind_and_c, _np64, radius_and_tangent  # noqa: E402
from hgraph.viz.draw import PathLike, _level_colors, _save  # noqa: E402


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
