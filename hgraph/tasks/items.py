"""The item -> category task: place text items into a taxonomy.

``run_items(cfg) -> dict``: data (taxonomy with node text, items with their
categories) -> leak-free item splits (:mod:`hgraph.data.item_splits`: a
zero-shot slice of categories, the rest per category) -> text vectors of
nodes and items (frozen sentence encoder, cached) -> a model of
:mod:`hgraph.tasks.item_models` trained with a softmax over the true category
and sampled negatives (uniform plus hard: siblings and same-level
categories), logit ``-scale * distance``, Riemannian Adam, model selection on
validation P@1 -> ranking of every candidate category for each test item ->
metrics overall and per slice (:mod:`hgraph.eval.items`), inference cost ->
``<out>/<run>/metrics.json`` + ``per_item.npz`` (the per-item values that
paired bootstrap intervals are computed from).

Nothing of a test item reaches training: its text vector is computed with
the others (a frozen encoder, no fitting) but only training rows are drawn
in the loss; zero-shot categories stay candidates (their text and place in
the tree are known) and may be drawn as negatives.
"""
from __future__ import annotations

import copy
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import geoopt
import numpy as np
import torch
from torch import nn

from hgraph import manifolds as M
from hgraph import results as R
from hgraph.config import DataConfig
from hgraph.data.datasets import DATASETS, dataset_items
from hgraph.data.item_splits import SLICES, ItemSplits, make_item_splits, slice_mask
from hgraph.data.icd10cm import ROOT_KEY as ICD_ROOT
from hgraph.data.items import Items, read_items, read_node_texts
from hgraph.data.taxonomy import Taxonomy, transitive_closure
from hgraph.data.text import encode_texts, node_texts, token_states
from hgraph.errors import HGraphInputError
from hgraph.eval.items import item_metrics, rank_categories, rank_scores, undirected
from hgraph.losses import GraphRegularizer
from hgraph.tasks.item_models import (ITEM_ENCODERS, ITEM_MODELS, SCORERS, ItemModel, Scorer,
                                      TextHead, embed_categories, embed_items, evaluating)

Tensor = torch.Tensor
METRICS = ("p1", "p5", "mrr", "hp5", "tree_dist")


@dataclass(frozen=True)
class ItemTaskConfig:
    """Every setting of one item -> category run (JSON/YAML keys = field names)."""
    dataset: str = "icd10cm:no7th"
    items: Optional[str] = None           # CSV text,category[,split]; default: the dataset's own
    node_text: Optional[str] = None       # CSV id,text: node text (default: the dataset's own)
    subtree: Optional[str] = None         # keep only this node and its descendants
    # a category's text followed by its first k ancestors' (first parent at each step),
    # joined by " ; ": "Other specified ..." codes say of what (0: its own text only)
    category_context: int = 0
    encoder: str = "ramen"
    manifold: str = "poincare"
    seeds: Tuple[int, ...] = (0,)
    zero_shot_frac: float = 0.1
    val_frac: float = 0.1
    test_frac: float = 0.2
    hidden: int = 256
    layers: int = 2
    gcn_hidden: int = 128
    gcn_layers: int = 2
    dropout: float = 0.0
    lr: float = 1e-3                      # tower / GCN (Adam: per step, independent of batch)
    table_lr: float = 3e-2                # shallow's category table
    gate_lr: float = 1e-2                 # hgcn's gate (starts at 0: the graph's share)
    batch_size: int = 512                 # training items per step
    negatives: int = 4096                 # uniform negatives per step, shared by the batch
    hard_negatives: int = 16              # per item: siblings, then same-level categories
    mined_negatives: int = 16             # per item: drawn from its nearest wrong categories
    mine_k: int = 50                      # ... the model's top mine_k, refreshed every epoch
    # negatives (uniform, hard, mined) drawn among: "all" candidates, or only the "trained"
    # ones (categories with a training item): then no category is pushed away from items
    # merely for having none, the bias that costs zero-shot categories their items
    negative_pool: str = "all"
    item_adapter: int = 0                 # items only: residual MLP of this width before the tower
    item_text_layers: int = 0             # items only: train the sentence encoder's last k layers
    text_lr: float = 2e-5                 # ... at this Adam rate (pretrained weights: small)
    # the trained text layers encode the categories too (one shared text head, as a siamese
    # bi-encoder is fine-tuned): every category re-encoded after each epoch (the next
    # epoch's negatives and validation use those vectors, ANCE-style); the head learns from
    # the category side in a second softmax over the batch's true categories and one
    # sibling each, all encoded during the step
    shared_text_head: bool = False
    # calibrated stacking (hgraph.tasks.calibration): a twin model trained without a further
    # zero_shot_frac of the categories chooses a distance handicap for categories with
    # training items on validation; test is scored with and without it (keys cal_*)
    calibrate: bool = False
    # a learned second stage (hgraph.tasks.rerank) over each item's top `rerank` categories,
    # fitted on the same twin's lists for validation and held-out categories' items; test
    # is scored with and without it (keys rr_*; 0: off, else >= 10)
    rerank: int = 0
    reg_lambda: float = 0.0               # graph regulariser weight (category triplets)
    reg_kinds: Tuple[str, ...] = ("ancestor", "sibling")
    reg_margin: float = 0.1
    reg_anchors: int = 256
    epochs: int = 30
    patience: int = 3
    time_cap_s: float = 0.0               # stop training after this many seconds (0: none)
    val_max: int = 1000                   # validation items scored per epoch
    cost_items: int = 1000                # items / new categories timed for inference cost
    text_encoder: str = "minilm"
    device: str = "auto"
    threads: int = 0                      # torch threads (0: leave torch's default)
    dtype: str = "float32"                # float32 or float64 (text vectors and weights)
    out: str = "results/items"
    name: Optional[str] = None
    progress: bool = True

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["seeds"], d["reg_kinds"] = list(self.seeds), list(self.reg_kinds)
        return d


