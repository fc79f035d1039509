"""Presets: per-encoder (and per encoder on a kind of features) defaults, filled
into the fields a user did not set, and the choice between the fused trainer
and the loop (which reads ``WORLD_SIZE``).

A dataset's default kind of features lives in the dataset registry, which this
package does not import: callers that know the registry pass it in as
``dataset_features`` (:func:`hgraph.registries.dataset_features`)."""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Tuple

from hgraph.config.schema import DataConfig, ModelConfig, RegConfig, TrainConfig

#: dataset name (before any ':') -> its default kind of features; None when unknown
DatasetFeatures = Callable[[str], Optional[str]]


#: Per-encoder defaults, applied to fields the user did not set (flag or YAML).
#: The encoders need different training set-ups: the shallow table learns the
#: whole closure at a high learning rate; hgcn and ramen are trained on the
#: same child -> parent task (so the comparison differs only in how the graph
#: is used) with Adam at a lower rate.  Values were chosen on validation
#: splits / reconstruction of the training graph, never on test edges.
#: shallow trains in float64: in float32 geoopt keeps ball points at norm <= 1 - 4e-3,
#: i.e. within distance ~6.2 of the origin, too little room for a 9-level hierarchy
#: (WordNet mammals dim 5 plateaus at MAP 0.72 in float32, passes 0.80 in float64
#: after 40 epochs); the reference implementation trains in float64 as well.
ENCODER_PRESETS: Dict[str, Dict[str, Any]] = {
    # A hyperboloid table trained by the fused trainer (hgraph.shallow_fit: closed-form
    # Riemannian SGD at a rate per positive pair, 3-4x faster an epoch than the loop) from
    # nested cones, no burn-in; the training closure's reconstruction MAP (2,000 fixed
    # sources) every 5 epochs keeps the best table, divides the rate by 5 after 4
    # validations without a new best (three times) and then stops.  Logits -d / 0.25: at
    # temperature 1 the loss pays for spreading ever further out and rows pile up at the
    # trainer's radius cap (mammals dim 5 stalls at 0.957); 0.5 / 0.25 reach 0.976 / 0.980
    # with the same settings, and the generated tree's sampled MAP after 6 epochs rises
    # from 0.989 to 0.994.  lr 0.5 at batch 1,024:
    # WordNet nouns (dim 10) rises fastest at high rates from the cone start (sampled MAP
    # after 5 epochs: lr 0.5 0.55, 2.0 0.71); WordNet mammals (dim 5) ends at 0.980 in 18 s
    # with these defaults: results/shallow_fast/README.md.  It selects on "recon" even when
    # validation edges exist: selecting on their AP (results/shallow_heldout) left held-out
    # link prediction unchanged on mammals (ROC-AUC 0.578 vs 0.579, 3 seeds) and never met
    # the plateau rule on the default tree (AP still rising by < 1e-3 per validation after
    # 150 epochs); the summary row states the selection (``selected_on``).
    "shallow": {"dtype": "float64",
                "model": {"init": "cone", "manifold": "lorentz"},
                "train": {"trainer": "fused", "optimizer": "rsgd", "lr": 0.5, "lr_unit": "pair",
                          "batch_size": 1024, "burnin": 0, "epochs": 1000,
                          "lr_schedule": "plateau", "val_metric": "recon", "eval_every": 5,
                          "patience": 4, "temperature": 0.25}},
    # HGCN's reference protocol: full-batch message passing, one step over all training
    # edges per epoch (on the 84k-node default tree one neighbour-sampled step of 512 edges
    # touches most of the graph anyway, so 150 such steps per epoch cost ~150 full passes).
    # lr 0.05 over 0.01 on validation AP (7.7k-node generated tree, 200 epochs: 0.892 vs 0.874);
    # 40 epochs: on the default tree validation AP was 0.9583 / 0.9636 / 0.9642 / 0.9644 /
    # 0.9643 after 10 / 20 / 30 / 40 / 50 epochs.
    "hgcn": {"train": {"positives": "edges", "loss": "ranking", "lr": 0.05, "burnin": 0,
                       "epochs": 40, "batch_size": 1 << 30, "negatives": 10,
                       "eval_every": 10},
             "sampling": {"full_batch": True}},
    # the graph regulariser is what makes this encoder RAMEN; lambda = 0 is the plain MLP
    "ramen": {"train": {"positives": "edges", "loss": "ranking", "lr": 0.01, "burnin": 0,
                        "epochs": 30, "batch_size": 512},
              "reg": {"reg_lambda": 1.0}},
    # nothing is trained: points placed by construction (hgraph.manifolds.construct), float64
    "construct": {"dtype": "float64", "train": {"epochs": 1}},
    # nothing is trained: cosine of the raw features (see hgraph.nn.features.FeatureBaseline)
    "features": {"model": {"manifold": "euclidean"}, "train": {"epochs": 1, "positives": "edges"}},
}


