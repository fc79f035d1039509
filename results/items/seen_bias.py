#!/usr/bin/env python
"""Where do a run's zero-shot mistakes land?  For each finished run of a dataset folder
and each seed: the share of zero-shot test items whose top-1 category has training items
(under that seed's split), overall and among the misses, beside the share of candidates
that have training items.  A trained model that learnt "categories with items are where
items go" puts its zero-shot misses on such categories far above that base rate.

    python results/items/seen_bias.py icd10cm [hpo nouns]   (prints a markdown table)
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from hgraph.data.item_splits import make_item_splits  # noqa: E402
from hgraph.tasks.items import config_from_dict, load_item_data  # noqa: E402

torch.set_num_threads(1)
print("| dataset | run | seed | candidates with training items | zero-shot top-1 on such | "
      "... among the misses | zero-shot P@1 |")
print("|---|---|---|---|---|---|---|")
for ds in sys.argv[1:] or ["icd10cm"]:
    folder = Path(__file__).resolve().parent / ds
    runs = sorted(p.parent for p in folder.glob("*/metrics.json"))
    data, has = None, {}
    for run in runs:
        m = json.loads((run / "metrics.json").read_text())
        cfg = config_from_dict({**m["run"]["config"], "progress": False})
        if data is None:
            data = load_item_data(cfg, torch.device("cpu"))
            N = data.tax.num_nodes
            cand = np.zeros(N, dtype=bool)
            cand[data.cand] = True
        for ps in m["per_seed"]:
            s = ps["seed"]
            f = run / f"per_item_seed{s}.npz"
            if not f.exists():
                continue
            if s not in has:
                sp = make_item_splits(data.items, N, cfg.zero_shot_frac, cfg.val_frac,
                                      cfg.test_frac, seed=s, candidates=cand)
                h = np.zeros(N, dtype=bool)
                h[sp.category[sp.rows("train")]] = True
                has[s] = h
            d = np.load(f, allow_pickle=True)
            z = d["slice"] == "zero"
            hit = d["p1"] > 0
            t1 = d["top1"]
            print(f"| {ds} | {run.name} | {s} | {has[s][data.cand].mean():.3f} | "
                  f"{has[s][t1[z]].mean():.3f} | {has[s][t1[z & ~hit]].mean():.3f} | "
                  f"{hit[z].mean():.3f} |")
