"""The item task's data: a taxonomy with node text, labelled items, their text
vectors (frozen sentence encoder, cached) and the candidate categories.

``load_item_data(cfg, device, dtype) -> ItemData`` reads the dataset
(:data:`hgraph.data.datasets.DATASETS`: it knows its taxonomy, node texts,
built-in items and candidate categories) or the user's files (``items.items``,
``items.node_text``), cuts ``items.subtree``, adds ancestor context to the
category texts (``items.category_context``) and encodes every text once.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

from hgraph.config import RunConfig
from hgraph.data.datasets import DATASETS, dataset_candidates, dataset_items
from hgraph.data.item_splits import make_item_splits
from hgraph.data.items import Items, read_items, read_node_texts
from hgraph.data.taxonomy import Taxonomy, transitive_closure
from hgraph.data.text import encode_texts, node_texts, token_states
from hgraph.errors import HGraphInputError
from hgraph.eval.items import undirected
from hgraph.tasks.item_models import ITEM_MODELS

Tensor = torch.Tensor


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
    #: (N,) what a person reads for each node: the node-text file's name column, the
    #: dataset's names, or the text of a node named only by its key
    names: Optional[List[str]] = None

    def item_input(self, ids) -> Any:
        """What the item side of a model takes for items ``ids``: their text
        vectors, or (token states, lengths) when the encoder's top is trained."""
        ids = torch.as_tensor(ids, device=self.x_items.device)
        if self.item_states is None:
            return self.x_items[ids]
        st, ln = self.item_states
        return st[ids].to(self.x_items.dtype), ln[ids]