def config_from_dict(d: Dict[str, Any], source: str = "<config>") -> ItemTaskConfig:
    names = {f.name for f in fields(ItemTaskConfig)}
    bad = sorted(set(d) - names)
    if bad:
        raise HGraphInputError(f"unknown item-task setting(s) {', '.join(bad)}", file=source,
                               fix=f"use some of: {', '.join(sorted(names))}")
    d = dict(d)
    for k in ("seeds", "reg_kinds"):
        if k in d:
            d[k] = tuple(d[k]) if isinstance(d[k], (list, tuple)) else (d[k],)
    cfg = ItemTaskConfig(**d)
    if cfg.encoder not in ITEM_ENCODERS:
        raise HGraphInputError(f"unknown encoder {cfg.encoder!r} for the item task", file=source,
                               fix=f"choose from {', '.join(ITEM_ENCODERS)}")
    if cfg.item_text_layers < 0 or cfg.item_adapter < 0 or cfg.category_context < 0:
        raise HGraphInputError("item_text_layers, item_adapter and category_context are >= 0",
                               file=source)
    if cfg.shared_text_head and (not cfg.item_text_layers or cfg.encoder != "ramen"):
        raise HGraphInputError("shared_text_head needs item_text_layers >= 1 and the ramen "
                               "encoder (categories through the tower from their text)",
                               file=source)
    if cfg.rerank and cfg.rerank < 10:
        raise HGraphInputError(f"rerank is 0 (off) or a list length >= 10, not {cfg.rerank}",
                               file=source, fix="rerank: 20")
    if cfg.negative_pool not in ("all", "trained"):
        raise HGraphInputError(f"negative_pool is 'all' or 'trained', not {cfg.negative_pool!r}",
                               file=source)
    if cfg.manifold not in ("poincare", "euclidean"):
        raise HGraphInputError(f"the item task runs on poincare or euclidean, not "
                               f"{cfg.manifold!r}", file=source)
    return cfg


# ---------------------------------------------------------------------- data
@dataclass
class ItemData:
    """Everything derived from the data, shared by the seeds of a run."""
    tax: Taxonomy
    items: Items
    x_nodes: Tensor           # (N, F) text vectors of the categories
    x_items: Tensor           # (U, F) text vectors of the distinct items
    item_texts: List[str]     # (U,)
    truth: List[np.ndarray]   # (U,) true category ids per item
    cand: np.ndarray          # (C,) candidate category ids (ascending)
    adj: Any                  # undirected adjacency (N, N)
    up_hops: Any              # (N, N) hops from a node up to each ancestor
    edge_index: Tensor        # (2, 2E) both directions
    encode_s: float = 0.0
    #: with ``item_text_layers`` k: (states (U, T, F) float16, lengths (U,)), the token
    #: states entering the encoder's last k layers, per distinct item
    item_states: Optional[Tuple[Tensor, Tensor]] = None
    #: with ``shared_text_head``: the same for every node's text (N, T, F), (N,)
    node_states: Optional[Tuple[Tensor, Tensor]] = None

    def item_input(self, ids) -> Any:
        """What the item side of a model takes for items ``ids``: their text
        vectors, or (token states, lengths) when the encoder's top is trained."""
        ids = torch.as_tensor(ids, device=self.x_items.device)
        if self.item_states is None:
            return self.x_items[ids]
        st, ln = self.item_states
        return st[ids].to(self.x_items.dtype), ln[ids]


def item_input_from_texts(texts: Sequence[str], text_encoder: str, text_layers: int,
                          dtype=torch.float32, device=None) -> Any:
    """The item side's input for new texts (not cached): text vectors, or with
    ``text_layers`` k the token states entering the encoder's last k layers."""
    if text_layers:
        st, ln = token_states(texts, model=text_encoder, skip_last=text_layers, progress=False,
                              cache=False)
        return (torch.as_tensor(st, device=device).to(dtype), torch.as_tensor(ln, device=device))
    return torch.as_tensor(encode_texts(texts, model=text_encoder, progress=False, cache=False),
                           dtype=dtype, device=device)


def _subtree(tax: Taxonomy, top: str) -> Tuple[Taxonomy, np.ndarray]:
    """(the taxonomy of ``top`` and its descendants, old id of each new node)."""
    root = tax.index(top)
    keep = np.zeros(tax.num_nodes, dtype=bool)
    keep[root] = True
    keep[tax.closure[:, root].nonzero()[0]] = True
    e = tax.edges[keep[tax.edges[:, 0]] & keep[tax.edges[:, 1]]]
    keys = list(tax.keys if tax.keys is not None else tax.names)
    old_ids = np.flatnonzero(keep)
    sub = Taxonomy.from_edges([keys[c] for c in e[:, 0]], [keys[p] for p in e[:, 1]],
                              nodes=[keys[i] for i in old_ids],
                              names={keys[i]: tax.names[i] for i in old_ids},
                              source=f"{tax.source} below {top}")
    where = {k: i for i, k in enumerate(keys)}
    old_of_new = np.array([where[k] for k in (sub.keys if sub.keys is not None else sub.names)],
                          dtype=np.int64)
    if tax.texts is not None:
        sub.texts = [tax.texts[i] for i in old_of_new]
    return sub, old_of_new


