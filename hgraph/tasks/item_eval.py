"""Evaluation of the item task: ranking every candidate for each item, the
metrics overall and per slice, and the cost of placing items and adding
categories to a trained model.

Every model — trained or an untrained baseline — answers the same calls
(:meth:`rank`, :meth:`timed_placement`, :meth:`place_new_categories`,
declared ``reads_token_states`` / ``places_new``), so nothing here asks which
kind it has.
"""
from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np
import torch

from hgraph.config import RunConfig
from hgraph.data.item_splits import SLICES, slice_mask
from hgraph.data.text import node_texts
from hgraph.tasks.item_data import ItemData, item_input_from_texts

Tensor = torch.Tensor
METRICS = ("p1", "p5", "mrr", "hp5", "tree_dist")


def score_items(model, data: ItemData, items: np.ndarray, k: int = 10, z_cats=None,
                offset: Optional[Tensor] = None):
    """(topk (n, k), rank (n,)) of items ``items`` (item ids) over the candidates
    (``offset``: (C,) added to the distances, trained models only)."""
    k = min(k, len(data.cand))
    return model.rank(data, items, k=k, z_cats=z_cats, offset=offset)


def summarize(per_item: Dict[str, np.ndarray], slices: np.ndarray) -> Dict[str, float]:
    """Means of every metric overall and per slice (``<metric>`` and
    ``<metric>_<slice>``; slice ``seen`` = ``head`` and ``tail``)."""
    out: Dict[str, float] = {"n_test": int(len(slices))}
    for m in METRICS:
        v = per_item[m]
        fin = np.isfinite(v)
        out[m] = float(v[fin].mean()) if fin.any() else float("nan")
        for s in SLICES + ("seen",):
            sel = slice_mask(slices, s) & fin
            out[f"{m}_{s}"] = float(v[sel].mean()) if sel.any() else float("nan")
    for s in SLICES:
        out[f"n_{s}"] = int((slices == s).sum())
    return out


def placement_cost(model, data: ItemData, cfg: RunConfig, n_items: int = 1000,
                   n_new: int = 1000, seed: int = 0) -> Dict[str, float]:
    """Items per second (model + ranking over every candidate; and with the text
    encoding), and seconds to add ``n_new`` categories (text + parent) to the
    trained model, with and without encoding their text.  (The node task's
    :func:`hgraph.eval.suite.inference_cost` times embedding nodes instead.)"""
    rng = np.random.default_rng(seed)
    U = len(data.item_texts)
    sel = rng.choice(U, size=min(n_items, U), replace=False)
    t0 = time.perf_counter()
    x = item_input_from_texts([data.item_texts[i] for i in sel], cfg.data.text_encoder,
                              cfg.items.item_text_layers if model.reads_token_states else 0,
                              dtype=data.x_items.dtype, device=data.x_items.device,
                              precision=cfg.data.text_precision)
    enc = time.perf_counter() - t0
    ctx = model.placement_context(data)
    t0 = time.perf_counter()
    model.timed_placement(x, ctx, k=min(10, len(data.cand)))
    place = time.perf_counter() - t0
    out = {"items_per_s": len(sel) / max(place, 1e-9),
           "items_per_s_with_text": len(sel) / max(place + enc, 1e-9)}
    if not model.places_new:
        out.update({"new_categories_s": float("nan"), "new_categories_s_with_text": float("nan")})
        return out
    # n_new new categories: copies of random candidates' text, each under that candidate's parent
    tax = data.tax
    src = rng.choice(data.cand[data.cand != 0] if len(data.cand) > 1 else data.cand,
                     size=n_new)
    all_texts = node_texts(tax)
    texts = [all_texts[i] for i in src]
    shared = model.encodes_categories_as_items
    t0 = time.perf_counter()
    # a shared text head encodes categories as items: the lower layers' states, then the head
    xnew = item_input_from_texts(texts, cfg.data.text_encoder,
                                 cfg.items.item_text_layers if shared else 0,
                                 dtype=data.x_nodes.dtype, device=data.x_nodes.device,
                                 precision=cfg.data.text_precision)
    enc_new = time.perf_counter() - t0
    par = tax.child_to_parent
    parents = np.array([par.indices[par.indptr[c]] if par.indptr[c + 1] > par.indptr[c]
                        else c for c in src])
    t0 = time.perf_counter()
    model.place_new_categories(xnew, parents, data)
    add = time.perf_counter() - t0
    out.update({"new_categories_s": add, "new_categories_s_with_text": add + enc_new})
    return out


__all__ = ["METRICS", "score_items", "summarize", "placement_cost"]
