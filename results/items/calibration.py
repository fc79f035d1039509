"""Calibrated stacking on test: how P@1 on seen and on zero-shot categories moves with
the handicap γ, and where the γ chosen on validation (by the twin model) falls.

Usage: python results/items/calibration.py results/items/icd10cm/ramen_text1 [more run folders]
Writes <run>/calibration.png and prints a markdown table per run.  The test curve is
redrawn from the per-item group minima the run stored (``test_d_seen`` ...): nothing is
chosen here, γ was fixed before test was scored.
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from hgraph.tasks.calibration import p1_at  # noqa: E402


def main(folders):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for folder in map(Path, folders):
        m = json.loads((folder / "metrics.json").read_text())
        fig, ax = plt.subplots(figsize=(6, 4))
        print(f"\n### {folder}\n")
        print("| seed | γ (chosen on validation) | val P@1 seen γ=0 → γ | val P@1 unseen γ=0 → γ "
              "| test P@1 seen γ=0 → γ | test P@1 zero-shot γ=0 → γ | test P@1 all γ=0 → γ "
              "| best test harmonic mean (γ) |")
        print("|---|---|---|---|---|---|---|---|")
        for ps in m["per_seed"]:
            s = ps["seed"]
            a = np.load(folder / f"per_item_seed{s}.npz", allow_pickle=True)
            g = {k: a[f"test_{k}"] for k in ("d_seen", "d_unseen", "hit_seen", "hit_unseen")}
            zero = a["slice"] == "zero"
            grid = np.linspace(0, max(0.3, 3 * ps["cal_gamma"]), 301)
            p = p1_at(g, grid)
            ps_, pz = p[:, ~zero].mean(1), p[:, zero].mean(1)
            h = 2 * ps_ * pz / np.maximum(ps_ + pz, 1e-12)
            j = int(np.argmax(h))
            line, = ax.plot(grid, ps_, label=f"seed {s}: seen")
            ax.plot(grid, pz, ls="--", color=line.get_color(), label=f"seed {s}: zero-shot")
            ax.axvline(ps["cal_gamma"], color=line.get_color(), ls=":", lw=1)
            gam = ps["cal_gamma"]
            print(f"| {s} | {gam:.4f} | {ps['cal_val_p1_seen_0']:.3f} → {ps['cal_val_p1_seen']:.3f} "
                  f"| {ps['cal_val_p1_unseen_0']:.3f} → {ps['cal_val_p1_unseen']:.3f} "
                  f"| {ps['p1_seen']:.3f} → {ps['cal_p1_seen']:.3f} "
                  f"| {ps['p1_zero']:.3f} → {ps['cal_p1_zero']:.3f} "
                  f"| {ps['p1']:.3f} → {ps['cal_p1']:.3f} | {h[j]:.3f} ({grid[j]:.3f}) |")
        ax.set_xlabel("γ: distance handicap of categories with training items")
        ax.set_ylabel("test P@1")
        ax.set_title(f"{folder.parent.name}/{folder.name}: calibrated stacking\n"
                     "(dotted: γ chosen on validation by the twin model)", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / "calibration.png", dpi=120)
        plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1:] or ["results/items/icd10cm/ramen_text1"])