def context_texts(tax: Taxonomy, k: int, sep: str = " ; ") -> List[str]:
    """Every node's text followed by the texts of its first ``k`` ancestors
    along first parents (fewer near the root), joined by ``sep``."""
    own = node_texts(tax)
    par = tax.child_to_parent
    out = []
    for u in range(tax.num_nodes):
        parts, v = [own[u]], u
        for _ in range(k):
            if par.indptr[v + 1] == par.indptr[v]:
                break
            v = int(par.indices[par.indptr[v]])
            parts.append(own[v])
        out.append(sep.join(parts))
    return out


def load_item_data(cfg: ItemTaskConfig, device: torch.device, dtype=torch.float32) -> ItemData:
    """Taxonomy, items, text vectors (cached), candidates and graph."""
    dcfg = DataConfig(dataset=cfg.dataset, text_encoder=cfg.text_encoder)
    name, _, arg = cfg.dataset.partition(":")
    if name not in DATASETS:
        raise HGraphInputError(f"unknown dataset {cfg.dataset!r}",
                               fix=f"choose from {', '.join(sorted(DATASETS))}")
    tax = DATASETS[name].load(dcfg, arg or None)
    if cfg.node_text is not None:
        tax.texts = read_node_texts(cfg.node_text, tax)
    if cfg.items is not None:
        items = read_items(cfg.items, tax)
    else:
        got = dataset_items(dcfg, tax)
        if got is None:
            raise HGraphInputError(f"dataset {cfg.dataset!r} has no built-in items",
                                   fix="pass items: a CSV text,category[,split]")
        items = Items(got[0], got[1], None, source=f"{cfg.dataset} items")
    if cfg.subtree is not None:
        n_old = tax.num_nodes
        tax, old = _subtree(tax, cfg.subtree)
        new_of = np.full(n_old, -1, dtype=np.int64)
        new_of[old] = np.arange(len(old))
        c = items.category
        inside = new_of[c] >= 0
        items = Items([t for t, k in zip(items.texts, inside) if k], new_of[c[inside]],
                      None if items.split is None else items.split[inside], items.source)
    if len(items) == 0:
        raise HGraphInputError("no items left", file=items.source)
    if cfg.category_context:
        tax.texts = context_texts(tax, cfg.category_context)
    t0 = time.perf_counter()
    xn = encode_texts(node_texts(tax), model=cfg.text_encoder, progress=cfg.progress)
    ids = items.item_ids()
    U = int(ids.max()) + 1
    first = np.full(U, -1, dtype=np.int64)
    first[ids[::-1]] = np.arange(len(ids))[::-1]
    texts = [items.texts[r] for r in first]
    # the rows' texts as the dataset lists them (one cache entry per item set), then one per item
    xi = encode_texts(items.texts, model=cfg.text_encoder, progress=cfg.progress)[first]
    states = None
    if cfg.item_text_layers and cfg.encoder in ITEM_MODELS:
        st, ln = token_states(texts, model=cfg.text_encoder, skip_last=cfg.item_text_layers,
                              progress=cfg.progress)
        states = (torch.as_tensor(st, device=device), torch.as_tensor(ln, device=device))
    node_states = None
    if cfg.shared_text_head and cfg.encoder in ITEM_MODELS:
        st, ln = token_states(node_texts(tax), model=cfg.text_encoder,
                              skip_last=cfg.item_text_layers, progress=cfg.progress)
        node_states = (torch.as_tensor(st, device=device), torch.as_tensor(ln, device=device))
    encode_s = time.perf_counter() - t0
    truth: List[List[int]] = [[] for _ in range(U)]
    for i, c in zip(ids, items.category):
        truth[i].append(int(c))
    is_cat = np.ones(tax.num_nodes, dtype=bool)
    keys = tax.keys if tax.keys is not None else tax.names
    is_cat[[i for i, k in enumerate(keys) if k == ICD_ROOT]] = False   # an artificial root
    cand = np.flatnonzero(is_cat)
    e = tax.edges
    ei = torch.from_numpy(np.concatenate([e.T, e[:, ::-1].T], axis=1).copy()).long()
    return ItemData(tax=tax, items=items,
                    x_nodes=torch.as_tensor(xn, dtype=dtype, device=device),
                    x_items=torch.as_tensor(xi, dtype=dtype, device=device),
                    item_texts=texts, truth=[np.asarray(t, dtype=np.int64) for t in truth],
                    cand=cand, adj=undirected(e, tax.num_nodes),
                    up_hops=transitive_closure(e, tax.num_nodes, hops=True), edge_index=ei.to(device),
                    encode_s=encode_s, item_states=states, node_states=node_states)


