"""Every knob, as one frozen dataclass tree.

``RunConfig`` is parsed once (CLI flags, then an optional YAML file under
them) and never mutated; values derived from data (number of nodes, feature
dimension) live in the objects built from it, not here.  The CLI is generated
from these dataclasses: each field's ``metadata['help']`` is its ``--help``
text and ``metadata['choices']`` (a callable returning the registry keys)
its choices.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional, Tuple

from hgraph.errors import HGraphInputError


def opt(default, help: str, choices=None, repeat: bool = False, **kw):
    """A dataclass field with CLI help text, optional choices, and ``repeat``
    (a tuple filled by giving the flag several times)."""
    md = {"help": help, "repeat": repeat}
    if choices is not None:
        md["choices"] = choices
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults (frozen config)")
    return field(default=default, metadata=md, **kw)


def _encoder_choices():
    from hgraph.nn import ENCODERS
    return sorted(ENCODERS)


def _manifold_choices():
    from hgraph.manifolds import MANIFOLDS
    return sorted(MANIFOLDS)


def _loss_choices():
    from hgraph.losses import LOSSES
    return sorted(LOSSES)


def _reg_kind_choices():
    from hgraph.data.triplets import KINDS
    return list(KINDS)


def _text_encoder_choices():
    from hgraph.data.text import TEXT_ENCODERS
    return sorted(TEXT_ENCODERS)


def _act_choices():
    from hgraph.nn.base import ACTIVATIONS
    return list(ACTIVATIONS)


def _format_choices():
    from hgraph.data.io import FORMATS
    return list(FORMATS)


def _dataset_help() -> str:
    from hgraph.data.datasets import DATASETS
    return "dataset: " + " | ".join(d.usage for d in DATASETS.values())


@dataclass(frozen=True)
class DataConfig:
    dataset: str = opt("curvlearn-synthetic", _dataset_help)
    format: str = opt("auto", "file format override for PATH datasets", choices=_format_choices)
    features: Optional[str] = opt(None, "node features: 'text' (sentence encoder over each "
                                  "node's text, cached), 'tfidf' (TF-IDF + SVD of the text), "
                                  "or a file (CSV 'id,f1,..' or .npy/.npz); default: the "
                                  "dataset's own (generated trees: synthetic hierarchical "
                                  "features; wordnet: tfidf; icd10cm, hpo: text)")
    text_encoder: str = opt("minilm", "sentence encoder of --features text",
                            choices=_text_encoder_choices)
    # generator (curvlearn-synthetic)
    gen_root_children: int = opt(100, "generator: children of the root")
    gen_min_children: int = opt(5, "generator: fewest children of an internal node")
    gen_max_children: int = opt(20, "generator: most children of an internal node")
    gen_leaf_prob: Tuple[float, ...] = opt((0.09, 0.193, 0.504),
                                           "generator: leaf probability at levels 1.. (last level all leaves)")
    gen_seed: int = opt(0, "generator: seed of the tree (fixed across training seeds)")
    feature_dim: int = opt(32, "generated and tfidf features: dimension")
    feature_noise: float = opt(0.5, "generated features: noise scale relative to the hierarchy signal")
    # splits
    val_frac: float = opt(0.05, "fraction of child->parent edges held out for validation")
    test_frac: float = opt(0.10, "fraction of child->parent edges held out for test")
    inductive_frac: float = opt(0.0, "fraction of leaves held out entirely (inductive placement)")
    split_seed: int = opt(0, "seed of the edge/node splits (fixed across training seeds)")


@dataclass(frozen=True)
class ModelConfig:
    encoder: str = opt("shallow", "encoder", choices=_encoder_choices)
    manifold: str = opt("poincare", "manifold", choices=_manifold_choices)
    dim: int = opt(10, "embedding dimension (intrinsic; Lorentz adds a time coordinate)")
    curvature: float = opt(1.0, "curvature magnitude c > 0 (sectional curvature -c)")
    learn_curvature: bool = opt(False, "learn the curvature (kept positive)")
    init_scale: float = opt(1e-3, "shallow: uniform init range around the origin")
    init: str = opt("uniform", "shallow: initial table: uniform (random within init_scale of the "
                    "origin), construct (the combinatorial embedding of the training graph, "
                    "as --encoder construct) or cone (nested cones of the training graph: "
                    "each subtree around its root's direction, radius growing with depth; "
                    "the shallow preset's)", choices=lambda: ["uniform", "construct", "cone"])
    init_radius: float = opt(0.0, "shallow --init cone / construct: distance of the farthest "
                             "node from the origin; 0 = 0.8 (cone) / 0.6 (construct) of the "
                             "boundary clamp's distance of the run's dtype (12.2 in float64); "
                             "WordNet mammals trains further from 3 (results/shallow_fast)")
    construct_tau: float = opt(0.0, "construct (encoder, shallow init): hyperbolic length of "
                               "every tree edge; 0 = the largest that keeps every node inside "
                               "the boundary clamp of the run's dtype (shallow init: within "
                               "0.6 of the clamp's distance, leaving room to train)")
    # hgcn / ramen
    hidden: int = opt(64, "hidden width of hgcn / ramen layers")
    layers: int = opt(2, "number of hgcn layers / ramen MLP layers")
    act: str = opt("relu", "activation of hgcn / ramen (leaky_relu: slope 0.01)",
                   choices=_act_choices)
    dropout: float = opt(0.0, "dropout")
    bias: bool = opt(True, "use (hyperbolic) biases")
    attention: bool = opt(False, "hgcn: attention over neighbours")
    local_agg: bool = opt(False, "hgcn: aggregate in the tangent space of each node, not the origin")
    agg_norm: str = opt("mean", "hgcn: neighbour weights: mean (1/deg_i, HGCN's reference) or sym "
                        "(GCN's 1/sqrt(deg_i deg_j))", choices=lambda: ["mean", "sym"])
    id_embeddings: bool = opt(False, "hgcn/ramen: use learned id embeddings instead of node features")
    residual: bool = opt(False, "ramen: start at the feature geometry: a linear skip from the "
                         "L2-normalised features (identity when dim equals the feature "
                         "dimension, an orthonormal projection otherwise) plus the MLP, whose "
                         "last layer starts at zero")


@dataclass(frozen=True)
class TrainConfig:
    loss: str = opt("ranking", "training loss", choices=_loss_choices)
    epochs: int = opt(20, "training epochs")
    lr: float = opt(0.05, "learning rate")
    optimizer: str = opt("radam", "Riemannian optimiser", choices=lambda: ["radam", "rsgd"])
    trainer: str = opt("loop", "loop: autograd and --optimizer, any encoder; fused: closed-form "
                       "Riemannian SGD steps of a shallow table on the hyperboloid "
                       "(hgraph.shallow_fit; --encoder shallow --manifold lorentz, ranking loss, "
                       "--lr per pair, on the CPU; the shallow preset's)",
                       choices=lambda: ["loop", "fused"])
    workers: int = opt(1, "fused trainer: processes updating one shared table without locks "
                       "(Hogwild, as poincare-embeddings); > 1 is faster and not reproducible "
                       "bit for bit")
    local_negatives: float = opt(0.0, "fused trainer: share of the negatives drawn among the "
                                 "positive's descendants (u's siblings and cousins for a near "
                                 "ancestor), importance-weighted so the loss estimates the same "
                                 "objective as uniform draws with less variance; in [0, 1)")
    near_negatives: float = opt(0.0, "fused trainer: share of the negatives drawn among u's "
                                "--near-k nearest non-ancestors in the current table "
                                "(recomputed every --near-every epochs), importance-weighted as "
                                "--local-negatives; the nodes that outrank u's ancestors are "
                                "rarely among uniform draws on a large taxonomy; in [0, 1)")
    near_k: int = opt(64, "fused trainer: length of each node's --near-negatives list")
    near_every: int = opt(10, "fused trainer: epochs between recomputations of the "
                          "--near-negatives lists")
    temperature: float = opt(1.0, "fused trainer: the ranking loss's logits are -distance / "
                             "this; below 1 the loss is satisfied at proportionally smaller "
                             "distances, so rows drift less far from the origin")
    weight_decay: float = opt(0.0, "weight decay on Euclidean parameters")
    batch_size: int = opt(1024, "positive pairs per step")
    negatives: int = opt(50, "negatives per positive")
    burnin: int = opt(2, "burn-in epochs at lr / burnin_lr_divisor")
    burnin_lr_divisor: float = opt(10.0, "burn-in epochs run at lr / this (>= 1; "
                                   "poincare-embeddings' -burnin_multiplier 0.01 is 100 here)")
    lr_unit: str = opt("batch", "what --lr is a rate of: batch (the step's loss is the mean over "
                       "its pairs) or pair (the step's loss is summed over its positive pairs, "
                       "as poincare-embeddings and gensim; a change of batch size keeps plain "
                       "SGD's dynamics)", choices=lambda: ["batch", "pair"])
    lr_schedule: str = opt("constant", "learning rate after burn-in: constant, linear decay "
                           "(epoch e of the n after burn-in runs at lr * (n - e) / n), or "
                           "plateau (fused trainer: lr / 5 after --patience validations without "
                           "a new best, three times; the run stops at the fourth plateau)",
                           choices=lambda: ["constant", "linear", "plateau"])
    positives: str = opt("closure", "training positives: closure (ancestor pairs) or edges (parents)",
                         choices=lambda: ["closure", "edges"])
    neg_filter: str = opt("ancestors",
                          "negatives for anchor u exclude u's true ancestors (as poincare-embeddings, "
                          "matching the reconstruction metric) or every related node (ancestors "
                          "and descendants)", choices=lambda: ["ancestors", "related"])
    # loop
    patience: int = opt(0, "early stopping on the validation metric (0 = off): stop after this "
                        "many validations (every eval_every epochs) in a row without a new best")
    loss_patience: int = opt(0, "early stopping on the training loss (0 = off): after burn-in, "
                             "stop when the epoch loss has not fallen below (1 - loss_min_delta) "
                             "x its best so far for this many epochs in a row")
    loss_min_delta: float = opt(1e-4, "relative fall of the epoch loss that --loss-patience "
                                "counts as progress")
    eval_every: int = opt(5, "validation every N epochs")
    val_metric: str = opt("ap", "model selection on the validation edges: ap (average precision "
                          "against sampled negatives) or mrr (rank of each edge's parent among "
                          "all training nodes: what placing a new category needs); or recon: "
                          "reconstruction MAP of the training closure on a fixed sample of at "
                          "most 2,000 sources (needs no validation edges; the shallow preset's)",
                          choices=lambda: ["ap", "mrr", "recon"])
    checkpoint_every: int = opt(10, "checkpoint every N epochs (0 = only at the end)")
    max_bad_steps: int = opt(20, "stop after this many non-finite steps in a row")


@dataclass(frozen=True)
class SamplingConfig:
    """How a graph encoder (``uses_graph``) embeds the nodes of a training step."""
    fanouts: Tuple[int, ...] = opt((10, 10), "graph encoders: neighbours sampled per layer "
                                   "(-1 = all)")
    full_batch: bool = opt(False, "graph encoders: full-batch message passing instead of "
                           "neighbour sampling")
    hide_supervision: bool = opt(False, "graph encoders: drop each step's positive edges from its "
                                 "message passing, as held-out edges are absent at test time")


@dataclass(frozen=True)
class RegConfig:
    """The graph regulariser (RAMEN / HUSE style), for any encoder: on when
    ``reg_lambda > 0`` (the ramen preset sets 1.0; 0 elsewhere)."""
    reg_lambda: float = opt(0.0, "weight of the graph regulariser (0 = off; any encoder; "
                            "the ramen preset sets 1.0)")
    reg_kinds: Tuple[str, ...] = opt(("ancestor", "sibling"), "regularisers",
                                     choices=_reg_kind_choices)
    reg_warmup: int = opt(5, "epochs of linear warm-up of the regulariser weight")
    reg_margin: float = opt(0.1, "triplet margin of the regulariser")
    hard_negatives: bool = opt(False, "regulariser: hard negatives (same level, different parent)")


@dataclass(frozen=True)
class EvalConfig:
    recon_sample: int = opt(2000, "reconstruction: source nodes sampled (0 = all, exact)")
    lp_negatives: int = opt(10, "link prediction: sampled negatives per held-out edge")
    chunk: int = opt(1024, "rows of the distance matrix per chunk")
    eval_seed: int = opt(0, "seed of the evaluation samples")


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seeds: Tuple[int, ...] = opt((0,), "training seeds; several give mean +- std")
    device: str = opt("auto", "auto | cpu | cuda", choices=lambda: ["auto", "cpu", "cuda"])
    dtype: str = opt("float32", "float32 | float64", choices=lambda: ["float32", "float64"])
    out: str = opt("results", "results folder")
    name: Optional[str] = opt(None, "run name (default: derived from encoder, dataset and time)")
    progress: bool = opt(True, "progress bars")
    save_embeddings: bool = opt(True, "write embeddings into the run folder")
    plots: bool = opt(True, "write plots into the run folder")
    plot_subtree: Tuple[str, ...] = opt((), "also plot the subtree under this node (name or id; "
                                        "repeat the flag for several, e.g. 0-1 0-45 0-98)",
                                        repeat=True)

    def to_dict(self) -> Dict[str, Any]:
        """Every field, sections as nested dicts, plus ``version`` (:data:`CONFIG_VERSION`)."""
        return {**dataclasses.asdict(self), "version": CONFIG_VERSION}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
            "sampling": SamplingConfig, "reg": RegConfig, "eval": EvalConfig}

#: version of the config layout written into every ``config.json``.
#: 1 (no ``version`` key): sampling and regulariser keys in ``train``; the
#: regulariser applied to the ramen encoder only (its λ default 1.0 was
#: ignored by every other encoder); ``train.burnin_factor``.  2: sections
#: ``sampling`` and ``reg``; the regulariser applies to any encoder with
#: ``reg_lambda > 0``; ``train.burnin_lr_divisor`` (the same divisor, renamed
#: so that it is not read as poincare-embeddings' ``-burnin_multiplier``).
CONFIG_VERSION = 2
_MOVED_V1 = {"sampling": ("fanouts", "full_batch", "hide_supervision"),
             "reg": ("reg_lambda", "reg_kinds", "reg_warmup", "reg_margin", "hard_negatives")}
#: ``train`` keys version 2 renamed: old name -> new name
_RENAMED_V1 = {"burnin_factor": "burnin_lr_divisor"}


def upgrade(d: Dict[str, Any], source: str = "<config>") -> Dict[str, Any]:
    """A config dict of any earlier version in the current layout (a copy).

    A dict without ``version`` is version 1 when its ``train`` section holds a
    key that version 2 moved or renamed (every version-1 ``config.json`` does),
    else the current version (a YAML file or flags typed by a user).

    Version 1 -> 2: ``train.{fanouts, full_batch, hide_supervision}`` move to
    ``sampling``, ``train.{reg_*, hard_negatives}`` to ``reg``,
    ``train.burnin_factor`` becomes ``train.burnin_lr_divisor``; a version-1
    run of an encoder other than ramen never used its regulariser, so its
    ``reg_lambda`` becomes 0 (the run it describes is the run it was).
    """
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    version = d.pop("version", None)
    if version is None:      # a run folder of version 1, or a dict typed by a user (current)
        train = d.get("train") if isinstance(d.get("train"), dict) else {}
        moved = {k for keys in _MOVED_V1.values() for k in keys} | set(_RENAMED_V1)
        version = 1 if moved & set(train) else CONFIG_VERSION
    if not isinstance(version, int) or isinstance(version, bool) or \
            not 1 <= version <= CONFIG_VERSION:
        raise HGraphInputError(f"unknown config version {version!r}", file=source,
                               fix=f"this hgraph reads versions 1..{CONFIG_VERSION}")
    if version == 1:
        train = d.get("train")
        v1_lambda = False           # reg_lambda came from version 1's train section
        if isinstance(train, dict):
            v1_lambda = "reg_lambda" in train
            for sec, keys in _MOVED_V1.items():
                moved = {k: train.pop(k) for k in keys if k in train}
                if moved:
                    d.setdefault(sec, {}).update(moved)
            for old_key, new_key in _RENAMED_V1.items():
                if old_key in train:
                    train[new_key] = train.pop(old_key)
        model = d.get("model") if isinstance(d.get("model"), dict) else {}
        if model.get("encoder", ModelConfig.encoder) != "ramen" and v1_lambda \
                and isinstance(d.get("reg"), dict):
            d["reg"]["reg_lambda"] = 0.0
    return d


def _coerce(cls, name: str, value: Any, source: str):
    f = {x.name: x for x in fields(cls)}[name]
    default = f.default
    typ = type(default) if default is not None and default is not dataclasses.MISSING else None
    try:
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)):
                value = [value]
            inner = type(default[0]) if default else str
            return tuple(inner(v) for v in value)
        if typ is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if typ in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError
            if typ is int and float(value) != int(value):
                raise TypeError
            return typ(value)
        if typ is str and not isinstance(value, str):
            raise TypeError
        return value
    except (TypeError, ValueError):
        raise HGraphInputError(f"{cls.__name__[:-6].lower() or 'run'}.{name}: expected "
                               f"{typ.__name__ if typ else 'a value'}, got {value!r}",
                               file=source) from None


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
    # with these defaults: results/shallow_fast/README.md.
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


def apply_presets(d: Dict[str, Any]) -> Dict[str, Any]:
    """Fill the preset values of the encoder (on its kind of features, then
    alone) into ``d`` where ``d`` has no value."""
    enc = (d.get("model") or {}).get("encoder", ModelConfig.encoder) if isinstance(d.get("model", {}), dict) \
        else ModelConfig.encoder
    data = d.get("data") if isinstance(d.get("data"), dict) else {}
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    for preset in (FEATURE_PRESETS.get((enc, _features_kind(data)), {}),
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


def _features_kind(data: Dict[str, Any]) -> Optional[str]:
    """``data.features`` as given, else the dataset's default kind (icd10cm and
    hpo: text), None when the dataset name is unknown (reported later)."""
    if data.get("features") is not None:
        return data["features"]
    from hgraph.data.datasets import DATASETS
    ds = DATASETS.get(str(data.get("dataset", DataConfig.dataset)).partition(":")[0])
    return None if ds is None else ds.default_features


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


def from_dict(d: Dict[str, Any], source: str = "<config>", presets: bool = True) -> RunConfig:
    """Build a RunConfig from a nested dict, rejecting unknown keys and wrong types.

    With ``presets`` the encoder's :data:`ENCODER_PRESETS` fill unset fields.
    """
    if not isinstance(d, dict):
        raise HGraphInputError("config must be a mapping", file=source)
    d = upgrade(d, source)
    if presets:
        d = apply_presets(d)
    top = {}
    run_fields = {f.name for f in fields(RunConfig)} - set(SECTIONS)
    for key, val in d.items():
        if key in SECTIONS:
            cls = SECTIONS[key]
            if not isinstance(val, dict):
                raise HGraphInputError(f"section {key!r} must be a mapping", file=source)
            known = {f.name for f in fields(cls)}
            for k in val:
                if k not in known:
                    raise HGraphInputError(f"unknown key {key}.{k}", file=source,
                                           fix=f"valid keys: {', '.join(sorted(known))}")
            top[key] = cls(**{k: _coerce(cls, k, v, source) for k, v in val.items()})
        elif key in run_fields:
            top[key] = _coerce(RunConfig, key, val, source)
        else:
            raise HGraphInputError(f"unknown key {key!r}", file=source,
                                   fix=f"valid keys: {', '.join(sorted(run_fields | set(SECTIONS)))}")
    cfg = RunConfig(**top)
    validate(cfg, source)
    return cfg


def load_yaml(path: str) -> Dict[str, Any]:
    import yaml
    try:
        with open(path, encoding="utf-8") as fh:
            d = yaml.safe_load(fh)
    except FileNotFoundError:
        raise HGraphInputError("config file not found", file=path) from None
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise HGraphInputError(f"invalid YAML: {getattr(e, 'problem', e)}", file=path,
                               line=None if line is None else line + 1) from None
    except UnicodeDecodeError:
        raise HGraphInputError("config is not UTF-8 text", file=path) from None
    return d or {}


def validate(cfg: RunConfig, source: str = "<config>") -> None:
    """Reject values no run can use (negative sizes, fractions out of range)."""
    def bad(what, fix=None):
        raise HGraphInputError(what, file=source, fix=fix)
    m, t, dcfg = cfg.model, cfg.train, cfg.data
    if m.dim < 1:
        bad(f"model.dim must be >= 1, got {m.dim}")
    if not m.construct_tau >= 0:
        bad(f"model.construct_tau must be >= 0 (0 = chosen from the depth), got {m.construct_tau}")
    if m.hidden < 1 or m.layers < 1:
        bad(f"model.hidden and model.layers must be >= 1, got {m.hidden}, {m.layers}")
    if m.manifold != "euclidean" and not m.curvature > 0:
        bad(f"model.curvature must be > 0, got {m.curvature}")
    if t.epochs < 1:
        bad(f"train.epochs must be >= 1, got {t.epochs}")
    if t.batch_size < 1 or t.negatives < 1:
        bad(f"train.batch_size and train.negatives must be >= 1, got {t.batch_size}, {t.negatives}")
    if not t.lr > 0:
        bad(f"train.lr must be > 0, got {t.lr}")
    if t.burnin < 0:
        bad(f"train.burnin must be >= 0, got {t.burnin}")
    if not t.burnin_lr_divisor >= 1:
        bad(f"train.burnin_lr_divisor must be >= 1 (burn-in runs at lr / it, so below 1 "
            f"burn-in would be faster than training), got {t.burnin_lr_divisor:g}",
            fix="it divides the rate: poincare-embeddings' -burnin_multiplier m is "
                "--burnin-lr-divisor 1/m, e.g. 0.01 -> 100")
    if t.loss_patience < 0:
        bad(f"train.loss_patience must be >= 0 (0 = off), got {t.loss_patience}")
    if not 0 <= t.loss_min_delta < 1:
        bad(f"train.loss_min_delta must be in [0, 1), got {t.loss_min_delta:g}")
    if t.workers < 1:
        bad(f"train.workers must be >= 1, got {t.workers}")
    if not 0 <= t.local_negatives < 1:
        bad(f"train.local_negatives is a share in [0, 1), got {t.local_negatives:g}")
    if not 0 <= t.near_negatives < 1:
        bad(f"train.near_negatives is a share in [0, 1), got {t.near_negatives:g}")
    if t.near_k < 1 or t.near_every < 1:
        bad(f"train.near_k and train.near_every must be >= 1, got {t.near_k}, {t.near_every}")
    if t.near_negatives and (t.trainer != "fused" or t.workers > 1 or t.local_negatives):
        bad("train.near_negatives is the fused trainer's, with one worker and without "
            "local_negatives", fix="add --trainer fused --workers 1 --local-negatives 0")
    if not t.temperature > 0:
        bad(f"train.temperature must be > 0, got {t.temperature:g}")
    if t.temperature != 1.0 and t.trainer != "fused":
        bad("train.temperature is the fused trainer's", fix="add --trainer fused")
    if t.local_negatives and t.trainer != "fused":
        bad("train.local_negatives is the fused trainer's", fix="add --trainer fused")
    if t.lr_schedule == "plateau" and t.trainer != "fused":
        bad("train.lr_schedule plateau is the fused trainer's",
            fix="add --trainer fused, or pick --lr-schedule constant / linear")
    if not m.init_radius >= 0:
        bad(f"model.init_radius must be >= 0 (0 = the default), got {m.init_radius}")
    for name in ("val_frac", "test_frac", "inductive_frac"):
        v = getattr(dcfg, name)
        if not 0 <= v < 1:
            bad(f"data.{name} must be in [0, 1), got {v}")
    if dcfg.val_frac + dcfg.test_frac >= 1:
        bad("data.val_frac + data.test_frac must be < 1")
    if not cfg.seeds:
        bad("at least one seed is needed")
    if not 0 <= m.dropout < 1:
        bad(f"model.dropout must be in [0, 1), got {m.dropout}")
