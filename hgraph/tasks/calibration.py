"""Calibrated stacking: a distance handicap for categories that had training items.

A trained item tower learns where items usually go: its zero-shot mistakes
land on categories with training items far more often than their share of the
candidates (``results/items/seen_bias.md``).  Generalised zero-shot learning
has the standard remedy, *calibrated stacking* (Chao, Changpinyo, Gong & Sha,
"An empirical study and analysis of generalized zero-shot learning for object
recognition in the wild", ECCV 2016): subtract a constant γ from the scores
of the seen classes -- here, add γ to the distance of every candidate that has
a training item -- and choose γ on held-out data that contains unseen classes.

The validation split has no unseen categories (the zero-shot ones are all
test), so γ is chosen on an *inner* split of the training data only:
:func:`hold_out_categories` takes a further fraction of the categories with
training items and removes their training items; a twin model is trained on
the rest with the same settings; its "unseen" evaluation items are the held-out
training items and the validation items of those categories, its "seen" ones
the other validation items.  γ maximises the harmonic mean of P@1 on the two
(the GZSL summary of Xian et al., CVPR 2017) and is then applied to the model
trained on all training items.  No test item is looked at.

P@1 is piecewise constant in γ and changes only where γ equals an item's
``best unseen distance - best seen distance``, so the search is exact over
those points (:func:`p1_curve`) rather than a grid.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Dict, Tuple

import numpy as np
import torch

from hgraph import manifolds as M
from hgraph.data.item_splits import ItemSplits
from hgraph.tasks.item_models import embed_categories, embed_items

Tensor = torch.Tensor


def hold_out_categories(sp: ItemSplits, frac: float, seed: int) -> Tuple[ItemSplits, np.ndarray]:
    """(inner split, held-out item ids): ``frac`` of the categories with
    training items (seeded) lose every training item -- those items get part
    ``"heldout"`` (neither trained on nor validated on, like the zero-shot
    slice); an item with several categories is held out when any of them is."""
    has = np.flatnonzero(sp.train_count > 0)
    rng = np.random.default_rng(10_000 + seed)
    k = int(round(frac * len(has)))
    held_cats = np.sort(rng.choice(has, size=k, replace=False)) if k else has[:0]
    held_mask = np.zeros(len(sp.train_count), dtype=bool)
    held_mask[held_cats] = True
    touch = np.zeros(len(sp.part), dtype=bool)
    np.logical_or.at(touch, sp.item, held_mask[sp.category])
    part = sp.part.copy()
    held_items = np.flatnonzero(touch & (part == "train"))
    part[held_items] = "heldout"
    train_rows = part[sp.item] == "train"
    count = np.bincount(sp.category[train_rows], minlength=len(sp.train_count)).astype(np.int64)
    return replace(sp, part=part, train_count=count,
                   zero_shot=np.union1d(sp.zero_shot, held_cats)), held_items


@torch.no_grad()
def group_minima(model, data, items: np.ndarray, seen: np.ndarray, chunk: int = 512) -> Dict:
    """Per item: the smallest distance to a seen and to an unseen candidate
    (``seen``: (C,) bool over ``data.cand``), and whether that nearest one in
    each group is a true category.  Arrays ``d_seen, d_unseen, hit_seen,
    hit_unseen`` of length ``len(items)`` (``inf`` / False for an empty group)."""
    zc = embed_categories(model, data.cand)
    seen_t = torch.as_tensor(seen, device=zc.device)
    out = {k: [] for k in ("d_seen", "d_unseen", "hit_seen", "hit_unseen")}
    zi = embed_items(model, data, items) if len(items) else None
    for a in range(0, len(items), chunk):
        ids = items[a:a + chunk]
        d = M.pairwise_dist(model.manifold, zi[a:a + chunk], zc)
        for name, mask in (("seen", seen_t), ("unseen", ~seen_t)):
            dd = d.masked_fill(~mask, float("inf"))
            v, j = dd.min(dim=1)
            out[f"d_{name}"].append(v.double().cpu().numpy())
            top = data.cand[j.cpu().numpy()]
            out[f"hit_{name}"].append(np.array([bool(np.isfinite(x)) and int(c) in data.truth[i]
                                                for x, c, i in zip(v.tolist(), top, ids)]))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}


def p1_at(g: Dict, gamma) -> np.ndarray:
    """P@1 per item with handicap ``gamma`` (scalar, or (G,) -> (G, n)): the
    nearest seen candidate wins when ``d_seen + gamma < d_unseen``."""
    gam = np.asarray(gamma, dtype=float)[..., None]
    seen_wins = g["d_seen"] + gam < g["d_unseen"]
    return np.where(seen_wins, g["hit_seen"], g["hit_unseen"]).astype(float)


def p1_curve(g: Dict) -> np.ndarray:
    """The γ >= 0 where any item's top-1 can change: 0 and the points just
    past each ``d_unseen - d_seen`` (ascending)."""
    gap = g["d_unseen"] - g["d_seen"]
    gap = np.unique(gap[np.isfinite(gap) & (gap >= 0)])
    return np.concatenate([[0.0], np.nextafter(gap, np.inf)])


def choose_gamma(g_seen: Dict, g_unseen: Dict) -> Dict[str, float]:
    """γ maximising the harmonic mean of P@1 on items of seen and of unseen
    categories (the smallest such γ); with the P@1 pair at γ = 0 and at γ."""
    cands = np.union1d(p1_curve(g_seen), p1_curve(g_unseen))
    s = p1_at(g_seen, cands).mean(axis=1) if len(g_seen["d_seen"]) else np.zeros(len(cands))
    u = p1_at(g_unseen, cands).mean(axis=1) if len(g_unseen["d_seen"]) else np.zeros(len(cands))
    h = np.where(s + u > 0, 2 * s * u / np.maximum(s + u, 1e-12), 0.0)
    j = int(np.argmax(h))     # first maximum: the smallest γ
    return {"gamma": float(cands[j]), "val_p1_seen": float(s[j]), "val_p1_unseen": float(u[j]),
            "val_h": float(h[j]), "val_p1_seen_0": float(s[0]), "val_p1_unseen_0": float(u[0]),
            "val_h_0": float(h[0]), "val_n_seen": int(len(g_seen["d_seen"])),
            "val_n_unseen": int(len(g_unseen["d_seen"]))}


__all__ = ["hold_out_categories", "group_minima", "p1_at", "p1_curve", "choose_gamma"]