# ---------------------------------------------------------------------- training
class HardNegatives:
    """Per category: its siblings (other children of its parents) and, when
    those are fewer than asked for, random candidates of the same level."""

    def __init__(self, tax: Taxonomy, cand: np.ndarray):
        ok = np.zeros(tax.num_nodes, dtype=bool)
        ok[cand] = True
        self.ok = ok
        c2p, p2c = tax.child_to_parent, tax.parent_to_child
        self.c2p, self.p2c = c2p, p2c
        lv = tax.level
        self.by_level = {int(v): np.flatnonzero((lv == v) & ok) for v in np.unique(lv)}
        self.level = lv

    def sample(self, cats: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        out = []
        for c in cats:
            sib = []
            for p in self.c2p.indices[self.c2p.indptr[c]:self.c2p.indptr[c + 1]]:
                ch = self.p2c.indices[self.p2c.indptr[p]:self.p2c.indptr[p + 1]]
                sib.extend(int(x) for x in ch if x != c and self.ok[x])
            if len(sib) > k:
                sib = list(rng.choice(sib, size=k, replace=False))
            if len(sib) < k:
                pool = self.by_level[int(self.level[c])]
                if len(pool):
                    sib.extend(rng.choice(pool, size=k - len(sib)).tolist())
            out.extend(sib)
        return np.asarray(out, dtype=np.int64)


@torch.no_grad()
def mine_negatives(model: ItemModel, data: ItemData, items: np.ndarray, k: int,
                   chunk: int = 1024, cand: Optional[np.ndarray] = None) -> np.ndarray:
    """(n, k) global ids of the ``k`` candidates (of ``cand``, default all)
    nearest each item of ``items`` under the current model that are none of
    the item's true categories (as extreme-classification training mines
    them: ANCE, NGAME).  Training items only."""
    cand = data.cand if cand is None else cand
    zc = embed_categories(model, cand)
    extra = max(len(data.truth[i]) for i in items) if len(items) else 0
    kk = min(k + extra, len(cand))
    out = np.empty((len(items), k), dtype=np.int64)
    for a in range(0, len(items), chunk):
        ids = items[a:a + chunk]
        with evaluating(model):
            zi = model.items(data.item_input(ids))
        near = M.pairwise_dist(model.manifold, zi, zc).topk(kk, dim=1, largest=False).indices
        near = cand[near.cpu().numpy()]
        for r, i in enumerate(ids):
            row = near[r][~np.isin(near[r], data.truth[i])][:k]
            out[a + r] = np.resize(row, k) if len(row) else cand[:k]
    return out


def _optimizer(model: ItemModel, cfg: ItemTaskConfig):
    table = [p for p in model.parameters() if isinstance(p, geoopt.ManifoldParameter)]
    gate = [p for n, p in model.named_parameters() if n == "gate"]
    text = [p for n, p in model.named_parameters() if n.startswith("text_head.")]
    own = {id(p) for p in table + gate + text}
    rest = [p for p in model.parameters() if id(p) not in own]
    groups = [{"params": rest, "lr": cfg.lr}]
    for ps, lr in ((table, cfg.table_lr), (gate, cfg.gate_lr), (text, cfg.text_lr)):
        if ps:
            groups.append({"params": ps, "lr": lr})
    return geoopt.optim.RiemannianAdam(groups, lr=cfg.lr, stabilize=10)


@torch.no_grad()
def score_items(model, data: ItemData, items: np.ndarray, k: int = 10, z_cats=None,
                offset: Optional[Tensor] = None):
    """(topk (n, k), rank (n,)) of items ``items`` (item ids) over the candidates
    (``offset``: (C,) added to the distances, trained models only)."""
    truth = [data.truth[i] for i in items]
    if isinstance(model, Scorer):
        x = data.x_items[torch.as_tensor(items, device=data.x_items.device)]
        tops, ranks = [], []
        for a in range(0, len(items), 512):
            s = model.scores(x[a:a + 512])[:, torch.as_tensor(data.cand, device=x.device)]
            t, r = rank_scores(s, data.cand, truth[a:a + 512], k=k)
            tops.append(t)
            ranks.append(r)
        return np.concatenate(tops), np.concatenate(ranks)
    zc = embed_categories(model, data.cand) if z_cats is None else z_cats
    zi = embed_items(model, data, items)
    return rank_categories(model.manifold, zi, zc, data.cand, truth, k=k, offset=offset)


def _softmax_loss(model: ItemModel, data: ItemData, zi: Tensor, zc: Tensor, items: np.ndarray,
                  pool: np.ndarray, inv: np.ndarray) -> Tensor:
    """Cross-entropy of items ``items`` (points ``zi``) over the categories
    ``pool`` (points ``zc``), logits -scale * distance; item r's target is
    ``pool[inv[r]]``, and its other true categories are masked (not negatives)."""
    logits = -model.log_scale.exp() * M.pairwise_dist(model.manifold, zi, zc)
    mask = np.zeros((len(items), len(pool)), dtype=bool)
    pos_in_pool = {int(c): j for j, c in enumerate(pool)}
    for r, i in enumerate(items):
        for c in data.truth[i]:
            j = pos_in_pool.get(int(c))
            if j is not None and j != inv[r]:
                mask[r, j] = True
    if mask.any():
        logits = logits.masked_fill(torch.as_tensor(mask, device=zi.device), float("-inf"))
    return nn.functional.cross_entropy(logits, torch.as_tensor(inv[:len(items)],
                                                               device=zi.device))


def train_items(model: ItemModel, data: ItemData, sp: ItemSplits, cfg: ItemTaskConfig,
                seed: int) -> Dict[str, Any]:
    """Softmax over true + sampled categories; best validation P@1 kept."""
    rng = np.random.default_rng(seed + 1)
    dev = data.x_items.device
    train_rows = sp.rows("train")
    item_of, cat_of = sp.item[train_rows], sp.category[train_rows]
    neg_cand = data.cand if cfg.negative_pool == "all" else \
        np.intersect1d(data.cand, cat_of)
    hard = HardNegatives(data.tax, neg_cand)
    reg = None
    if cfg.reg_lambda > 0:
        allowed = np.zeros(data.tax.num_nodes, dtype=bool)
        allowed[data.cand] = True
        reg = GraphRegularizer(data.tax.edges, data.tax.num_nodes, kinds=cfg.reg_kinds,
                               margin=cfg.reg_margin, level=data.tax.level, allowed=allowed,
                               seed=seed)
    val_items = sp.items_of("val")
    if len(val_items) > cfg.val_max:
        val_items = np.sort(np.random.default_rng(seed + 2).choice(val_items, cfg.val_max,
                                                                   replace=False))
    opt = _optimizer(model, cfg)
    history: List[Dict[str, float]] = []
    best, best_state, best_epoch, bad = -1.0, None, 0, 0
    t0 = time.perf_counter()
    steps_per_epoch = max(1, int(np.ceil(len(train_rows) / cfg.batch_size)))

    def validate() -> float:
        if not len(val_items):
            return float("nan")
        top, _ = score_items(model, data, val_items, k=1)
        return float(np.mean([np.isin(t[:1], data.truth[i]).any()
                              for t, i in zip(top, val_items)]))

    v0 = validate()
    history.append({"epoch": 0, "val_p1": v0, "loss": float("nan"), "time_s": 0.0})
    # the state to keep: weights, and the category vectors a shared text head gave them
    best, best_state = v0, (copy.deepcopy(model.state_dict()), model.x_nodes)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    for epoch in range(1, cfg.epochs + 1):
        perm = rng.permutation(len(train_rows))
        mined = mine_negatives(model, data, item_of, cfg.mine_k, cand=neg_cand) \
            if cfg.mined_negatives > 0 else None
        losses = []
        it = range(steps_per_epoch)
        if cfg.progress and tqdm is not None:
            it = tqdm(it, desc=f"epoch {epoch}", leave=False, file=sys.stderr)
        for s in it:
            b = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            if not len(b):
                continue
            bi, bc = item_of[b], cat_of[b]
            neg = [rng.choice(neg_cand, size=cfg.negatives)]
            if cfg.hard_negatives > 0:
                neg.append(hard.sample(bc, cfg.hard_negatives, rng))
            if mined is not None:
                cols = rng.integers(0, mined.shape[1], size=(len(b), cfg.mined_negatives))
                neg.append(np.take_along_axis(mined[b], cols, axis=1).ravel())
            neg = np.concatenate(neg)
            pool, inv = np.unique(np.concatenate([bc, neg]), return_inverse=True)
            pool_t = torch.as_tensor(pool, device=dev)
            zc = model.categories(pool_t)
            zi = model.items(data.item_input(bi))
            loss = _softmax_loss(model, data, zi, zc, bi, pool, inv)
            if model.node_states is not None:
                # the shared head learns from the categories side in a second softmax whose
                # every category is encoded now: the batch's true ones and one sibling (or
                # same-level) negative each.  Fresh positives against the refreshed (stale)
                # negatives above would let the head lower the loss by moving every category
                # towards the items: measured, validation P@1 fell below RAMEN's.
                fpool, finv = np.unique(np.concatenate([bc, hard.sample(bc, 1, rng)]),
                                        return_inverse=True)
                zf = model.fresh_categories(torch.as_tensor(fpool, device=dev))
                loss = loss + _softmax_loss(model, data, zi, zf, bi, fpool, finv)
            if reg is not None:
                anchors = rng.choice(data.cand, size=cfg.reg_anchors)
                samples = reg.sample(anchors, rng)
                ids = reg.nodes(samples)
                z = model.categories(torch.as_tensor(ids, device=dev))
                parts = reg.loss(model.manifold, z, lambda a: np.searchsorted(ids, a), samples)
                loss = loss + cfg.reg_lambda * sum(parts.values())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch} step {s}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        if model.node_states is not None:
            model.refresh_categories()
        v = validate()
        el = time.perf_counter() - t0
        history.append({"epoch": epoch, "val_p1": v, "loss": float(np.mean(losses)),
                        "time_s": el})
        if cfg.progress:
            print(f"  epoch {epoch}: loss {np.mean(losses):.4f} val P@1 {v:.4f} "
                  f"({el:.0f} s)", file=sys.stderr)
        if v > best:
            best, best_state, best_epoch, bad = v, (copy.deepcopy(model.state_dict()),
                                                    model.x_nodes), epoch, 0
        else:
            bad += 1
        if bad >= cfg.patience or (cfg.time_cap_s and el >= cfg.time_cap_s):
            break
    model.load_state_dict(best_state[0])
    model.x_nodes = best_state[1]
    return {"train_time_s": time.perf_counter() - t0, "best_epoch": best_epoch,
            "epochs_run": history[-1]["epoch"], "best_val_p1": best, "history": history}


