#!/usr/bin/env python
"""Where in the tree do a run's zero-shot misses land?  For each run folder given and
each of its seeds: the zero-shot test items' top-1 code against the true code — the
true code's parent, child, sibling, grandparent / grandchild, or further away — as
shares of the misses, and the median cosine of the two codes' frozen text vectors.

    python results/items/zero_shot_misses.py results/items/icd10cm/ramen [more runs]
"""
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from hgraph.tasks.items import config_from_dict, load_item_data  # noqa: E402

torch.set_num_threads(1)
KINDS = ("parent", "child", "sibling", "grandparent", "grandchild", "further")
print("| run | seed | zero-shot items | misses | " + " | ".join(KINDS)
      + " | median cosine top-1 / truth |")
print("|---" * (len(KINDS) + 5) + "|")
data = None
for run in map(Path, sys.argv[1:]):
    m = json.loads((run / "metrics.json").read_text())
    if data is None:
        data = load_item_data(config_from_dict({**m["run"]["config"], "progress": False}),
                              torch.device("cpu"))
        c2p = data.tax.child_to_parent
        parents = [set(c2p.indices[c2p.indptr[u]:c2p.indptr[u + 1]].tolist())
                   for u in range(data.tax.num_nodes)]
        xn = torch.nn.functional.normalize(data.x_nodes, dim=-1)
    for ps in m["per_seed"]:
        a = np.load(run / f"per_item_seed{ps['seed']}.npz")
        zero = a["slice"] == "zero"
        cnt, cos = Counter(), []
        for i, t in zip(a["items"][zero], a["top1"][zero]):
            truth = data.truth[i]
            if t in truth:
                continue
            c = int(truth[0])
            if t in parents[c]:
                k = "parent"
            elif c in parents[t]:
                k = "child"
            elif parents[t] & parents[c]:
                k = "sibling"
            elif any(t in parents[p] for p in parents[c]):
                k = "grandparent"
            elif any(c in parents[p] for p in parents[t]):
                k = "grandchild"
            else:
                k = "further"
            cnt[k] += 1
            cos.append(float(xn[t] @ xn[c]))
        n = sum(cnt.values())
        print(f"| {run.name} | {ps['seed']} | {int(zero.sum())} | {n} | "
              + " | ".join(f"{cnt[k] / max(n, 1):.3f}" for k in KINDS)
              + f" | {np.median(cos):.3f} |")
