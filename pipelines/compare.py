#!/usr/bin/env python
"""Side-by-side table and bar chart of finished runs.

    python pipelines/compare.py results/run_a results/run_b ... --out results/my_table

writes ``my_table.csv``, ``my_table.md`` (mean ± std over each run's seeds,
with each run's command) and ``my_table.png`` (grouped bars with error bars).
Runs still marked INCOMPLETE are refused.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hgraph.errors import HGraphInputError  # noqa: E402
from hgraph import results as R  # noqa: E402
from hgraph.results import atomic_write_text, fmt  # noqa: E402

DEFAULT_METRICS = ["lp_roc_auc", "lp_ap", "parent_mrr", "parent_hits@10", "recon_mean_rank",
                   "recon_map", "spearman_norm_level", "inductive_mrr", "inductive_hits@10",
                   "train_time_s", "embed_time_s"]
PLOT_METRICS = ["lp_roc_auc", "parent_mrr", "recon_map", "inductive_mrr", "spearman_norm_level"]


def load_run(path: Path) -> dict:
    """A finished run folder (:func:`hgraph.results.load_run`, any task)."""
    return R.load_run(path)


def label_of(run: dict) -> str:
    """``encoder/manifold/d<dim>``, plus ``/λ=<weight>`` for a run trained with
    the graph regulariser (any encoder)."""
    m, reg = run["config"].model, run["config"].reg
    lab = f"{m.encoder}/{m.manifold}/d{m.dim}"
    if reg.reg_lambda > 0:
        lab += f"/λ={reg.reg_lambda:g}"
    return lab


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (results/<run_id>)")
    p.add_argument("--out", required=True, help="output path without extension")
    p.add_argument("--labels", nargs="*", help="one label per run (default: encoder/manifold/dim)")
    p.add_argument("--metrics", nargs="*", default=DEFAULT_METRICS)
    p.add_argument("--title", default=None)
    a = p.parse_args(argv)
    try:
        runs = [load_run(Path(r)) for r in a.runs]
    except HGraphInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.labels and len(a.labels) != len(runs):
        print("error: --labels needs one label per run", file=sys.stderr)
        return 2
    import pandas as pd
    rows = []
    for i, r in enumerate(runs):
        row = {"method": a.labels[i] if a.labels else label_of(r), "seeds": len(r["seeds"])}
        for k in a.metrics:
            if k in r["metrics"]:
                row[k] = r["metrics"][k]["mean"]
                row[k + "_std"] = r["metrics"][k]["std"]
        rows.append(row)
    df = pd.DataFrame(rows)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out.with_suffix(".csv"), df.to_csv(index=False))
    mets = [k for k in a.metrics if k in df.columns]
    lines = [f"# {a.title or out.stem}", "", "mean ± std over seeds; one row per run folder.", "",
             "| method | seeds | " + " | ".join(mets) + " |", "|---|---|" + "---|" * len(mets)]
    for _, r in df.iterrows():
        cells = []
        for k in mets:
            v = r.get(k)
            sd = r.get(k + "_std")
            digits = 1 if k.endswith("_s") or k == "recon_mean_rank" else 3
            cells.append(fmt(None if pd.isna(v) else float(v), None if pd.isna(sd) else float(sd), digits))
        lines.append(f"| {r['method']} | {r['seeds']} | " + " | ".join(cells) + " |")
    lines += ["", "Commands:", ""]
    for r in runs:
        lines.append(f"* `{r['command']}`  → `{r['path'].name}`")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    from hgraph.viz import plot_bars
    plot_metrics = [k for k in PLOT_METRICS if k in df.columns]
    if plot_metrics:
        plot_bars(df.set_index("method"), out.with_suffix(".png"), metrics=plot_metrics,
                  title=a.title or out.stem)
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
