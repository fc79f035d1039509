"""Calibrated stacking on test: how P@1 on seen and on zero-shot categories moves
with the handicap γ, and where the γ chosen on validation (by the twin model) falls.

For each seed of a run trained with ``calibrate: true``: test P@1 of the items
of seen categories (slices ``head``, ``tail``) and of zero-shot ones (``zero``)
over a grid of γ from 0 to ``max(0.3, 3 γ_chosen)`` (301 points), their
harmonic mean and where it peaks.  Nothing is chosen here: γ was fixed before
test was scored; the curve is redrawn from the per-item group minima the run
stored (:func:`hgraph.tasks.calibration.p1_at`).

Reads ``metrics.json`` (``per_seed``: ``cal_gamma``, ``cal_val_p1_seen[_0]``,
``cal_val_p1_unseen[_0]``, ``p1[_seen|_zero]``, ``cal_p1[_seen|_zero]``) and
``per_item_seed<s>.npz`` (``slice``, ``test_d_seen``, ``test_d_unseen``,
``test_hit_seen``, ``test_hit_unseen``); writes ``<run>/calibration.png``.

    python pipelines/analyse.py calibration results/items/icd10cm/ramen_text1
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from hgraph.analysis.runs import Run
from hgraph.analysis.tables import markdown_table
from hgraph.errors import HGraphInputError
from hgraph.tasks.calibration import p1_at

#: the group minima a calibrated run stores per test item (``test_<key>``)
MINIMA = ("d_seen", "d_unseen", "hit_seen", "hit_unseen")
ARRAYS = ("slice",) + tuple(f"test_{k}" for k in MINIMA)
#: what metrics.json must hold per seed
METRICS = ("cal_gamma", "cal_val_p1_seen_0", "cal_val_p1_seen", "cal_val_p1_unseen_0",
           "cal_val_p1_unseen", "p1_seen", "cal_p1_seen", "p1_zero", "cal_p1_zero", "p1",
           "cal_p1")
HEADER = ["seed", "γ (chosen on validation)", "val P@1 seen γ=0 → γ",
          "val P@1 unseen γ=0 → γ",
          "test P@1 seen γ=0 → γ", "test P@1 zero-shot γ=0 → γ", "test P@1 all γ=0 → γ",
          "best test harmonic mean (γ)"]


def gamma_grid(gamma: float, points: int = 301) -> np.ndarray:
    """(points,) γ from 0 to ``max(0.3, 3 gamma)``."""
    return np.linspace(0, max(0.3, 3 * gamma), points)


def p1_against_gamma(minima: Dict[str, np.ndarray], slices: np.ndarray,
               grid: np.ndarray) -> Dict[str, np.ndarray]:
    """P@1 against γ: ``seen`` and ``zero`` (G,) means over the items of seen and
    of zero-shot categories, ``h`` (G,) their harmonic mean (0 where both are 0).
    ``minima``: :data:`MINIMA` -> (n,) per test item; ``slices``: (n,)."""
    p = p1_at(minima, grid)
    zero = np.asarray(slices) == "zero"
    ps, pz = p[:, ~zero].mean(1), p[:, zero].mean(1)
    return {"gamma": grid, "seen": ps, "zero": pz, "h": 2 * ps * pz / np.maximum(ps + pz, 1e-12)}


def calibration_rows(run: Run) -> List[Dict]:
    """Per seed: ``seed``, the run's own numbers (:data:`METRICS`), ``curve``
    (:func:`p1_against_gamma` over :func:`gamma_grid`), ``best_h`` and ``best_gamma``
    (the first γ of the grid where the harmonic mean peaks)."""
    rows = []
    for ps in run.per_seed:
        missing = [k for k in METRICS if k not in ps]
        if missing:
            raise HGraphInputError(f"seed {ps['seed']} has no {', '.join(missing)}: not a "
                                   "calibrated run", file=str(run.path / "metrics.json"),
                                   fix="run with calibrate: true")
        a = run.per_item(int(ps["seed"]), ARRAYS)
        minima = {k: a[f"test_{k}"] for k in MINIMA}
        c = p1_against_gamma(minima, a["slice"], gamma_grid(ps["cal_gamma"]))
        j = int(np.argmax(c["h"]))
        rows.append({"seed": int(ps["seed"]), **{k: ps[k] for k in METRICS}, "curve": c,
                     "best_h": float(c["h"][j]), "best_gamma": float(c["gamma"][j])})
    return rows


def calibration_table(rows: Sequence[Dict]) -> str:
    """The rows as a markdown table (γ to four decimals, P@1 to three)."""
    def arrow(a, b):
        return f"{a:.3f} → {b:.3f}"
    return markdown_table(HEADER, [
        [r["seed"], f"{r['cal_gamma']:.4f}",
         arrow(r["cal_val_p1_seen_0"], r["cal_val_p1_seen"]),
         arrow(r["cal_val_p1_unseen_0"], r["cal_val_p1_unseen"]),
         arrow(r["p1_seen"], r["cal_p1_seen"]), arrow(r["p1_zero"], r["cal_p1_zero"]),
         arrow(r["p1"], r["cal_p1"]), f"{r['best_h']:.3f} ({r['best_gamma']:.3f})"]
        for r in rows])


def plot_calibration(run: Run, rows: Sequence[Dict], path: Optional[Path] = None) -> Path:
    """Seen (solid) and zero-shot (dashed) test P@1 against γ per seed, the chosen
    γ dotted; written to ``path`` (default ``<run>/calibration.png``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hgraph.files import atomic_open
    path = Path(path) if path is not None else run.path / "calibration.png"
    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        for r in rows:
            c = r["curve"]
            line, = ax.plot(c["gamma"], c["seen"], label=f"seed {r['seed']}: seen")
            ax.plot(c["gamma"], c["zero"], ls="--", color=line.get_color(),
                    label=f"seed {r['seed']}: zero-shot")
            ax.axvline(r["cal_gamma"], color=line.get_color(), ls=":", lw=1)
        ax.set_xlabel("γ: distance handicap of categories with training items")
        ax.set_ylabel("test P@1")
        ax.set_title(f"{run.path.parent.name}/{run.name}: calibrated stacking\n"
                     "(dotted: γ chosen on validation by the twin model)", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, dpi=120, format="png")
    finally:
        plt.close(fig)
    return path


__all__ = ["MINIMA", "ARRAYS", "METRICS", "HEADER", "gamma_grid", "p1_against_gamma",
           "calibration_rows", "calibration_table", "plot_calibration"]
