#!/usr/bin/env python
"""Does a code's parent text help the untrained cosine baseline?  P@1 of the `features`
scorer on ICD-10-CM (seed 0's split and test items) with each code's own description and
with `category_context` 1 (its description, " ; ", its first parent's).

    python results/items/context_features.py      (prints one line per variant)
"""
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from hgraph.data.item_splits import make_item_splits  # noqa: E402
from hgraph.data.text import encode_texts  # noqa: E402
from hgraph.tasks.items import (ItemTaskConfig, build, context_texts, item_metrics,  # noqa: E402
                                load_item_data, score_items, summarize)

torch.set_num_threads(1)
cfg = ItemTaskConfig(encoder="features", dataset="icd10cm:no7th", progress=False)
data = load_item_data(cfg, torch.device("cpu"))
N = data.tax.num_nodes
cand = np.zeros(N, dtype=bool)
cand[data.cand] = True
sp = make_item_splits(data.items, N, cfg.zero_shot_frac, cfg.val_frac, cfg.test_frac, seed=0,
                      candidates=cand)
test = sp.items_of("test")
for k in (0, 1):
    x = data.x_nodes if k == 0 else torch.as_tensor(
        encode_texts(context_texts(data.tax, k), model=cfg.text_encoder, progress=False))
    d = dataclasses.replace(data, x_nodes=x)
    top, rank = score_items(build(cfg, d, sp, 0), d, test, k=10)
    m = summarize(item_metrics(top, rank, [d.truth[i] for i in test], d.adj, d.up_hops, cand),
                  sp.slice_of(test))
    print(f"category_context {k}: P@1 {m['p1']:.4f}, seen {m['p1_seen']:.4f}, "
          f"zero-shot {m['p1_zero']:.4f}")