def item_input_from_texts(texts: Sequence[str], text_encoder: str, text_layers: int,
                          dtype=torch.float32, device=None, precision: str = "float32") -> Any:
    """The item side's input for new texts (not cached): text vectors, or with
    ``text_layers`` k the token states entering the encoder's last k layers."""
    if text_layers:
        st, ln = token_states(texts, model=text_encoder, skip_last=text_layers, progress=False,
                              cache=False)
        return (torch.as_tensor(st, device=device).to(dtype), torch.as_tensor(ln, device=device))
    return torch.as_tensor(encode_texts(texts, model=text_encoder, progress=False, cache=False,
                                        precision=precision),
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


def _subtree_nodes(tax: Taxonomy, top: str) -> np.ndarray:
    """Ids of ``top`` and its descendants (the nodes :func:`_subtree` keeps)."""
    root = tax.index(top)
    return np.union1d([root], tax.closure[:, root].nonzero()[0])


#: taxonomy sources already warned about having no node text (one warning per process)
_WARNED_NO_TEXT: set = set()


def _warn_no_node_text(tax: Taxonomy) -> None:
    """One stderr line, once per taxonomy: its nodes have no text, so their keys
    (or names) are what the text encoder reads."""
    if tax.source in _WARNED_NO_TEXT:
        return
    _WARNED_NO_TEXT.add(tax.source)
    keys = tax.keys if tax.keys is not None else tax.names
    what = "keys" if list(map(str, tax.names)) == list(map(str, keys)) else "names"
    print(f"warning: {tax.source} has no node text: the node {what} (e.g. "
          f"{str(tax.names[0])!r}) are used as texts; pass --node-text FILE (CSV id,text, "
          f"one row per node) to give each category its text", file=sys.stderr)


def check_enough(cfg: RunConfig, tax: Taxonomy, items: Items) -> None:
    """Refuse, before anything is written, a run that cannot rank or be scored:
    fewer than 2 candidate categories, or a seed whose split of ``items`` leaves
    no training or no test item (the split :func:`make_item_splits` draws)."""
    cand = dataset_candidates(cfg.data, tax)
    if len(cand) < 2:
        raise HGraphInputError(f"{len(cand)} candidate categor{'y' if len(cand) == 1 else 'ies'}"
                               f": ranking needs at least 2", file=tax.source,
                               fix="choose a larger taxonomy or --subtree")
    U = int(items.item_ids().max()) + 1
    rows = f"{U} item{'s' if U != 1 else ''} ({len(items)} row{'s' if len(items) != 1 else ''})"
    if U < 2:
        raise HGraphInputError(f"too few items for train/validation/test splits: {rows}; "
                               f"need at least 2, one to train on and one to test",
                               file=items.source, fix="add items")
    mask = np.zeros(tax.num_nodes, dtype=bool)
    mask[cand] = True
    for seed in cfg.seeds:
        sp = make_item_splits(items, tax.num_nodes, cfg.items.zero_shot_frac, cfg.data.val_frac,
                              cfg.data.test_frac, seed=seed, candidates=mask)
        for part in ("train", "test"):
            if not (sp.part == part).any():
                raise HGraphInputError(
                    f"too few items for train/validation/test splits: {rows} leave seed "
                    f"{seed} no {part} item (test_frac {cfg.data.test_frac:g}, val_frac "
                    f"{cfg.data.val_frac:g}, zero_shot_frac {cfg.items.zero_shot_frac:g})",
                    file=items.source, fix="add items, or give the items file a split column "
                                           "(train/val/test)")


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


def load_item_data(cfg: RunConfig, device: torch.device, dtype=torch.float32) -> ItemData:
    """Taxonomy, items, text vectors (cached), candidates and graph."""
    dcfg = cfg.data
    name, _, arg = cfg.data.dataset.partition(":")
    if name not in DATASETS:
        raise HGraphInputError(f"unknown dataset {cfg.data.dataset!r}",
                               fix=f"choose from {', '.join(sorted(DATASETS))}")
    tax = DATASETS[name].load(dcfg, arg or None)
    names = [str(n) for n in tax.names]        # what a person reads: a name column wins
    if cfg.items.node_text is not None:   # with a subtree, its nodes alone need a text
        tax.texts = read_node_texts(cfg.items.node_text, tax, None if cfg.items.subtree is None
                                    else _subtree_nodes(tax, cfg.items.subtree), names=names)
    elif tax.texts is None:
        _warn_no_node_text(tax)
    if cfg.items.items is not None:
        items = read_items(cfg.items.items, tax)
    else:
        got = dataset_items(dcfg, tax)
        if got is None:
            raise HGraphInputError(f"dataset {cfg.data.dataset!r} has no built-in items",
                                   fix="pass items: a CSV text,category[,split]")
        items = Items(got[0], got[1], None, source=f"{cfg.data.dataset} items")
    if cfg.items.subtree is not None:
        n_old = tax.num_nodes
        tax, old = _subtree(tax, cfg.items.subtree)
        names = [names[i] for i in old]
        new_of = np.full(n_old, -1, dtype=np.int64)
        new_of[old] = np.arange(len(old))
        c = items.category
        inside = new_of[c] >= 0
        items = Items([t for t, k in zip(items.texts, inside) if k], new_of[c[inside]],
                      None if items.split is None else items.split[inside], items.source)
    if len(items) == 0:
        raise HGraphInputError("no items left", file=items.source)
    check_enough(cfg, tax, items)   # too few candidates or items: refused before writing
    # a node named only by its key (a code) is shown by its text
    keys = tax.keys if tax.keys is not None else tax.names
    names = [t if n == str(k) and t else n
             for n, k, t in zip(names, keys, tax.texts or [None] * tax.num_nodes)]
    if cfg.items.category_context:
        tax.texts = context_texts(tax, cfg.items.category_context)
    t0 = time.perf_counter()
    prec = cfg.data.text_precision
    xn = encode_texts(node_texts(tax), model=cfg.data.text_encoder, progress=cfg.progress,
                      precision=prec)
    ids = items.item_ids()
    U = int(ids.max()) + 1
    first = np.full(U, -1, dtype=np.int64)
    first[ids[::-1]] = np.arange(len(ids))[::-1]
    texts = [items.texts[r] for r in first]
    # the rows' texts as the dataset lists them (one cache entry per item set), then one per item
    xi = encode_texts(items.texts, model=cfg.data.text_encoder, progress=cfg.progress,
                      precision=prec)[first]
    states = None
    if cfg.items.item_text_layers and cfg.model.encoder in ITEM_MODELS:
        st, ln = token_states(texts, model=cfg.data.text_encoder, skip_last=cfg.items.item_text_layers,
                              progress=cfg.progress)
        states = (torch.as_tensor(st, device=device), torch.as_tensor(ln, device=device))
    node_states = None
    if cfg.items.shared_text_head and cfg.model.encoder in ITEM_MODELS:
        st, ln = token_states(node_texts(tax), model=cfg.data.text_encoder,
                              skip_last=cfg.items.item_text_layers, progress=cfg.progress)
        node_states = (torch.as_tensor(st, device=device), torch.as_tensor(ln, device=device))
    encode_s = time.perf_counter() - t0
    truth: List[List[int]] = [[] for _ in range(U)]
    for i, c in zip(ids, items.category):
        truth[i].append(int(c))
    cand = dataset_candidates(dcfg, tax)
    e = tax.edges
    ei = torch.from_numpy(np.concatenate([e.T, e[:, ::-1].T], axis=1).copy()).long()
    return ItemData(tax=tax, items=items,
                    x_nodes=torch.as_tensor(xn, dtype=dtype, device=device),
                    x_items=torch.as_tensor(xi, dtype=dtype, device=device),
                    item_texts=texts, truth=[np.asarray(t, dtype=np.int64) for t in truth],
                    cand=cand, adj=undirected(e, tax.num_nodes),
                    up_hops=transitive_closure(e, tax.num_nodes, hops=True), edge_index=ei.to(device),
                    encode_s=encode_s, item_states=states, node_states=node_states,
                    names=names)

