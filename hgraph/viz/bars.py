"""Comparison tables as bar charts (:func:`plot_bars`): one bar per method and metric,
with error bars from ``<metric>_std`` columns."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hgraph.viz.draw import PathLike, _save  # noqa: E402


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
