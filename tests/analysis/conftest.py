"""Tiny hand-built item run folders and run data for the analysis tests."""
import json

import numpy as np
import pytest
import torch

from hgraph.analysis.runs import RunData, item_settings
from hgraph.data.items import Items
from hgraph.data.taxonomy import Taxonomy


@pytest.fixture
def write_run():
    """``write_run(folder, settings, {seed: arrays or None}, per_seed_extra)``: a run
    folder with metrics.json (``per_seed``) and one per_item_seed<s>.npz per seed
    whose arrays are given (None: no file).  The flat item ``settings`` (dataset
    "toy" unless given) go where the run wrote them: ``metrics.json``'s
    ``run.config`` (folders before the one harness), or with ``config_json`` a
    versioned ``config.json``."""
    def make(folder, config=None, seeds=None, extra=None, config_json=False):
        folder.mkdir(parents=True, exist_ok=True)
        seeds = seeds or {}
        per_seed = [{"seed": s, **(extra or {}).get(s, {})} for s in seeds]
        flat = {"dataset": "toy", **(config or {})}
        run = {"task": "items"} if config_json else {"config": flat, "complete": True}
        m = {"run": run, "per_seed": per_seed, "mean_std": {}}
        (folder / "metrics.json").write_text(json.dumps(m))
        if config_json:
            (folder / "config.json").write_text(item_settings(flat).to_json())
        for s, arrays in seeds.items():
            if arrays is not None:
                np.savez(folder / f"per_item_seed{s}.npz", **arrays)
        return folder
    return make


@pytest.fixture
def toy_tree():
    """r -> a, b; a -> a1, a2; a1 -> a11; b -> b1 (ids via ``tax.index``)."""
    return Taxonomy.from_edges(["a", "b", "a1", "a2", "a11", "b1"],
                               ["r", "r", "a", "a", "a1", "b"])


def run_data(tax, rows, x_nodes=None, x_items=None, **splits):
    """RunData over ``tax`` with items ``rows`` [(text, node name)], every node
    but the root a candidate; split settings ``splits`` (default all 0: every
    item trains)."""
    items = Items([t for t, _ in rows], [tax.index(c) for _, c in rows], None)
    ids = items.item_ids()
    truth = [[] for _ in range(int(ids.max()) + 1)]
    for i, c in zip(ids, items.category):
        truth[i].append(int(c))
    cand = np.array([u for u in range(tax.num_nodes) if u != tax.root])
    s = {"zero_shot_frac": 0.0, "val_frac": 0.0, "test_frac": 0.0, **splits}
    return RunData(tax=tax, items=items, cand=cand,
                   truth=[np.asarray(t, dtype=np.int64) for t in truth],
                   x_nodes=None if x_nodes is None else torch.as_tensor(x_nodes),
                   x_items=None if x_items is None else torch.as_tensor(x_items),
                   split_settings=s)


@pytest.fixture
def make_data():
    """:func:`run_data` as a fixture (test modules import nothing from here)."""
    return run_data
