"""Does a category's parent text help the untrained cosine baseline?

P@1 of the ``features`` scorer (cosine of item and category text vectors, the
best of the candidates; :class:`hgraph.tasks.item_models.CosineScorer`) on one
seed's test items, overall and on seen and zero-shot categories, once per
``category_context`` k: each category's text followed by its first k
ancestors' (k = 0: its own text only).

Reads the config of one run folder (dataset, items, split settings; the run's
own ``category_context`` is replaced by each k);
the text vectors come from the sentence encoder's cache
(:func:`~hgraph.analysis.runs.load_run_data`: it encodes what is not cached).

    python pipelines/analyse.py context-features results/items/icd10cm/features
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np
import torch

from hgraph.analysis.runs import RunData, load_run_data, mean_or_nan, with_context
from hgraph.config import RunConfig
from hgraph.eval.items import precision_at, rank_scores


@torch.no_grad()
def cosine_p1(x_nodes: torch.Tensor, x_items: torch.Tensor, items: np.ndarray,
              truth: Sequence[np.ndarray], cand: np.ndarray, slices: np.ndarray,
              chunk: int = 512) -> Dict[str, float]:
    """P@1 of the cosine scorer: ``p1``, ``p1_seen`` (slices other than
    ``zero``), ``p1_zero``, and ``n`` items.

    ``x_nodes``: (N, F) category vectors; ``x_items``: (U, F) item vectors;
    ``items``: (n,) item ids scored; ``truth``: (n,) their true category ids;
    ``cand``: (C,) candidate ids; ``slices``: (n,) slice names.  Scored in
    chunks of ``chunk`` items as the item task scores its baselines.
    """
    xn = torch.nn.functional.normalize(torch.as_tensor(x_nodes), dim=-1)
    x = torch.as_tensor(x_items)[torch.as_tensor(np.asarray(items, dtype=np.int64))]
    cols = torch.as_tensor(np.asarray(cand, dtype=np.int64))
    tops = []
    for a in range(0, len(items), chunk):
        s = (torch.nn.functional.normalize(x[a:a + chunk], dim=-1) @ xn.T)[:, cols]
        tops.append(rank_scores(s, np.asarray(cand), truth[a:a + chunk], k=10)[0])
    top = np.concatenate(tops) if tops else np.zeros((0, 1), dtype=np.int64)
    hit = precision_at(top, truth, 1)
    zero = np.asarray(slices) == "zero"
    return {"p1": mean_or_nan(hit), "p1_seen": mean_or_nan(hit[~zero]),
            "p1_zero": mean_or_nan(hit[zero]), "n": int(len(hit))}


def context_features(config: RunConfig, seed: int = 0, contexts: Sequence[int] = (0, 1),
                     load: Callable[[RunConfig], RunData] = load_run_data) -> List[Dict]:
    """One row per k of ``contexts``: ``category_context`` k and :func:`cosine_p1`
    on seed ``seed``'s test items, the data of ``config`` (a run's config)
    loaded by ``load`` with ``items.category_context`` k."""
    rows = []
    for k in contexts:
        data = load(with_context(config, k))
        sp = data.splits(seed)
        test = sp.items_of("test")
        rows.append({"category_context": int(k),
                     **cosine_p1(data.x_nodes, data.x_items, test, [data.truth[i] for i in test],
                                 data.cand, sp.slice_of(test))})
    return rows


def context_feature_lines(rows: Sequence[Dict]) -> str:
    """``category_context k: P@1 ..., seen ..., zero-shot ...`` per row."""
    return "".join(f"category_context {r['category_context']}: P@1 {r['p1']:.4f}, "
                   f"seen {r['p1_seen']:.4f}, zero-shot {r['p1_zero']:.4f}\n" for r in rows)


__all__ = ["cosine_p1", "context_features", "context_feature_lines"]
