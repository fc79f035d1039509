"""Building and training one item model: :func:`build` (a trained model of
:data:`~hgraph.tasks.item_models.ITEM_MODELS` or an untrained baseline of
:data:`~hgraph.tasks.item_models.SCORERS`) and :func:`train_items` (the one
loop, :func:`hgraph.train.loop.train`, over :class:`ItemBatches`)."""
from __future__ import annotations

import sys
from typing import Any, Callable, Dict, Optional

import torch

from hgraph import manifolds as M
from hgraph.config import RunConfig
from hgraph.data.item_splits import ItemSplits
from hgraph.tasks.item_batches import ItemBatches
from hgraph.tasks.item_data import ItemData
from hgraph.tasks.item_models import ITEM_MODELS, SCORERS, TextHead
from hgraph.train.loop import train

#: fewer validation items than this: a warning that the choice of epoch is noisy
MIN_VAL_ITEMS = 50


def build(cfg: RunConfig, data: ItemData, sp: ItemSplits, seed: int):
    """The model (trained kind) or scorer (baseline) of ``cfg.model.encoder``."""
    if cfg.model.encoder in SCORERS:
        tr = sp.rows("train")
        x_train = data.x_items[torch.as_tensor(sp.item[tr], device=data.x_items.device)]
        return SCORERS[cfg.model.encoder](data.x_nodes, x_train,
                                    torch.as_tensor(sp.category[tr], device=x_train.device))
    manifold = M.make_manifold(cfg.model.manifold, 1.0, False)
    torch.manual_seed(seed)
    model = ITEM_MODELS[cfg.model.encoder](manifold, data.x_nodes, data.edge_index, hidden=cfg.model.hidden,
                                     layers=cfg.model.layers, dropout=cfg.model.dropout,
                                     gcn_hidden=cfg.items.gcn_hidden, gcn_layers=cfg.items.gcn_layers,
                                     item_adapter=cfg.items.item_adapter,
                                     text_head=TextHead.from_encoder(cfg.data.text_encoder,
                                                                     cfg.items.item_text_layers,
                                                                     cfg.data.text_precision)
                                     if cfg.items.item_text_layers else None)
    model = model.to(device=data.x_nodes.device, dtype=data.x_nodes.dtype)
    if data.node_states is not None:
        model.share_text_head(data.node_states)
    return model


def train_items(model, data: ItemData, sp: ItemSplits, cfg: RunConfig, seed: int,
                checkpoint: Optional[Callable] = None, resume: Optional[Dict] = None
                ) -> Dict[str, Any]:
    """Train ``model`` in place with the one loop; the best validation P@1 is kept
    (the untrained model scored as epoch 0).  -> train_time_s, best_epoch,
    epochs_run, best_val_p1, history (and stop_reason when it stopped early)."""
    batches = ItemBatches(model, data, sp, cfg, seed)
    n_val = len(batches.val_items)
    if n_val == 0:
        print("warning: no validation items (val_frac 0 or too few items): the last epoch's "
              "model is kept", file=sys.stderr)
    elif n_val < MIN_VAL_ITEMS:
        print(f"warning: {n_val} validation items: too few for a reliable choice of epoch "
              f"(want >= {MIN_VAL_ITEMS}; raise val_frac)", file=sys.stderr)
    res = train(model, batches, cfg.train, device=data.x_items.device, seed=seed,
                progress=cfg.progress, checkpoint=checkpoint, resume=resume)
    if n_val and res.best_epoch == 0 and res.epochs_run > 0:
        print(f"warning: seed {seed}: no trained epoch reached the untrained model's "
              f"validation P@1 ({res.best_val:.4f} on {n_val} items): the untrained model "
              f"(epoch 0) is kept", file=sys.stderr)
    return {"train_time_s": res.train_time_s, "best_epoch": res.best_epoch,
            "epochs_run": res.epochs_run, "best_val_p1": res.best_val, "history": res.history,
            "bad_steps": res.bad_steps, "stop_reason": res.stop_reason}


__all__ = ["build", "train_items"]