# ---------------------------------------------------------------------- evaluation
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


def inference_cost(model, data: ItemData, cfg: ItemTaskConfig, n_items: int = 1000,
                   n_new: int = 1000, seed: int = 0) -> Dict[str, float]:
    """Items per second (tower + ranking over every candidate; and with the
    text encoding), and seconds to add ``n_new`` categories (text + parent)
    to the trained model, with and without encoding their text."""
    rng = np.random.default_rng(seed)
    U = len(data.item_texts)
    sel = rng.choice(U, size=min(n_items, U), replace=False)
    t0 = time.perf_counter()
    x = item_input_from_texts([data.item_texts[i] for i in sel], cfg.text_encoder,
                              0 if isinstance(model, Scorer) else cfg.item_text_layers,
                              dtype=data.x_items.dtype, device=data.x_items.device)
    enc = time.perf_counter() - t0
    zc = None if isinstance(model, Scorer) else embed_categories(model, data.cand)
    t0 = time.perf_counter()
    with torch.no_grad():
        if isinstance(model, Scorer):
            for a in range(0, len(sel), 512):
                torch.topk(model.scores(x[a:a + 512]), 10, dim=1)
        else:
            with evaluating(model):
                zi = model.items(x)
            for a in range(0, len(sel), 512):
                torch.topk(-M.pairwise_dist(model.manifold, zi[a:a + 512], zc), 10, dim=1)
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
    shared = not isinstance(model, Scorer) and model.node_states is not None
    t0 = time.perf_counter()
    # a shared text head encodes categories as items: the lower layers' states, then the head
    xnew = item_input_from_texts(texts, cfg.text_encoder, cfg.item_text_layers if shared else 0,
                                 dtype=data.x_nodes.dtype, device=data.x_nodes.device)
    enc_new = time.perf_counter() - t0
    N = tax.num_nodes
    t0 = time.perf_counter()
    with torch.no_grad():
        if isinstance(model, Scorer):
            nn.functional.normalize(xnew, dim=-1)
        else:
            if shared:
                with evaluating(model):
                    xnew = model.text_head(*xnew)
            x_all = torch.cat([model.x_nodes, xnew])
            par = tax.child_to_parent
            parents = np.array([par.indices[par.indptr[c]] if par.indptr[c + 1] > par.indptr[c]
                                else c for c in src])
            new_ids = torch.arange(N, N + n_new, device=x_all.device)
            extra = torch.stack([torch.as_tensor(parents, device=x_all.device), new_ids])
            ei = torch.cat([data.edge_index, extra, extra.flip(0)], dim=1)
            with evaluating(model):
                model.new_categories(x_all, ei, new_ids)
    add = time.perf_counter() - t0
    out.update({"new_categories_s": add, "new_categories_s_with_text": add + enc_new})
    return out


