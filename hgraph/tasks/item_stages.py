"""The item task's later stages over a trained first stage: a twin model trained
without a further share of categories (:func:`twin`), calibrated stacking
(:func:`calibrated`, :mod:`hgraph.tasks.calibration`) and the learned second
stage (:func:`reranked`, :mod:`hgraph.tasks.rerank`), both fitted on the twin's
validation lists and applied to test."""
from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np
import torch

from hgraph.config import RunConfig
from hgraph.data.item_splits import ItemSplits
from hgraph.eval.items import item_metrics
from hgraph.tasks.item_data import ItemData
from hgraph.tasks.item_eval import score_items, summarize
from hgraph.tasks.item_fit import build, train_items


def twin(cfg: RunConfig, data: ItemData, sp: ItemSplits, seed: int):
    """(inner split, held-out item ids, twin model, its training info, seconds): the
    model of ``cfg`` trained on :func:`hgraph.tasks.calibration.hold_out_categories`'
    inner split (an untrained baseline is just built on it), shared by calibrated
    stacking and the reranker."""
    from hgraph.tasks import calibration as C
    t0 = time.perf_counter()
    inner, held = C.hold_out_categories(sp, cfg.items.zero_shot_frac, seed)
    model = build(cfg, data, inner, seed)
    info = train_items(model, data, inner, replace(cfg, progress=False), seed) \
        if model.trainable else {"train_time_s": 0.0, "best_val_p1": float("nan")}
    return inner, held, model, info, time.perf_counter() - t0


def calibrated(cfg: RunConfig, data: ItemData, sp: ItemSplits, seed: int, model,
                test: np.ndarray, slices: np.ndarray, cand_mask: np.ndarray, twin_parts):
    """Calibrated stacking (:mod:`hgraph.tasks.calibration`): the twin model on
    the inner split (:func:`twin`) chooses γ on validation; ``model`` is scored on
    ``test`` with γ added to the distance of every candidate with a training item.
    -> (``cal_*`` metrics, ``cal_*`` per-item arrays incl. the test items'
    group minima, from which the whole γ curve can be redrawn)."""
    from hgraph.tasks import calibration as C
    t0 = time.perf_counter()
    inner, held, twin, twin_info, twin_s = twin_parts
    val = sp.items_of("val")
    val_zero = inner.slice_of(val) == "zero"
    seen_in = inner.train_count[data.cand] > 0
    g_seen = C.group_minima(twin, data, val[~val_zero], seen_in)
    g_unseen = C.group_minima(twin, data, np.concatenate([val[val_zero], held]), seen_in)
    choice = C.choose_gamma(g_seen, g_unseen)
    seen = sp.train_count[data.cand] > 0
    offset = torch.as_tensor(np.where(seen, choice["gamma"], 0.0), dtype=data.x_nodes.dtype,
                             device=data.x_nodes.device)
    top, rank = score_items(model, data, test, k=10, offset=offset)
    per_item = item_metrics(top, rank, [data.truth[i] for i in test], data.adj, data.up_hops,
                            cand_mask)
    g_test = C.group_minima(model, data, test, seen)
    m = {f"cal_{k}": v for k, v in summarize(per_item, slices).items() if not k.startswith("n_")}
    m.update({f"cal_{k}": v for k, v in choice.items()})
    m.update({"cal_twin_train_s": twin_info["train_time_s"],
              "cal_twin_best_val_p1": twin_info["best_val_p1"],
              "cal_time_s": time.perf_counter() - t0 + twin_s})
    if cfg.progress:
        print(f"  calibration: gamma {choice['gamma']:.4f} (validation P@1 seen "
              f"{choice['val_p1_seen_0']:.3f} -> {choice['val_p1_seen']:.3f}, unseen "
              f"{choice['val_p1_unseen_0']:.3f} -> {choice['val_p1_unseen']:.3f}); test P@1 "
              f"{m['cal_p1']:.4f} (seen {m['cal_p1_seen']:.4f}, zero {m['cal_p1_zero']:.4f})",
              file=sys.stderr)
    arrays = {f"cal_{k}": v for k, v in per_item.items()}
    arrays.update({"cal_top1": top[:, 0], "cal_rank": rank,
                   **{f"test_{k}": v for k, v in g_test.items()}})
    return m, arrays


def reranked(cfg: RunConfig, data: ItemData, sp: ItemSplits, seed: int, model,
              test: np.ndarray, slices: np.ndarray, cand_mask: np.ndarray, twin_parts,
              first_rank: np.ndarray):
    """The learned second stage (:mod:`hgraph.tasks.rerank`): fitted on the twin's
    top-``cfg.items.rerank`` lists for the validation items of the inner split's seen
    categories and for the held-out categories' items, then applied to ``model``'s
    lists for ``test`` (``first_rank``: the first stage's rank of each test item's
    truth).  -> (``rr_*`` metrics, ``rr_*`` per-item arrays)."""
    from hgraph.tasks import rerank as RR
    t0 = time.perf_counter()
    inner, held, twin, twin_info, twin_s = twin_parts
    val = sp.items_of("val")
    val_zero = inner.slice_of(val) == "zero"
    feats = RR.ListFeatures(data)
    groups = []
    for items in (val[~val_zero], np.concatenate([val[val_zero], held])):
        ids, score = RR.candidate_lists(twin, data, items, cfg.items.rerank)
        groups.append((feats(items, ids, score, inner.train_count),
                       RR.labels(ids, [data.truth[i] for i in items])))
    rr = RR.Reranker(seed)
    fit = rr.fit(groups)
    ids, score = RR.candidate_lists(model, data, test, cfg.items.rerank)
    order = rr.order(feats(test, ids, score, sp.train_count), cfg.items.rerank)
    truth = [data.truth[i] for i in test]
    top, rank = RR.reranked(ids, order, first_rank, truth)
    per_item = item_metrics(top, rank, truth, data.adj, data.up_hops, cand_mask)
    m = {f"rr_{k}": v for k, v in summarize(per_item, slices).items() if not k.startswith("n_")}
    m.update({"rr_k": cfg.items.rerank, "rr_fit_items_seen": fit["items_0"],
              "rr_fit_items_unseen": fit["items_1"], "rr_iterations": fit["iterations"],
              "rr_twin_train_s": twin_info["train_time_s"], "rr_twin_s": twin_s,
              "rr_time_s": time.perf_counter() - t0})
    if cfg.progress:
        print(f"  reranker (top {cfg.items.rerank}, fitted on {fit['items_0']} seen + "
              f"{fit['items_1']} unseen items): test P@1 {m['rr_p1']:.4f} (seen "
              f"{m['rr_p1_seen']:.4f}, zero {m['rr_p1_zero']:.4f})", file=sys.stderr)
    arrays = {f"rr_{k}": v for k, v in per_item.items()}
    arrays.update({"rr_top1": top[:, 0], "rr_rank": rank})
    return m, arrays


__all__ = ["twin", "calibrated", "reranked"]
