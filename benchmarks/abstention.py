#!/usr/bin/env python
"""Confidence and "none fits": what a threshold on the calibrated confidence keeps and drops.

For an item run (its test items' top-1 confidences, fitted on validation, are in
``per_item_seed<S>.npz``) and a file of texts from *outside* its taxonomy, per
threshold tau of ``--min-confidence``: the share of in-taxonomy test items still
placed and their P@1, against the share of outside texts abstained ("none fits").
Outside texts whose category is one of the run's candidates are dropped (a DAG can
hold a term in both subtrees).

    python benchmarks/abstention.py --run results/items/headline/ramen \\
        --outside data/samples/hpo_slice_items.csv --out results/items/confidence

Writes ``<out>/abstention_<run>.md`` and ``.png``; prints the table.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def read_outside(path: Path, inside: set) -> list:
    """Distinct texts of a CSV ``text,category`` whose category is not inside."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if rows and rows[0][:2] == ["text", "category"]:
        rows = rows[1:]
    return sorted({r[0] for r in rows if r and (len(r) < 2 or r[1] not in inside)})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="an item run folder")
    p.add_argument("--outside", type=Path, required=True,
                   help="CSV text,category of texts from outside the run's taxonomy")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "items" / "confidence")
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    from hgraph import Placer
    from hgraph.tasks.item_confidence import ece
    arr = np.load(a.run / f"per_item_seed{a.seed}.npz")
    conf_in, right = arr["conf"], arr["conf_correct"].astype(bool)
    placer = Placer.load(a.run, seed=a.seed)
    inside = {placer.keys[c] for c in placer.cand}
    texts = read_outside(a.outside, inside)
    t0 = time.perf_counter()
    hits = placer.place(texts, k=1)
    place_s = time.perf_counter() - t0
    conf_out = np.array([h[0].confidence for h in hits])
    lines = [f"# Abstention: `{a.run}` (seed {a.seed})", "",
             f"Command: `python benchmarks/abstention.py --run {a.run} --outside {a.outside}"
             f" --threads {a.threads}`", "",
             f"In-taxonomy: {len(conf_in)} test items (top-1 right for "
             f"{right.mean():.3f}; ECE {ece(conf_in, right):.3f} at the fitted temperature "
             f"{placer.temperature:.4g}). Outside: {len(texts)} distinct texts of "
             f"`{a.outside}` whose category is none of the run's {len(placer.cand)} "
             f"candidates (placed in {place_s:.1f} s, {a.threads} thread(s)).", "",
             "| min confidence | test items placed | P@1 of those placed | outside texts "
             "abstained |", "|---|---|---|---|"]
    curve = []
    for tau in THRESHOLDS:
        placed = conf_in >= tau
        p1 = right[placed].mean() if placed.any() else float("nan")
        abst = float((conf_out < tau).mean()) if len(conf_out) else float("nan")
        curve.append((tau, placed.mean(), p1, abst))
        lines.append(f"| {tau:.1f} | {placed.mean():.3f} | {p1:.3f} | {abst:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    a.out.mkdir(parents=True, exist_ok=True)
    stem = f"abstention_{a.run.parent.name}_{a.run.name}"
    (a.out / f"{stem}.md").write_text(text, encoding="utf-8")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.6))
    c = np.array(curve)
    ax.plot(c[:, 0], c[:, 1], marker="o", label="in-taxonomy test items placed")
    ax.plot(c[:, 0], c[:, 2], marker="s", label="P@1 of the items placed")
    ax.plot(c[:, 0], c[:, 3], marker="^", label="outside texts abstained")
    ax.set_xlabel("min confidence")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.set_title(f"{a.run.parent.name}/{a.run.name}", fontsize=9)
    fig.tight_layout()
    fig.savefig(a.out / f"{stem}.png", dpi=120)
    print(f"written: {a.out / (stem + '.md')}, {a.out / (stem + '.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