def build(cfg: ItemTaskConfig, data: ItemData, sp: ItemSplits, seed: int):
    """The model (trained kind) or scorer (baseline) of ``cfg.encoder``."""
    if cfg.encoder in SCORERS:
        tr = sp.rows("train")
        x_train = data.x_items[torch.as_tensor(sp.item[tr], device=data.x_items.device)]
        return SCORERS[cfg.encoder](data.x_nodes, x_train,
                                    torch.as_tensor(sp.category[tr], device=x_train.device))
    manifold = M.make_manifold(cfg.manifold, 1.0, False)
    torch.manual_seed(seed)
    model = ITEM_MODELS[cfg.encoder](manifold, data.x_nodes, data.edge_index, hidden=cfg.hidden,
                                     layers=cfg.layers, dropout=cfg.dropout,
                                     gcn_hidden=cfg.gcn_hidden, gcn_layers=cfg.gcn_layers,
                                     item_adapter=cfg.item_adapter,
                                     text_head=TextHead.from_encoder(cfg.text_encoder,
                                                                     cfg.item_text_layers)
                                     if cfg.item_text_layers else None)
    model = model.to(device=data.x_nodes.device, dtype=data.x_nodes.dtype)
    if data.node_states is not None:
        model.share_text_head(data.node_states)
    return model


def run_seed(cfg: ItemTaskConfig, data: ItemData, seed: int,
             measure_cost: bool = True) -> Tuple[Dict[str, Any], Dict]:
    """Split, build, train, evaluate one seed -> (metrics, per-item arrays);
    the inference cost is timed when ``measure_cost``."""
    cand_mask = np.zeros(data.tax.num_nodes, dtype=bool)
    cand_mask[data.cand] = True
    sp = make_item_splits(data.items, data.tax.num_nodes, cfg.zero_shot_frac, cfg.val_frac,
                          cfg.test_frac, seed=seed, candidates=cand_mask)
    model = build(cfg, data, sp, seed)
    info: Dict[str, Any] = {"train_time_s": 0.0, "best_epoch": 0, "epochs_run": 0,
                            "history": []}
    if model.trainable:
        info = train_items(model, data, sp, cfg, seed)
    test = sp.items_of("test")
    t0 = time.perf_counter()
    top, rank = score_items(model, data, test, k=10)
    eval_s = time.perf_counter() - t0
    truth = [data.truth[i] for i in test]
    per_item = item_metrics(top, rank, truth, data.adj, data.up_hops, cand_mask)
    slices = sp.slice_of(test)
    metrics = summarize(per_item, slices)
    metrics.update({k: v for k, v in info.items() if k != "history"})
    if measure_cost:
        metrics.update(inference_cost(model, data, cfg, n_items=cfg.cost_items,
                                      n_new=cfg.cost_items, seed=seed))
    metrics.update({"seed": seed, "eval_time_s": eval_s, **sp.summary()})
    if not model.trainable:
        metrics["best_val_p1"] = float(np.mean([np.isin(t[:1], data.truth[i]).any() for t, i in
                                                zip(score_items(model, data, sp.items_of("val"),
                                                                k=1)[0], sp.items_of("val"))])) \
            if len(sp.items_of("val")) else float("nan")
    arrays = {"items": test, "slice": slices.astype(str), "top1": top[:, 0], "rank": rank,
              **per_item}
    twin = None
    if cfg.calibrate and model.trainable:
        twin = _twin(cfg, data, sp, seed)
        m_cal, a_cal = _calibrated(cfg, data, sp, seed, model, test, slices, cand_mask, twin)
        metrics.update(m_cal)
        arrays.update(a_cal)
    if cfg.rerank:
        twin = twin or _twin(cfg, data, sp, seed)
        m_rr, a_rr = _reranked(cfg, data, sp, seed, model, test, slices, cand_mask, twin, rank)
        metrics.update(m_rr)
        arrays.update(a_rr)
    return metrics, {"history": info["history"], "arrays": arrays, "model": model}


