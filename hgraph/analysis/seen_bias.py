"""Where do a run's zero-shot mistakes land: on categories with training items or not?

For each run and seed: the share of candidates that have training items under
that seed's split (the base rate), the share of zero-shot test items whose top-1
category has training items, the same among the zero-shot misses only, and the
zero-shot P@1.  A trained model that learnt "categories with items are where
items go" puts its zero-shot misses on such categories far above the base rate.

Reads each run folder's config (dataset and split settings), ``metrics.json``
(``per_seed``: the seeds) and ``per_item_seed<s>.npz`` (``slice``, ``top1``,
``p1``); the training categories come from redrawing the
seed's split (:meth:`~hgraph.analysis.runs.RunData.trained`).  Seeds without a
per-item file are skipped.

    python pipelines/analyse.py seen-bias results/items/icd10cm results/items/hpo \\
        --out results/items/seen_bias.md
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np

from hgraph.analysis.runs import Run, RunData, mean_or_nan
from hgraph.analysis.tables import markdown_table

#: per-item arrays read
ARRAYS = ("slice", "top1", "p1")
#: row key -> column header
COLUMNS = {"candidates_trained": "candidates with training items",
           "zero_top1_trained": "zero-shot top-1 on such",
           "zero_miss_trained": "... among the misses",
           "zero_p1": "zero-shot P@1"}


def seen_bias(slices: np.ndarray, top1: np.ndarray, p1: np.ndarray, trained: np.ndarray,
              cand: np.ndarray) -> Dict[str, float]:
    """The four shares of one seed (keys of :data:`COLUMNS`).

    ``slices``, ``top1``, ``p1``: (n,) per test item (slice name, top-1
    category id, 1.0 on a hit); ``trained``: (N,) True on the categories with
    training items; ``cand``: (C,) candidate ids.  A share over no items is NaN.
    """
    z = np.asarray(slices) == "zero"
    hit = np.asarray(p1) > 0
    t1 = np.asarray(top1, dtype=np.int64)
    trained = np.asarray(trained, dtype=bool)
    return {"candidates_trained": mean_or_nan(trained[cand]),
            "zero_top1_trained": mean_or_nan(trained[t1[z]]),
            "zero_miss_trained": mean_or_nan(trained[t1[z & ~hit]]),
            "zero_p1": mean_or_nan(hit[z])}


def seen_bias_rows(runs: Sequence[Run], data_for: Callable[[Run], RunData]) -> List[Dict]:
    """One row per run and seed with a per-item file: ``dataset`` (the run
    folder's parent's name), ``run``, ``seed`` and :func:`seen_bias`'s shares.
    ``data_for(run)``: the run's data (:class:`~hgraph.analysis.runs.DataCache`)."""
    rows = []
    for run in runs:
        data = None
        for ps in run.per_seed:
            s = int(ps["seed"])
            if not run.has_per_item(s):
                continue
            data = data or data_for(run)
            a = run.per_item(s, ARRAYS)
            rows.append({"dataset": run.path.parent.name, "run": run.name, "seed": s,
                         **seen_bias(a["slice"], a["top1"], a["p1"], data.trained(s),
                                     data.cand)})
    return rows


def seen_bias_table(rows: Sequence[Dict]) -> str:
    """The rows as a markdown table (shares to three decimals)."""
    return markdown_table(
        ["dataset", "run", "seed", *COLUMNS.values()],
        [[r["dataset"], r["run"], r["seed"], *(f"{r[k]:.3f}" for k in COLUMNS)] for r in rows])


__all__ = ["ARRAYS", "COLUMNS", "seen_bias", "seen_bias_rows", "seen_bias_table"]
