#!/usr/bin/env python
"""Named experiment grids: every variant over the same seeds, one mean ± std table.

    python pipelines/ablate.py --list
    python pipelines/ablate.py --grid lambda                  # runs, then writes the table
    python pipelines/ablate.py --grid headline --only hgcn-poincare ramen   # a subset
    python pipelines/ablate.py --grid headline --table-only   # table from finished runs

Each variant is one ``pipelines/run.py`` configuration (the grid's base
flags + the variant's flags + ``--seed`` for every seed), run in this process
into ``<out>/<grid>/<grid>__<variant>/``.  A variant whose folder already
holds a finished run is not run again (so a grid can be filled in by several
processes with disjoint ``--only`` lists, or continued after a crash); an
interrupted one (INCOMPLETE with checkpoints) is resumed.  The table goes to
``<out>/<grid>.csv`` / ``.md`` / ``.png``, with each variant's command.

Flags after ``--`` are appended to every variant (e.g. ``-- --device cuda``).
Hyperparameters inside a grid are the encoders' presets unless the variant
says otherwise; they were chosen on validation splits, never on test edges.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hgraph.errors import HGraphInputError  # noqa: E402
from hgraph.results import INCOMPLETE, atomic_write_text, fmt  # noqa: E402

#: 7.7k-node generated tree (CurvLearn shape with 10 root children), 10% of the leaves
#: held out for inductive placement: small enough for ~30 variants x 3 seeds on a CPU.
ABLATION_DATA = ["--gen-root-children", "10", "--inductive-frac", "0.1", "--no-plots"]
#: HGCN's preset is one full-batch step per epoch, 40 epochs (tuned on the 84k-node tree,
#: where a step covers 75k edges); on a 7.7k-node tree one step covers 6.5k edges and
#: validation AP still rose until ~80 epochs (lr 0.05: 0.870 / 0.885 / 0.892 after 40 / 80 /
#: 200), so the HGCN variants of the ablation grids run 60 (a CPU-time compromise).
HGCN_SMALL = ["--encoder", "hgcn", "--epochs", "60"]
SEEDS = (0, 1, 2)

Variant = Tuple[str, List[str]]

#: the shallow encoder's defaults when the headline tables were made (Riemannian Adam at
#: lr 0.05 per step, uniform start, selection on validation AP, no early stop); the shallow
#: preset has since become nested cones + Riemannian SGD per pair with selection on the
#: training closure's MAP (results/shallow_defaults/), so the grids pin the old set-up and
#: their tables stay reproducible
SHALLOW_AS_PUBLISHED = ["--init", "uniform", "--optimizer", "radam", "--lr", "0.05",
                        "--lr-unit", "batch", "--val-metric", "ap", "--patience", "0",
                        "--eval-every", "5"]

#: name -> title, base flags, variants (label, flags), and a note for the table.
GRIDS: Dict[str, Dict] = {
    "headline": {
        "title": "Headline: every encoder on the default generated tree (83,787 nodes)",
        "base": ["--inductive-frac", "0.1"],
        "variants": [
            ("shallow", ["--encoder", "shallow", "--epochs", "10", "--batch-size", "2048",
                         "--burnin", "2", *SHALLOW_AS_PUBLISHED]),
            ("hgcn-poincare", ["--encoder", "hgcn", "--manifold", "poincare"]),
            ("hgcn-lorentz", ["--encoder", "hgcn", "--manifold", "lorentz"]),
            ("gcn-euclidean", ["--encoder", "hgcn", "--manifold", "euclidean"]),
            ("ramen-poincare", ["--encoder", "ramen", "--manifold", "poincare", "--epochs", "10"]),
            ("mlp-no-reg", ["--encoder", "ramen", "--manifold", "poincare", "--reg-lambda", "0",
                            "--epochs", "10"]),
            # lambda and learned curvature: the best validation AP of the lambda and manifold
            # grids on the 7.7k-node tree (never test)
            ("ramen-val-tuned", ["--encoder", "ramen", "--manifold", "poincare", "--reg-lambda",
                                 "10", "--learn-curvature", "--epochs", "10"]),
            ("features", ["--encoder", "features"]),
        ],
        "note": "RAMEN / MLP: 10 epochs of 140 steps (batch 512) here, the preset's 30 did not fit "
                "this session's CPU time; shallow: 10 epochs at batch 2048; HGCN: the preset "
                "(40 full-batch steps). "
                "Split: 5% / 10% of child->parent edges for validation / test, and 10% of the "
                "leaves held out entirely (inductive: embedded from their features alone, parent "
                "ranked among all training nodes; HGCN gets their features and no edges). "
                "shallow cannot embed unseen nodes: its inductive figures are those of untrained "
                "rows (chance), and its inference cost is '–'.",
    },
    "headline-mammals": {
        "title": "Headline: every encoder on WordNet mammals (1,182 synsets, gloss features)",
        "base": ["--dataset", "wordnet-mammals", "--inductive-frac", "0.1", "--feature-dim", "64",
                 "--recon-sample", "0"],
        "variants": [
            ("shallow", ["--encoder", "shallow", "--epochs", "100", "--batch-size", "128",
                         "--burnin", "10", *SHALLOW_AS_PUBLISHED]),
            ("hgcn-poincare", ["--encoder", "hgcn", "--manifold", "poincare", "--epochs", "200"]),
            ("hgcn-lorentz", ["--encoder", "hgcn", "--manifold", "lorentz", "--epochs", "200"]),
            ("gcn-euclidean", ["--encoder", "hgcn", "--manifold", "euclidean", "--epochs", "200"]),
            ("ramen-poincare", ["--encoder", "ramen", "--manifold", "poincare", "--epochs", "60"]),
            ("mlp-no-reg", ["--encoder", "ramen", "--manifold", "poincare", "--reg-lambda", "0",
                            "--epochs", "60"]),
            ("ramen-val-tuned", ["--encoder", "ramen", "--manifold", "poincare", "--reg-lambda",
                                 "10", "--learn-curvature", "--epochs", "60"]),
            ("features", ["--encoder", "features"]),
        ],
        "note": "Features: TF-IDF + SVD (64 dims) of each synset's lemmas and gloss. Mammals is "
                "a DAG (some synsets have two parents); the edge split holds out edges, so a "
                "held-out edge's child may keep another parent.",
    },
    "lambda": {
        "title": "RAMEN: weight of the graph regulariser",
        "base": ABLATION_DATA + ["--encoder", "ramen"],
        "variants": [(f"lambda={v}", ["--reg-lambda", v]) for v in ("0", "0.1", "1", "10")],
        "note": "Regularisers: ancestor + sibling triplets (default); lambda warm-up 5 epochs.",
    },
    "regularizer": {
        "title": "RAMEN: which graph regulariser (lambda = 1)",
        "base": ABLATION_DATA + ["--encoder", "ramen", "--reg-lambda", "1"],
        "variants": [("ancestor", ["--reg-kinds", "ancestor"]),
                     ("sibling", ["--reg-kinds", "sibling"]),
                     ("huse", ["--reg-kinds", "huse"]),
                     ("ancestor+sibling", ["--reg-kinds", "ancestor", "sibling"]),
                     ("all three", ["--reg-kinds", "ancestor", "sibling", "huse"]),
                     ("ancestor+sibling, hard negatives",
                      ["--reg-kinds", "ancestor", "sibling", "--hard-negatives"])],
        "note": "",
    },
    "manifold": {
        "title": "RAMEN: manifold and curvature",
        "base": ABLATION_DATA + ["--encoder", "ramen"],
        "variants": [("poincare c=1", ["--manifold", "poincare"]),
                     ("poincare learned c", ["--manifold", "poincare", "--learn-curvature"]),
                     ("lorentz c=1", ["--manifold", "lorentz"]),
                     ("lorentz learned c", ["--manifold", "lorentz", "--learn-curvature"]),
                     ("euclidean", ["--manifold", "euclidean"])],
        "note": "",
    },
    "dim": {
        "title": "Embedding dimension, RAMEN and HGCN (Poincaré)",
        "base": ABLATION_DATA,
        "variants": [(f"{enc} d={d}", (HGCN_SMALL if enc == "hgcn" else ["--encoder", enc])
                      + ["--dim", str(d)])
                     for enc in ("ramen", "hgcn") for d in (2, 10, 32)],
        "note": "",
    },
    "hgcn-layers": {
        "title": "HGCN (Poincaré): number of layers",
        "base": ABLATION_DATA + HGCN_SMALL,
        "variants": [(f"layers={k}", ["--layers", str(k)]) for k in (1, 2, 3)],
        "note": "",
    },
    "hgcn-aggregation": {
        "title": "HGCN (Poincaré): neighbour aggregation",
        "base": ABLATION_DATA + HGCN_SMALL,
        "variants": [("mean (default)", []),
                     ("attention", ["--attention"]),
                     ("local tangent space", ["--local-agg"]),
                     ("GCN sym weights", ["--agg-norm", "sym"]),
                     ("hide supervision edges", ["--hide-supervision", "--batch-size", "1024"])],
        "note": "'hide supervision edges' drops each step's positive edges from its message "
                "passing (needs several steps per epoch, so batch 1024).",
    },
    "hgcn-fanouts": {
        "title": "HGCN (Poincaré): full batch vs neighbour-sampled mini-batches",
        "base": ABLATION_DATA + HGCN_SMALL,
        "variants": [("full batch", []),
                     ("fanouts 5,5", ["--no-full-batch", "--batch-size", "1024",
                                      "--fanouts", "5", "5", "--epochs", "20"]),
                     ("fanouts 10,10", ["--no-full-batch", "--batch-size", "1024",
                                        "--fanouts", "10", "10", "--epochs", "20"]),
                     ("fanouts 25,25", ["--no-full-batch", "--batch-size", "1024",
                                        "--fanouts", "25", "25", "--epochs", "20"])],
        "note": "Mini-batches: 1,024 positive edges per step (7 steps per epoch), 20 epochs; "
                "full batch: one step per epoch, 60 epochs.",
    },
    "hgcn-reg": {
        "title": "HGCN (Poincaré) with the graph regulariser",
        "base": ABLATION_DATA + HGCN_SMALL,
        "variants": [(f"lambda={v}", ["--reg-lambda", v]) for v in ("0", "0.1", "1")],
        "note": "The RAMEN regulariser (ancestor + sibling triplets, warm-up 5 epochs) added to "
                "HGCN's training: does the graph as a training signal help an encoder that "
                "already reads it?",
    },
}

METRICS = ["lp_roc_auc", "lp_ap", "parent_mrr", "parent_hits@10", "inductive_mrr",
           "inductive_hits@10", "recon_mean_rank", "recon_map", "train_time_s", "embed_time_s",
           "infer_10k_s"]
PLOT_METRICS = ["lp_ap", "parent_mrr", "inductive_mrr", "recon_map"]


def run_name(grid: str, label: str) -> str:
    from hgraph.results import slug
    return slug(f"{grid}__{label}")


def variant_args(grid: str, label: str, flags: Sequence[str], seeds: Sequence[int],
                 out: Path, extra: Sequence[str]) -> List[str]:
    args = [*GRIDS[grid]["base"], *flags, "--out", str(out / grid),
            "--name", run_name(grid, label), "--no-save-embeddings"]
    for s in seeds:
        args += ["--seed", str(s)]
    return args + list(extra)


def finished(d: Path) -> bool:
    return (d / "metrics.json").exists() and not (d / INCOMPLETE).exists()


def run_variant(grid: str, label: str, args: List[str], out: Path) -> Path:
    from hgraph.cli import parse_config
    from hgraph.pipeline import resume, run
    d = out / grid / run_name(grid, label)
    if finished(d):
        print(f"[ablate] {label}: finished run in {d}, kept", file=sys.stderr)
        return d
    if d.exists() and any(d.glob("checkpoint_seed*.pt")):
        print(f"[ablate] {label}: resuming {d}", file=sys.stderr)
        resume(d, argv=["pipelines/run.py", "--resume", str(d)])
        return d
    if d.exists():      # crashed before its first checkpoint: start again in place
        import shutil
        shutil.rmtree(d)
    print(f"[ablate] {label}: python pipelines/run.py {' '.join(args)}", file=sys.stderr)
    cfg, _ = parse_config(args)
    run(cfg, argv=["pipelines/run.py", *args])
    return d


def write_table(grid: str, out: Path, command: str) -> Path:
    import pandas as pd
    g = GRIDS[grid]
    rows, cmds = [], []
    for label, _ in g["variants"]:
        d = out / grid / run_name(grid, label)
        if not finished(d):
            continue
        m = json.loads((d / "metrics.json").read_text())
        agg = m["mean_std"]
        row = {"variant": label, "seeds": len(m["run"]["seeds"])}
        # model selection reads validation, never test: best validation score of each seed
        # (AP or MRR, whichever the run selected on: train.val_metric)
        hist = json.loads((d / "history.json").read_text()) if (d / "history.json").exists() else []
        for key in ("val_ap", "val_mrr"):
            best = [max(v) for v in ([r[key] for r in h if r.get(key) is not None]
                                     for h in hist) if v]
            if best:
                import numpy as np
                row[key] = float(np.mean(best))
                row[key + "_std"] = float(np.std(best, ddof=1)) if len(best) > 1 else 0.0
        for k in METRICS:
            if k in agg:
                row[k], row[k + "_std"] = agg[k]["mean"], agg[k]["std"]
        rows.append(row)
        cmds.append((label, (d / "command.txt").read_text().splitlines()[0],
                     m["run"].get("git"), m["run"]["env"]))
    if not rows:
        raise HGraphInputError(f"no finished run of grid {grid!r} under {out / grid}",
                               fix=f"run python pipelines/ablate.py --grid {grid}")
    df = pd.DataFrame(rows)
    atomic_write_text(out / f"{grid}.csv", df.to_csv(index=False))
    mets = [k for k in ["val_ap", "val_mrr"] + METRICS if k in df.columns]
    env = cmds[0][3]
    lines = [f"# {g['title']}", "",
             f"mean ± std over seeds (n = seeds column). Made by `{command}` on "
             f"{time.strftime('%Y-%m-%d')}; machine: {env.get('cpu_count')} CPU cores "
             f"({platform.processor() or platform.machine()}), device {env.get('device')}"
             f"{', ' + env['gpu'] if env.get('gpu') else ''}, torch {env.get('torch')}.", ""]
    if g.get("note"):
        lines += [g["note"], ""]
    lines += ["| variant | seeds | " + " | ".join(mets) + " |", "|---|---|" + "---|" * len(mets)]
    for _, r in df.iterrows():
        cells = []
        for k in mets:
            v, sd = r.get(k), r.get(k + "_std")
            digits = 2 if k.endswith("_s") else 1 if k == "recon_mean_rank" else 3
            cells.append(fmt(None if pd.isna(v) else float(v),
                             None if pd.isna(sd) else float(sd), digits))
        lines.append(f"| {r['variant']} | {r['seeds']} | " + " | ".join(cells) + " |")
    lines += ["", "val_ap / val_mrr: best validation AP / parent MRR during training (what model "
              "and hyperparameter choices may read); every other column is on test edges / "
              "held-out nodes.",
              "", "Metrics: link prediction of held-out child->parent edges (ROC-AUC, AP; 10 "
              "sampled negatives each), parent rank of a held-out edge's child among all nodes "
              "(MRR, Hits@10), inductive parent rank of held-out leaves among training nodes, "
              "reconstruction mean rank and MAP of the training closure (sampled sources), "
              "training seconds per seed, seconds to embed all nodes (embed_time_s) and to "
              "embed 10k nodes as new items (infer_10k_s; HGCN: with their 2-hop "
              "neighbourhood).",
              "", "Runs (each folder also holds config.json and per-seed metrics):", ""]
    for label, cmd, git, _ in cmds:
        lines.append(f"* {label}: `{cmd}` (git {git})")
    atomic_write_text(out / f"{grid}.md", "\n".join(lines) + "\n")
    try:
        from hgraph.viz import plot_bars
        pm = [k for k in PLOT_METRICS if k in df.columns]
        if pm:
            plot_bars(df.rename(columns={"variant": "method"}).set_index("method"),
                      out / f"{grid}.png", metrics=pm, title=g["title"])
    except Exception as e:  # the table matters more than the picture
        print(f"[ablate] no plot: {e}", file=sys.stderr)
    return out / f"{grid}.md"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    extra: List[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", choices=sorted(GRIDS), help="which grid (see --list)")
    p.add_argument("--list", action="store_true", help="print the grids and their variants")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                   help="training seeds of every variant (default 0 1 2)")
    p.add_argument("--out", default="results/ablations", help="folder of run folders and tables")
    p.add_argument("--only", nargs="+", metavar="VARIANT",
                   help="run only these variants (labels as in --list); the table still "
                        "includes every finished variant")
    p.add_argument("--table-only", action="store_true", help="write the table, run nothing")
    p.add_argument("--dry-run", action="store_true", help="print the run.py commands only")
    a = p.parse_args(argv)
    if a.list:
        for name, g in GRIDS.items():
            print(f"{name}: {g['title']}\n  base: {' '.join(g['base'])}")
            for label, flags in g["variants"]:
                print(f"    {label}: {' '.join(flags)}")
        return 0
    if not a.grid:
        p.error("--grid is required (or --list)")
    out = Path(a.out)
    g = GRIDS[a.grid]
    labels = [v[0] for v in g["variants"]]
    if a.only:
        unknown = [o for o in a.only if o not in labels]
        if unknown:
            print(f"error: unknown variant(s) {unknown} of grid {a.grid!r}; "
                  f"choose from {labels}", file=sys.stderr)
            return 2
    command = "python pipelines/ablate.py " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        if not a.table_only:
            for label, flags in g["variants"]:
                if a.only and label not in a.only:
                    continue
                args = variant_args(a.grid, label, flags, a.seeds, out, extra)
                if a.dry_run:
                    print("python pipelines/run.py " + " ".join(args))
                    continue
                run_variant(a.grid, label, args, out)
        if a.dry_run:
            return 0
        md = write_table(a.grid, out, f"python pipelines/ablate.py --grid {a.grid}")
    except HGraphInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
