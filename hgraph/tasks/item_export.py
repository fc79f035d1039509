"""What placing new text needs from a trained item model, without the data: the
item side's weights, the candidates' points, names, keys and first parents
(``model_seed<S>.pt`` in the run folder; :func:`load_exported` reads it back,
for exports of every version: the settings are stored flat)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import torch

from hgraph import manifolds as M
from hgraph.config import RunConfig, flat_item_settings
from hgraph.tasks.item_data import ItemData
from hgraph.tasks.item_confidence import CONF_K


def export_model(model, data: ItemData, cfg: RunConfig, path: Path,
                 temperature: float = 1.0) -> None:
    """What placing new text needs, without the data: the model's placing side
    (:meth:`export_state`: a trained item tower and the candidates' points, or a
    baseline's vectors), the candidates' keys, names and first parents (for paths),
    the confidence temperature fitted on validation and the text encoder's name."""
    par = data.tax.child_to_parent
    parent = np.array([par.indices[par.indptr[i]] if par.indptr[i + 1] > par.indptr[i] else -1
                       for i in range(data.tax.num_nodes)], dtype=np.int64)
    keys = data.tax.keys if data.tax.keys is not None else data.tax.names
    names = [str(n) for n in (data.names if data.names is not None else data.tax.names)]
    torch.save({"config": flat_item_settings(cfg), **model.export_state(data),
                "in_dim": int(data.x_nodes.shape[1]), "dtype": str(data.x_nodes.dtype),
                "cand": torch.as_tensor(data.cand), "temperature": float(temperature),
                "conf_k": CONF_K, "names": names,
                "keys": [str(k) for k in keys], "parent": torch.as_tensor(parent)}, path)


def load_exported(path) -> Tuple[Any, Dict[str, Any]]:
    """(item tower on its manifold, the export's dict) of :func:`export_model`; the
    tower is None for an untrained baseline (``d["kind"]`` "cosine" or "knn")."""
    from hgraph.tasks.item_models import ItemAdapter, ItemTower, TextHead, make_tower
    d = torch.load(path, map_location="cpu", weights_only=False)
    if d.get("kind", "tower") != "tower":          # a baseline: no tower to rebuild
        return None, d
    cfg = d["config"]
    manifold = M.make_manifold(cfg["manifold"], 1.0, False)
    tower = make_tower(manifold, d["in_dim"], cfg["hidden"], cfg["layers"])
    tower.load_state_dict(d["tower"])
    adapter = None
    if d.get("adapter") is not None:
        adapter = ItemAdapter(d["in_dim"], cfg["item_adapter"])
        adapter.load_state_dict(d["adapter"])
    head = None
    if d.get("text_head") is not None:
        head = TextHead.from_encoder(cfg["text_encoder"], cfg["item_text_layers"],
                                     cfg.get("text_precision") or "float32")
        head.load_state_dict(d["text_head"])
    return ItemTower(tower, adapter, head).to(d["cat_points"].dtype).eval(), d


__all__ = ["export_model", "load_exported"]
