"""The item -> category task's settings inside the one config tree.

* :data:`ITEM_PRESET` — the defaults of ``task: items`` (filled into fields a user did not
  set, instead of the node encoders' presets): an item step is a batch of labelled texts
  against a softmax over their categories and sampled negatives, not a batch of pairs.
* :func:`nest_item_settings` — the flat layout of item configs (``configs/items_*.yaml``,
  ``pipelines/items.py`` flags) and of item run folders written before the one harness
  (``metrics.json["run"]["config"]``) -> the sections of :class:`~hgraph.config.RunConfig`.
* :func:`validate_items` — the checks only an item run needs (no registry: the encoder's
  name is checked against the item models where the run starts).
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Dict

from hgraph.config.schema import ItemsConfig, RunConfig
from hgraph.errors import HGraphInputError

#: defaults of an item run (chosen on validation in the item-task rounds: results/items)
ITEM_PRESET: Dict[str, Any] = {
    "data": {"dataset": "icd10cm:no7th", "val_frac": 0.1, "test_frac": 0.2},
    "model": {"encoder": "ramen", "manifold": "poincare", "hidden": 256, "layers": 2},
    # Adam per step (independent of the batch); validation P@1 every epoch, early stop
    # after 3 without a new best; the untrained model is scored as epoch 0
    "train": {"lr": 1e-3, "batch_size": 512, "negatives": 4096, "epochs": 30, "patience": 3,
              "eval_every": 1, "burnin": 0, "checkpoint_every": 1},
    # the regulariser of an item run acts from the first step (no warm-up)
    "reg": {"reg_warmup": 0},
}

#: per item encoder, over the item preset: ramen uses the graph as its regulariser.  λ chosen
#: on validation P@1 (configs/items_lambda.yaml: HPO nervous system, seed 0, 470 validation
#: items): λ 0 / 0.03 / 0.1 / 0.3 / 1.0 gave 0.706 / 0.715 / 0.711 / 0.715 / 0.719 (a spread
#: of 6 items; results/items/lambda)
ITEM_ENCODER_PRESETS: Dict[str, Dict[str, Any]] = {"ramen": {"reg": {"reg_lambda": 1.0}}}

#: flat item setting -> (section, field); run-level fields map to (None, field)
_SHARED = {"dataset": ("data", "dataset"), "text_encoder": ("data", "text_encoder"),
           "text_precision": ("data", "text_precision"),
           "val_frac": ("data", "val_frac"), "test_frac": ("data", "test_frac"),
           "encoder": ("model", "encoder"), "manifold": ("model", "manifold"),
           "hidden": ("model", "hidden"), "layers": ("model", "layers"),
           "dropout": ("model", "dropout"), "lr": ("train", "lr"),
           "batch_size": ("train", "batch_size"), "negatives": ("train", "negatives"),
           "epochs": ("train", "epochs"), "patience": ("train", "patience"),
           "time_cap_s": ("train", "time_cap_s"), "reg_lambda": ("reg", "reg_lambda"),
           "reg_kinds": ("reg", "reg_kinds"), "reg_margin": ("reg", "reg_margin")}
_RUN = ("seeds", "device", "threads", "dtype", "out", "name", "progress")
ITEM_KEYS: Dict[str, tuple] = {**_SHARED, **{k: (None, k) for k in _RUN},
                               **{f.name: ("items", f.name) for f in fields(ItemsConfig)
                                  if f.name != "sibling_negatives"},
                               # the flag of the regulariser's hard negatives has this name
                               "hard_negatives": ("items", "sibling_negatives")}


def nest_item_settings(flat: Dict[str, Any], source: str = "<config>") -> Dict[str, Any]:
    """A flat dict of item settings (``encoder``, ``lr``, ``zero_shot_frac``, ...) as the
    nested dict of an item run (``task: items``); unknown keys are refused."""
    bad = sorted(set(flat) - set(ITEM_KEYS))
    if bad:
        raise HGraphInputError(f"unknown item-task setting(s) {', '.join(bad)}", file=source,
                               fix=f"use some of: {', '.join(sorted(ITEM_KEYS))}")
    out: Dict[str, Any] = {"task": "items"}
    for k, v in flat.items():
        sec, name = ITEM_KEYS[k]
        if sec is None:
            out[name] = v
        else:
            out.setdefault(sec, {})[name] = v
    return out


def flat_item_settings(cfg: RunConfig) -> Dict[str, Any]:
    """The inverse of :func:`nest_item_settings`: ``cfg``'s item settings, flat."""
    out = {}
    for k, (sec, name) in ITEM_KEYS.items():
        v = getattr(cfg if sec is None else getattr(cfg, sec), name)
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def validate_items(cfg: RunConfig, bad) -> None:
    """Reject item settings no item run can use (``bad(message)`` raises)."""
    it, m, t = cfg.items, cfg.model, cfg.train
    if it.item_text_layers < 0 or it.item_adapter < 0 or it.category_context < 0:
        bad("items.item_text_layers, item_adapter and category_context are >= 0")
    if it.shared_text_head and (not it.item_text_layers or m.encoder not in ("ramen", "hgcn")):
        bad("items.shared_text_head needs item_text_layers >= 1 and the ramen or hgcn "
            "encoder (categories from their text)")
    if it.reg_through_text and not it.shared_text_head:
        bad("items.reg_through_text needs shared_text_head (the categories' text through "
            "the trained layers)", fix="add --shared-text-head --item-text-layers 1")
    if it.rerank and it.rerank < 10:
        bad(f"items.rerank is 0 (off) or a list length >= 10, not {it.rerank}",
            fix="rerank: 20")
    if m.manifold not in ("poincare", "euclidean"):
        bad(f"the item task runs on poincare or euclidean, not {m.manifold!r}")
    if not 0 <= it.zero_shot_frac < 1:
        bad(f"items.zero_shot_frac must be in [0, 1), got {it.zero_shot_frac}")
    for name in ("sibling_negatives", "mined_negatives", "val_max", "cost_items"):
        if getattr(it, name) < 0:
            bad(f"items.{name} must be >= 0, got {getattr(it, name)}")
    for name in ("mine_k", "reg_anchors", "gcn_hidden", "gcn_layers"):
        if getattr(it, name) < 1:
            bad(f"items.{name} must be >= 1, got {getattr(it, name)}")
    for name in ("table_lr", "gate_lr", "text_lr"):
        if not getattr(it, name) > 0:
            bad(f"items.{name} must be > 0, got {getattr(it, name)}")
    if t.trainer != "loop":
        bad("the item task trains with the loop", fix="drop --trainer fused")


__all__ = ["ITEM_PRESET", "ITEM_ENCODER_PRESETS", "ITEM_KEYS", "nest_item_settings", "flat_item_settings",
           "validate_items"]