#: Presets of an encoder on one kind of features, applied before (so over) the
#: encoder's own.  RAMEN on sentence-encoder text: the tower starts at the text
#: geometry (``residual``, dim = the 384 features of all-MiniLM-L6-v2, so the
#: untrained tower ranks exactly as the cosine baseline) and moves away slowly
#: (Adam at 3e-5), keeping the epoch with the best validation parent MRR.
#: Chosen on HPO's validation edges (10% of leaves held out, seed 0): val MRR
#: peaked after 2 epochs at lr 3e-5 and after 1 at lr 1e-4; at lr 1e-3 validation
#: AP fell from the untrained tower's 0.92 to 0.74 in the first epoch; a 384->64
#: projection (dim 64) lost the identity start (``results/text_datasets``).
FEATURE_PRESETS: Dict[Tuple[str, str], Dict[str, Any]] = {
    ("ramen", "text"): {"model": {"residual": True, "dim": 384},
                        "train": {"lr": 3e-5, "epochs": 10, "eval_every": 1,
                                  "val_metric": "mrr", "patience": 3}},
}


def apply_presets(d: Dict[str, Any],
                  dataset_features: Optional[DatasetFeatures] = None) -> Dict[str, Any]:
    """Fill the preset values of the encoder (on its kind of features, then
    alone) into ``d`` where ``d`` has no value.

    The kind of features is ``data.features`` when given, else the dataset's
    default as ``dataset_features(name)`` reports it (the dataset registry's:
    :func:`hgraph.registries.dataset_features`); without ``dataset_features``
    only a given ``data.features`` selects a feature preset."""
    enc = (d.get("model") or {}).get("encoder", ModelConfig.encoder) if isinstance(d.get("model", {}), dict) \
        else ModelConfig.encoder
    data = d.get("data") if isinstance(d.get("data"), dict) else {}
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    if d.get("task") == "items":        # the item task's defaults, not the node encoders'
        from hgraph.config.items import ITEM_ENCODER_PRESETS, ITEM_PRESET
        model = out.get("model") if isinstance(out.get("model"), dict) else {}
        _fill(out, ITEM_ENCODER_PRESETS.get(model.get("encoder", ITEM_PRESET["model"]["encoder"]),
                                            {}))
        _fill(out, ITEM_PRESET)
        return out
    for preset in (FEATURE_PRESETS.get((enc, _features_kind(data, dataset_features)), {}),
                   ENCODER_PRESETS.get(enc, {})):
        _fill(out, preset)
    _fused_or_loop(d, out)
    return out


def _fused_or_loop(given: Dict[str, Any], out: Dict[str, Any]) -> None:
    """A preset's ``trainer: fused`` (hgraph.shallow_fit) trains only a hyperboloid table
    with the ranking loss and no regulariser, in one process.  When the user's own settings
    rule that out (or torchrun started several processes: ``WORLD_SIZE``) and the user did
    not ask for the fused trainer, the loop trains (and the preset's plateau schedule,
    which is the fused trainer's, becomes constant).  Whenever the loop trains, a preset's
    temperature (the fused trainer's) is dropped unless the user gave one."""
    tr = out.get("train")
    asked = given.get("train") if isinstance(given.get("train"), dict) else {}
    if not isinstance(tr, dict):
        return
    model = out.get("model") if isinstance(out.get("model"), dict) else {}
    reg = out.get("reg") if isinstance(out.get("reg"), dict) else {}
    if tr.get("trainer") == "fused" and "trainer" not in asked and (
            model.get("manifold", ModelConfig.manifold) != "lorentz"
            or int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
            or tr.get("loss", TrainConfig.loss) != "ranking"
            or float(reg.get("reg_lambda", RegConfig.reg_lambda) or 0) > 0):
        tr["trainer"] = "loop"
        if tr.get("lr_schedule") == "plateau" and "lr_schedule" not in asked:
            tr["lr_schedule"] = "constant"
    if tr.get("trainer") != "fused" and "temperature" not in asked:
        tr.pop("temperature", None)             # the preset's, for the fused trainer only


def _features_kind(data: Dict[str, Any],
                   dataset_features: Optional[DatasetFeatures]) -> Optional[str]:
    """``data.features`` as given, else the dataset's default kind (icd10cm and
    hpo: text), None when the dataset name is unknown (reported later) or no
    ``dataset_features`` lookup was given."""
    if data.get("features") is not None:
        return data["features"]
    if dataset_features is None:
        return None
    return dataset_features(str(data.get("dataset", DataConfig.dataset)).partition(":")[0])


def _fill(out: Dict[str, Any], preset: Dict[str, Any]) -> None:
    for key, vals in preset.items():
        if not isinstance(vals, dict):          # a run-level field such as dtype
            out.setdefault(key, vals)
            continue
        cur = out.setdefault(key, {})
        if not isinstance(cur, dict):
            continue
        for k, v in vals.items():
            cur.setdefault(k, v)


__all__ = ["ENCODER_PRESETS", "FEATURE_PRESETS", "apply_presets",
           "DatasetFeatures"]
