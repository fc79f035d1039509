"""Training curves (:func:`plot_curves`): losses on one panel, validation metrics on the
other, from a run's history."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hgraph.viz.draw import PathLike, _save  # noqa: E402


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
