"""Regenerate the golden metrics of small runs (``tests/test_golden.py``): four
node runs and three item -> category runs on the committed HPO slice.

    python tests/golden/make_golden.py          # writes tests/golden/<name>.json
    python tests/golden/make_golden.py items_ramen_reg   # one of them

Only run this on purpose: the golden files pin the behaviour of the training
and evaluation code bit for bit (float64, one thread, fixed seeds).  A
refactoring must leave them unchanged; a deliberate change of behaviour
regenerates them in its own commit, saying why.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent

#: the small generated tree of the pipeline tests (~90 nodes), features of dimension 8
SMALL_TREE = ["--gen-root-children", "4", "--gen-min-children", "2", "--gen-max-children", "4",
              "--gen-leaf-prob", "0.1", "0.3", "--feature-dim", "8"]
COMMON = ["--dtype", "float64", "--no-progress", "--no-plots", "--no-save-embeddings",
          "--seed", "0", "--seed", "1", "--recon-sample", "0"]

#: name -> CLI flags.  Optimiser and rate are given explicitly, so a later change of
#: the presets' defaults does not move these files; only a change of the code does.
#: (The shallow run also pins the table's start, the rate's unit, the burn-in divisor and
#: model selection since the shallow preset became nested cones + Riemannian SGD per pair
#: with selection and early stopping on the training closure's MAP, and again the
#: manifold, trainer and schedule since it became a fused hyperboloid table; these flags
#: are the old defaults, so its file did not change.)
RUNS = {
    "shallow": ["--encoder", "shallow", "--dim", "5", "--epochs", "8", "--batch-size", "64",
                "--negatives", "10", "--burnin", "2", "--eval-every", "4",
                "--optimizer", "radam", "--lr", "0.05", "--lr-unit", "batch",
                "--init", "uniform", "--burnin-lr-divisor", "10", "--loss-patience", "0",
                "--val-metric", "ap", "--patience", "0", "--manifold", "poincare",
                "--trainer", "loop", "--lr-schedule", "constant"],
    "hgcn_full": ["--encoder", "hgcn", "--dim", "4", "--hidden", "8", "--epochs", "6",
                  "--full-batch", "--eval-every", "3", "--inductive-frac", "0.1",
                  "--optimizer", "radam", "--lr", "0.05"],
    "hgcn_sampled": ["--encoder", "hgcn", "--dim", "4", "--hidden", "8", "--epochs", "3",
                     "--no-full-batch", "--batch-size", "64", "--fanouts", "3", "2",
                     "--eval-every", "3", "--optimizer", "radam", "--lr", "0.05"],
    "ramen_reg": ["--encoder", "ramen", "--dim", "4", "--hidden", "8", "--epochs", "6",
                  "--reg-lambda", "1.0", "--reg-warmup", "2", "--eval-every", "3",
                  "--inductive-frac", "0.1", "--optimizer", "radam", "--lr", "0.01"],
}

#: item -> category runs on the committed HPO slice (155 terms, 640 synonyms), through the
#: item task's settings; float64, one thread, seeds 0 and 1, every rate given explicitly
ITEM_COMMON = {"dataset": "csv:data/samples/hpo_slice_edges.csv",
               "items": "data/samples/hpo_slice_items.csv",
               "node_text": "data/samples/hpo_slice_text.csv", "seeds": [0, 1],
               "dtype": "float64", "threads": 1, "progress": False, "epochs": 3,
               "patience": 3, "negatives": 64, "hard_negatives": 4, "mined_negatives": 4,
               "mine_k": 10, "batch_size": 128, "hidden": 32, "gcn_hidden": 16,
               "lr": 1e-3, "cost_items": 20, "val_max": 1000}
ITEM_RUNS = {
    "items_features": {"encoder": "features"},
    "items_ramen_reg": {"encoder": "ramen", "reg_lambda": 0.1, "reg_anchors": 32},
    "items_hgcn": {"encoder": "hgcn", "gate_lr": 1e-2},
}

#: metrics that measure time or memory, not behaviour
VOLATILE = ("time", "per_s", "_10k_s", "memory", "peak", "_mb", "new_categories_s")


def deterministic(per_seed):
    return [{k: v for k, v in row.items() if not any(s in k for s in VOLATILE)}
            for row in per_seed]


def run_one(name: str, out: Path):
    if name in ITEM_RUNS:
        return run_items_one(name, out)
    from hgraph.cli import parse_config
    from hgraph.pipeline import run
    cfg, _ = parse_config([*SMALL_TREE, *COMMON, *RUNS[name], "--out", str(out),
                           "--name", name])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # hgraph's PyTorch neighbour sampler, present everywhere: the compiled samplers
    # (pyg-lib, torch-sparse; optional) draw other subgraphs from the same seed
    sampler = os.environ.get("HGRAPH_NEIGHBOR_SAMPLER")
    os.environ["HGRAPH_NEIGHBOR_SAMPLER"] = "torch"
    try:
        res = run(cfg)
    finally:
        torch.set_num_threads(threads)
        if sampler is None:
            del os.environ["HGRAPH_NEIGHBOR_SAMPLER"]
        else:
            os.environ["HGRAPH_NEIGHBOR_SAMPLER"] = sampler
    return deterministic(res.per_seed)


def run_items_one(name: str, out: Path):
    from hgraph.pipeline import run
    from hgraph.tasks.items import config_from_dict
    cfg = config_from_dict({**ITEM_COMMON, **ITEM_RUNS[name], "out": str(out), "name": name})
    threads = torch.get_num_threads()
    try:
        res = run(cfg)
    finally:
        torch.set_num_threads(threads)
    return deterministic(res.per_seed)


def main(argv=None) -> int:
    names = (argv if argv else sys.argv[1:]) or [*RUNS, *ITEM_RUNS]
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows = run_one(name, Path(tmp))
            (HERE / f"{name}.json").write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
            print(name, rows[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
