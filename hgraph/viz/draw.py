"""What every plot of :mod:`hgraph.viz` shares: the Agg backend, the PNG resolution
(:data:`DPI`) and saving, which nodes to draw (:func:`subsample`), level colours and
marker sizes, and labels that do not overlap."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PathLike = Union[str, Path]
#: resolution of every PNG written here
DPI = 120


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


def _save(fig, path: PathLike, tight: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def _names_of(names, ids):
    return [str(names[i]) for i in ids]