def _twin(cfg: ItemTaskConfig, data: ItemData, sp: ItemSplits, seed: int):
    """(inner split, held-out item ids, twin model, its training info, seconds): the
    model of ``cfg`` trained on :func:`hgraph.tasks.calibration.hold_out_categories`'
    inner split (an untrained baseline is just built on it), shared by calibrated
    stacking and the reranker."""
    from hgraph.tasks import calibration as C
    t0 = time.perf_counter()
    inner, held = C.hold_out_categories(sp, cfg.zero_shot_frac, seed)
    twin = build(cfg, data, inner, seed)
    info = train_items(twin, data, inner, replace(cfg, progress=False), seed) \
        if twin.trainable else {"train_time_s": 0.0, "best_val_p1": float("nan")}
    return inner, held, twin, info, time.perf_counter() - t0


def _calibrated(cfg: ItemTaskConfig, data: ItemData, sp: ItemSplits, seed: int, model,
                test: np.ndarray, slices: np.ndarray, cand_mask: np.ndarray, twin_parts):
    """Calibrated stacking (:mod:`hgraph.tasks.calibration`): the twin model on
    the inner split (:func:`_twin`) chooses γ on validation; ``model`` is scored on
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


def _reranked(cfg: ItemTaskConfig, data: ItemData, sp: ItemSplits, seed: int, model,
              test: np.ndarray, slices: np.ndarray, cand_mask: np.ndarray, twin_parts,
              first_rank: np.ndarray):
    """The learned second stage (:mod:`hgraph.tasks.rerank`): fitted on the twin's
    top-``cfg.rerank`` lists for the validation items of the inner split's seen
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
        ids, score = RR.candidate_lists(twin, data, items, cfg.rerank)
        groups.append((feats(items, ids, score, inner.train_count),
                       RR.labels(ids, [data.truth[i] for i in items])))
    rr = RR.Reranker(seed)
    fit = rr.fit(groups)
    ids, score = RR.candidate_lists(model, data, test, cfg.rerank)
    order = rr.order(feats(test, ids, score, sp.train_count), cfg.rerank)
    truth = [data.truth[i] for i in test]
    top, rank = RR.reranked(ids, order, first_rank, truth)
    per_item = item_metrics(top, rank, truth, data.adj, data.up_hops, cand_mask)
    m = {f"rr_{k}": v for k, v in summarize(per_item, slices).items() if not k.startswith("n_")}
    m.update({"rr_k": cfg.rerank, "rr_fit_items_seen": fit["items_0"],
              "rr_fit_items_unseen": fit["items_1"], "rr_iterations": fit["iterations"],
              "rr_twin_train_s": twin_info["train_time_s"], "rr_twin_s": twin_s,
              "rr_time_s": time.perf_counter() - t0})
    if cfg.progress:
        print(f"  reranker (top {cfg.rerank}, fitted on {fit['items_0']} seen + "
              f"{fit['items_1']} unseen items): test P@1 {m['rr_p1']:.4f} (seen "
              f"{m['rr_p1_seen']:.4f}, zero {m['rr_p1_zero']:.4f})", file=sys.stderr)
    arrays = {f"rr_{k}": v for k, v in per_item.items()}
    arrays.update({"rr_top1": top[:, 0], "rr_rank": rank})
    return m, arrays


def export_model(model: ItemModel, data: ItemData, cfg: ItemTaskConfig, path: Path) -> None:
    """What placing new text needs, without the data: the item tower's weights,
    the candidates' points, names and first parents (for paths)."""
    par = data.tax.child_to_parent
    parent = np.array([par.indices[par.indptr[i]] if par.indptr[i + 1] > par.indptr[i] else -1
                       for i in range(data.tax.num_nodes)], dtype=np.int64)
    keys = data.tax.keys if data.tax.keys is not None else data.tax.names
    torch.save({"config": cfg.to_dict(), "tower": model.tower.state_dict(),
                "adapter": None if model.adapter is None else model.adapter.state_dict(),
                "text_head": None if model.text_head is None else model.text_head.state_dict(),
                "in_dim": int(data.x_nodes.shape[1]),
                "scale": float(model.log_scale.detach().exp()),
                "cand": torch.as_tensor(data.cand),
                "cat_points": embed_categories(model, data.cand).cpu(),
                "names": [str(n) for n in data.tax.names], "keys": [str(k) for k in keys],
                "parent": torch.as_tensor(parent)}, path)


def load_exported(path) -> Tuple[Any, Dict[str, Any]]:
    """(item tower on its manifold, the export's dict) of :func:`export_model`."""
    from hgraph.tasks.item_models import ItemAdapter, ItemTower, TextHead, make_tower
    d = torch.load(path, map_location="cpu", weights_only=False)
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
        head = TextHead.from_encoder(cfg["text_encoder"], cfg["item_text_layers"])
        head.load_state_dict(d["text_head"])
    return ItemTower(tower, adapter, head).to(d["cat_points"].dtype).eval(), d


