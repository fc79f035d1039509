"""Where in the tree do a run's zero-shot misses land?

For each run and seed: each zero-shot test item whose top-1 category is not one
of its true categories is a miss; the top-1 is placed against the item's first
true category: its ``parent``, ``child``, ``sibling`` (a shared parent),
``grandparent``, ``grandchild``, or ``further`` (none of those) — the first kind
that applies, in that order.  Reported as shares of the misses, with the median
cosine of the two categories' frozen text vectors.

Reads each run folder's config (the dataset), ``metrics.json`` (``per_seed``:
the seeds) and ``per_item_seed<s>.npz`` (``items``, ``slice``, ``top1``); the
truth, the parents and the text vectors come from the run's data
(:func:`~hgraph.analysis.runs.load_run_data`).

    python pipelines/analyse.py zero-shot-misses results/items/icd10cm/ramen ... \\
        --out results/items/zero_shot_misses.md
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Dict, List, Sequence, Set

import numpy as np
import torch

from hgraph.analysis.runs import Run, RunData
from hgraph.analysis.tables import markdown_table
from hgraph.data.taxonomy import Taxonomy

#: the kinds of miss, in the order they are tested
KINDS = ("parent", "child", "sibling", "grandparent", "grandchild", "further")
#: per-item arrays read
ARRAYS = ("items", "slice", "top1")
#: what the page says under its command
NOTE = '"further": more than two hops up or down and not a sibling.'


def parent_sets(tax: Taxonomy) -> List[Set[int]]:
    """(N,) the set of each node's parents."""
    c2p = tax.child_to_parent
    return [set(c2p.indices[c2p.indptr[u]:c2p.indptr[u + 1]].tolist())
            for u in range(tax.num_nodes)]


def miss_kind(top: int, true: int, parents: Sequence[Set[int]]) -> str:
    """The first of :data:`KINDS` that category ``top`` is of category ``true``."""
    if top in parents[true]:
        return "parent"
    if true in parents[top]:
        return "child"
    if parents[top] & parents[true]:
        return "sibling"
    if any(top in parents[p] for p in parents[true]):
        return "grandparent"
    if any(true in parents[p] for p in parents[top]):
        return "grandchild"
    return "further"


def zero_shot_misses(items: np.ndarray, slices: np.ndarray, top1: np.ndarray,
                     truth: Sequence[np.ndarray], parents: Sequence[Set[int]],
                     x_nodes: torch.Tensor) -> Dict[str, float]:
    """Misses of one seed: ``zero`` (zero-shot items), ``misses``, the share of
    each of :data:`KINDS` among the misses (0 with no miss) and
    ``median_cosine`` (NaN with no miss).

    ``items``, ``slices``, ``top1``: (n,) per test item (item id, slice name,
    top-1 id); ``truth``: per item id, its true category ids (the first one is
    the one compared with); ``x_nodes``: (N, F) category text vectors.
    """
    zero = np.asarray(slices) == "zero"
    xn = torch.nn.functional.normalize(torch.as_tensor(x_nodes), dim=-1)
    cnt, cos = Counter(), []
    for i, t in zip(np.asarray(items)[zero], np.asarray(top1)[zero]):
        true = truth[i]
        if t in true:
            continue
        c, t = int(true[0]), int(t)
        cnt[miss_kind(t, c, parents)] += 1
        cos.append(float(xn[t] @ xn[c]))
    n = sum(cnt.values())
    return {"zero": int(zero.sum()), "misses": n,
            **{k: cnt[k] / max(n, 1) for k in KINDS},
            "median_cosine": float(np.median(cos)) if cos else float("nan")}


def zero_shot_miss_rows(runs: Sequence[Run], data_for: Callable[[Run], RunData]) -> List[Dict]:
    """One row per run and seed: ``run``, ``seed`` and :func:`zero_shot_misses`'s
    values.  ``data_for(run)``: the run's data (needs ``truth``, ``tax``, ``x_nodes``)."""
    rows, parents = [], {}
    for run in runs:
        data = data_for(run)
        if id(data.tax) not in parents:
            parents[id(data.tax)] = parent_sets(data.tax)
        for ps in run.per_seed:
            a = run.per_item(int(ps["seed"]), ARRAYS)
            rows.append({"run": run.name, "seed": int(ps["seed"]),
                         **zero_shot_misses(a["items"], a["slice"], a["top1"], data.truth,
                                            parents[id(data.tax)], data.x_nodes)})
    return rows


def zero_shot_miss_table(rows: Sequence[Dict]) -> str:
    """The rows as a markdown table (shares and cosines to three decimals)."""
    return markdown_table(
        ["run", "seed", "zero-shot items", "misses", *KINDS, "median cosine top-1 / truth"],
        [[r["run"], r["seed"], r["zero"], r["misses"], *(f"{r[k]:.3f}" for k in KINDS),
          f"{r['median_cosine']:.3f}"] for r in rows])


__all__ = ["KINDS", "ARRAYS", "NOTE", "parent_sets", "miss_kind", "zero_shot_misses",
           "zero_shot_miss_rows", "zero_shot_miss_table"]