def _write_metrics(run_dir, cfg, command, per_seed, histories, data, device, t_wall,
                   complete: bool):
    agg = R.aggregate([{k: v for k, v in m.items() if isinstance(v, (int, float))}
                       for m in per_seed])
    meta = {"command": command, "config": cfg.to_dict(), "complete": complete,
            "seeds_done": [m["seed"] for m in per_seed],
            "wall_time_s": time.perf_counter() - t_wall, "text_encode_s": data.encode_s,
            "git": R.git_hash(str(Path(__file__).resolve().parent.parent.parent)),
            "env": R.environment(device), "torch_threads": torch.get_num_threads(),
            "nodes": data.tax.num_nodes, "candidates": int(len(data.cand)),
            "items": len(data.item_texts), "rows": len(data.items)}
    R.atomic_write_json(run_dir / "metrics.json", {"mean_std": agg, "per_seed": per_seed,
                                                   "run": meta})
    R.atomic_write_json(run_dir / "history.json", histories)
    return agg, meta


#: settings that do not change what a seed computes
_NOT_RESULT = ("seeds", "name", "out", "progress")


def _reusable(cfg: ItemTaskConfig, reuse) -> Dict[int, Tuple[Dict, Any, Path]]:
    """Seeds of ``cfg`` already finished by run folder ``reuse`` under the same
    settings (e.g. the validation trial a tuned run was chosen from):
    seed -> (metrics, history, folder).  Empty when the settings differ."""
    if reuse is None or not (Path(reuse) / "metrics.json").exists():
        return {}
    m = json.loads((Path(reuse) / "metrics.json").read_text())
    hist = json.loads((Path(reuse) / "history.json").read_text())
    mine = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_RESULT}
    # a setting added after that run was made is taken at its default (which is
    # what that run did)
    theirs = {k: v for k, v in {**ItemTaskConfig().to_dict(), **m["run"]["config"]}.items()
              if k not in _NOT_RESULT}
    if mine != theirs:
        return {}
    return {ps["seed"]: (ps, h, Path(reuse)) for ps, h in zip(m["per_seed"], hist)
            if ps["seed"] in cfg.seeds}


def run_items(cfg: ItemTaskConfig, command: str = "", reuse=None,
              resume: bool = False) -> Dict[str, Any]:
    """Run every seed of ``cfg``; write ``<out>/<name>/``; return the metrics.

    ``reuse``: a run folder whose seeds, run under the same settings, are
    copied instead of recomputed (a tuned run takes its chosen trial's seed).
    ``resume``: the seeds ``<out>/<name>/`` itself already holds under the same
    settings are kept, so an interrupted run goes on with its next seed."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    from hgraph.train import resolve_device
    device = resolve_device(cfg.device)
    t_wall = time.perf_counter()
    data = load_item_data(cfg, device, dtype=R.DTYPES[cfg.dtype])
    name = cfg.name or R.slug(f"{cfg.dataset}-{cfg.encoder}-{cfg.manifold}")
    run_dir = Path(cfg.out) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    per_seed, histories = [], []
    agg, meta = {}, {}
    done = _reusable(cfg, reuse)
    if resume:
        done.update(_reusable(cfg, run_dir))
    for seed in cfg.seeds:
        if seed in done:
            m, hist, src = done[seed]
            for f in (f"per_item_seed{seed}.npz", f"model_seed{seed}.pt"):
                if (src / f).exists() and src.resolve() != run_dir.resolve():
                    shutil.copyfile(src / f, run_dir / f)
            per_seed.append({**m, "reused_from": m.get("reused_from", str(src))}
                            if src.resolve() != run_dir.resolve() else m)
            histories.append(hist)
            if cfg.progress:
                print(f"[{cfg.encoder} seed {seed}] taken from {src} (same settings)"
                      if src.resolve() != run_dir.resolve() else
                      f"[{cfg.encoder} seed {seed}] already in {run_dir} (--resume)",
                      file=sys.stderr)
            agg, meta = _write_metrics(run_dir, cfg, command, per_seed, histories, data, device,
                                       t_wall, complete=seed == cfg.seeds[-1])
            continue
        if cfg.progress:
            print(f"[{cfg.encoder} seed {seed}] {cfg.dataset}: {data.tax.num_nodes} nodes, "
                  f"{len(data.cand)} candidates, {len(data.item_texts)} items", file=sys.stderr)
        torch.manual_seed(seed)
        # inference cost: timed on the first seed only (it does not depend on the split)
        m, extra = run_seed(cfg, data, seed, measure_cost=seed == cfg.seeds[0])
        per_seed.append(m)
        histories.append(extra["history"])
        np.savez_compressed(run_dir / f"per_item_seed{seed}.npz", **extra["arrays"])
        if extra["model"].trainable:
            export_model(extra["model"], data, cfg, run_dir / f"model_seed{seed}.pt")
        if cfg.progress:
            print(f"[{cfg.encoder} seed {seed}] P@1 {m['p1']:.4f} (head {m['p1_head']:.4f}, "
                  f"tail {m['p1_tail']:.4f}, zero {m['p1_zero']:.4f}) P@5 {m['p5']:.4f} "
                  f"MRR {m['mrr']:.4f} train {m['train_time_s']:.0f} s", file=sys.stderr)
        # written after every seed: an interrupted run keeps the seeds it finished
        agg, meta = _write_metrics(run_dir, cfg, command, per_seed, histories, data, device,
                                   t_wall, complete=seed == cfg.seeds[-1])
    return {"run_dir": str(run_dir), "mean_std": agg, "per_seed": per_seed, "run": meta}


__all__ = ["ItemTaskConfig", "config_from_dict", "ItemData", "load_item_data", "train_items",
           "score_items", "run_seed", "run_items", "summarize", "inference_cost", "METRICS",
           "HardNegatives"]
