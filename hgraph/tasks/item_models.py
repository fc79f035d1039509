"""Models of the item -> category task: one shared item tower, four ways to
place the categories, and two untrained baselines.

Every trained model embeds an item the same way: its text vector (frozen
sentence encoder) through the ``ramen`` encoder's tower
(:class:`~hgraph.nn.ramen.RamenEncoder` with the residual start: features ->
scale * unit vector + MLP -> exponential map), so the per-item cost is equal
and a comparison isolates how the categories are embedded and how the graph
is used:

* ``ramen`` (:class:`SiameseModel`): categories through the *same* tower
  from their own text; the graph enters only as training regularisers.
* ``hgcn`` (:class:`GraphModel`): categories through the tower plus a
  hyperbolic GCN over the category graph, added in the tangent space at the
  origin through a gate that starts at 0 (so at initialisation it equals
  ``ramen`` and training decides what the graph adds).  Placing a new
  category needs its k-hop neighbourhood.
* ``shallow`` (:class:`TableModel`): a free point per category
  (transductive: a category with no training item keeps a random point).
* ``knn`` (:class:`KnnScorer`): the category of the nearest training item by
  raw text vector (cosine); categories with no training item rank last.
* ``features`` (:class:`CosineScorer`): cosine of the item's and the
  category's text vectors, nothing trained.

Capabilities are declared (``trainable``, ``uses_graph``, ``places_new``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Optional, Tuple, Type

import geoopt
import numpy as np
import torch
from torch import nn

from hgraph import manifolds as M
from hgraph.nn.hgcn import HGCNEncoder
from hgraph.nn.ramen import RamenEncoder

Tensor = torch.Tensor


def make_tower(manifold: geoopt.Manifold, in_dim: int, hidden: int, layers: int,
               dropout: float = 0.0) -> RamenEncoder:
    """The shared item tower: residual RAMEN tower of output width ``in_dim``
    (its skip path is the identity, so at initialisation distances rank
    exactly as the cosine of the text vectors)."""
    return RamenEncoder(manifold, in_dim, in_dim, hidden=hidden, layers=layers,
                        dropout=dropout, residual=True)


class ItemAdapter(nn.Module):
    """An item-only residual MLP in front of the shared tower: ``x + MLP(x)``,
    its last layer zero at the start (so the model starts as without it).
    Items (inclusion terms, synonyms, sentences) are not worded like category
    descriptions; the adapter lets the item side move before the shared tower."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mlp(x)


class TextHead(nn.Module):
    """A trainable copy of the sentence encoder's last ``k`` transformer
    layers, then its mean pooling and L2 normalisation: token states (from
    :func:`hgraph.data.text.token_states`) -> the text vector.  Untrained, it
    gives exactly the frozen encoder's vector; trained on the item side only,
    it fine-tunes the encoder's top for items without re-encoding the
    categories (whose vectors stay the frozen encoder's)."""

    def __init__(self, layers: nn.ModuleList, precision: str = "float32"):
        super().__init__()
        self.layers = layers
        #: the layers' arithmetic: "float32", or "bfloat16" autocast (mixed precision:
        #: ``data.text_precision``; meant for a GPU, slower on an AVX2-only CPU); the
        #: pooled vector is float32 (the states' dtype) either way
        self.precision = precision

    @classmethod
    def from_encoder(cls, model: str, k: int, precision: str = "float32") -> "TextHead":
        import copy
        from hgraph.data.text import _model
        bert = _model(model)[0].auto_model
        return cls(nn.ModuleList(copy.deepcopy(m) for m in bert.encoder.layer[-k:]), precision)

    def into_encoder(self, model: str):
        """The inverse of :meth:`from_encoder`: a copy of the sentence encoder ``model``
        (a SentenceTransformer) whose last k layers are these (trained) ones."""
        import copy
        from hgraph.data.text import _model
        st = copy.deepcopy(_model(model))
        layer = st[0].auto_model.encoder.layer
        dtype = next(st.parameters()).dtype
        for j, m in enumerate(self.layers):
            layer[len(layer) - len(self.layers) + j] = copy.deepcopy(m).to(dtype)
        return st

    #: texts per chunk of similar length (a batch padded to its longest text wasted ~5x
    #: the work on ICD-10-CM inclusion terms: 12 tokens on average, 80 at most)
    CHUNK = 64

    def forward(self, states: Tensor, lengths: Tensor) -> Tensor:
        """(n, T, F) token states, (n,) lengths -> (n, F) unit vectors."""
        if len(lengths) <= self.CHUNK:
            return self._forward(states, lengths)
        order = torch.argsort(lengths)
        out = torch.cat([self._forward(states[idx], lengths[idx])
                         for idx in torch.split(order, self.CHUNK)])
        return out[torch.argsort(order)]

    def _forward(self, states: Tensor, lengths: Tensor) -> Tensor:
        T = int(lengths.max())
        h = states[:, :T]
        keep = torch.arange(T, device=h.device)[None, :] < lengths[:, None]
        # additive attention mask over the keys, as BERT builds it
        mask = (~keep)[:, None, None, :].to(h.dtype) * torch.finfo(h.dtype).min
        dtype = h.dtype
        with torch.autocast(h.device.type, dtype=torch.bfloat16,
                            enabled=self.precision == "bfloat16"):
            for layer in self.layers:
                out = layer(h, attention_mask=mask)
                h = out[0] if isinstance(out, tuple) else out
        h = h.to(dtype)
        w = keep.to(h.dtype)[..., None]
        return nn.functional.normalize((h * w).sum(1) / w.sum(1), dim=-1)


class ItemTower(nn.Module):
    """What an item goes through: the adapter (when there is one), then the tower."""

    def __init__(self, tower: RamenEncoder, adapter: Optional[ItemAdapter] = None,
                 text_head: Optional[TextHead] = None):
        super().__init__()
        self.tower, self.adapter, self.text_head = tower, adapter, text_head
        self.manifold = tower.manifold

    def forward(self, x) -> Tensor:
        """``x``: (n, F) text vectors, or with a text head (states, lengths)."""
        return item_points(self, x)


def item_points(m, x) -> Tensor:
    """An item's way through model or tower ``m``: text head (when there is
    one; ``x`` is then (states, lengths)), adapter (when there is one), tower."""
    if m.text_head is not None:
        x = m.text_head(*x)
    return m.tower(x if m.adapter is None else m.adapter(x))


class ItemModel(nn.Module):
    """Base: ``items(x) -> (n, D)`` points, ``categories(ids) -> (k, D)``."""

    trainable = True
    uses_graph = False
    #: can place a category none of whose items was seen (zero-shot)
    places_new = True

    def __init__(self, manifold: geoopt.Manifold, x_nodes: Tensor, edge_index: Tensor,
                 hidden: int = 256, layers: int = 2, dropout: float = 0.0,
                 item_adapter: int = 0, text_head: Optional[TextHead] = None, **kw):
        super().__init__()
        self.manifold = manifold
        self.register_buffer("x_nodes", x_nodes, persistent=False)
        self.register_buffer("edge_index", edge_index, persistent=False)
        self.tower = make_tower(manifold, x_nodes.shape[1], hidden, layers, dropout)
        #: items only (``item_adapter`` its hidden width; 0: none, items and categories
        #: share the whole tower)
        self.adapter = ItemAdapter(x_nodes.shape[1], item_adapter, dropout) \
            if item_adapter else None
        #: items only: the sentence encoder's top layers, trained (None: frozen vectors)
        self.text_head = text_head
        # logits = -scale * distance; learned (CLIP-style temperature), log-parametrised
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(10.0))))

    #: with a shared text head (``shared_text_head``): (token states (N, T, F), lengths (N,))
    #: of every node; ``x_nodes`` then holds the head's vectors of them (:meth:`refresh_categories`)
    node_states: Optional[Tuple[Tensor, Tensor]] = None

    def items(self, x) -> Tensor:
        """(n, F) item text vectors (with a text head: (states, lengths)) -> (n, D) points."""
        return item_points(self, x)

    def share_text_head(self, node_states: Tuple[Tensor, Tensor]) -> None:
        """Encode the categories with the (trained) text head too, from ``node_states``."""
        if self.text_head is None:
            raise ValueError("a shared text head needs a text head (item_text_layers >= 1)")
        self.node_states = node_states
        self.refresh_categories()

    def node_vectors(self, ids: Tensor) -> Tensor:
        """(k, F) the text head's vectors of nodes ``ids`` (with gradients)."""
        st, ln = self.node_states
        return self.text_head(st[ids].to(self.x_nodes.dtype), ln[ids])

    @torch.no_grad()
    def refresh_categories(self, chunk: int = 4096) -> None:
        """``x_nodes`` <- the text head's vectors of every node, in eval mode (in
        chunks: the float16 states of all 47k ICD-10-CM codes are ~1 GB; as float32
        at once they would be twice that again)."""
        n = self.node_states[1].shape[0]
        with evaluating(self):
            self.x_nodes = torch.cat([self.node_vectors(torch.arange(a, min(a + chunk, n),
                                                                     device=self.x_nodes.device))
                                      for a in range(0, n, chunk)])

    def categories(self, ids: Optional[Tensor] = None) -> Tensor:
        """Points of categories ``ids`` (k,) (all nodes when None) -> (k, D)."""
        raise NotImplementedError

    def new_categories(self, x_all: Tensor, edge_index: Tensor, nodes: Tensor) -> Tensor:
        """Points of categories added after training: ``x_all`` (N', F) text
        vectors of the grown graph, ``edge_index`` (2, E') its edges, ``nodes``
        (k,) the new ones -> (k, D)."""
        return self.tower(x_all[nodes])

    def export_state(self, data) -> dict:
        """What placing new text needs of this model (see :mod:`hgraph.tasks.item_export`)."""
        return {"kind": "tower", "tower": self.tower.state_dict(),
                "adapter": None if self.adapter is None else self.adapter.state_dict(),
                "text_head": None if self.text_head is None else self.text_head.state_dict(),
                "scale": float(self.log_scale.detach().exp()),
                "cat_points": embed_categories(self, data.cand).cpu()}

    def sparse_parameters(self):
        """None: every parameter is dense (the loop's sparse-table hook)."""
        return []

    # ---- the interface every item model and baseline shares (see Scorer)
    @property
    def reads_token_states(self) -> bool:
        """Items enter as (token states, lengths) (a trained text head), not vectors."""
        return self.text_head is not None

    @property
    def encodes_categories_as_items(self) -> bool:
        """New categories' text goes through the item side's text head too."""
        return self.node_states is not None

    @torch.no_grad()
    def rank(self, data, items: np.ndarray, k: int = 10, z_cats=None,
             offset: Optional[Tensor] = None):
        """(topk (n, k), rank (n,)) of items ``items`` over ``data.cand`` by distance
        (``offset``: (C,) added to the distances)."""
        from hgraph.eval.items import rank_categories
        truth = [data.truth[i] for i in items]
        zc = embed_categories(self, data.cand) if z_cats is None else z_cats
        zi = embed_items(self, data, items)
        return rank_categories(self.manifold, zi, zc, data.cand, truth, k=k, offset=offset)

    @torch.no_grad()
    def top_scores(self, data, items: np.ndarray, k: int, chunk: int = 512):
        """Per chunk of items: (values (n, k), candidate rows (n, k)) of the top ``k``
        larger-better scores (``-distance``)."""
        zc = embed_categories(self, data.cand)
        zi = embed_items(self, data, items)
        for a in range(0, len(items), chunk):
            yield torch.topk(-M.pairwise_dist(self.manifold, zi[a:a + chunk], zc), k, dim=1)

    def placement_context(self, data):
        """What placing needs ready before the first item (the candidates' points)."""
        return embed_categories(self, data.cand)

    @torch.no_grad()
    def timed_placement(self, x, zc, k: int = 10, chunk: int = 512) -> None:
        """Place items ``x`` (their input) among the candidates ``zc``: top ``k`` (timed)."""
        with evaluating(self):
            zi = self.items(x)
        for a in range(0, zi.shape[0], chunk):
            torch.topk(-M.pairwise_dist(self.manifold, zi[a:a + chunk], zc), k, dim=1)

    @torch.no_grad()
    def place_new_categories(self, xnew, parents: np.ndarray, data) -> None:
        """Points of new categories (their text input ``xnew``), each under ``parents[i]``."""
        if self.encodes_categories_as_items:
            with evaluating(self):
                xnew = self.text_head(*xnew)
        x_all = torch.cat([self.x_nodes, xnew])
        N, n_new = self.x_nodes.shape[0], xnew.shape[0]
        new_ids = torch.arange(N, N + n_new, device=x_all.device)
        extra = torch.stack([torch.as_tensor(parents, device=x_all.device), new_ids])
        ei = torch.cat([data.edge_index, extra, extra.flip(0)], dim=1)
        with evaluating(self):
            self.new_categories(x_all, ei, new_ids)


class SiameseModel(ItemModel):
    """``ramen``: categories through the item tower from their text."""

    def categories(self, ids: Optional[Tensor] = None) -> Tensor:
        x = self.x_nodes if ids is None else self.x_nodes[ids]
        return self.tower(x)

    def fresh_categories(self, ids: Tensor) -> Tensor:
        """Points of categories ``ids`` through the shared text head now (with
        gradients into it), not from the last refresh of ``x_nodes``."""
        return self.tower(self.node_vectors(ids))


class GraphModel(ItemModel):
    """``hgcn``: tower(text) + gate * logmap0(HGCN(text, category graph)).

    The HGCN (``layers`` blocks, width ``gcn_hidden``) runs over the whole
    category graph each call (full batch); ``gate`` is a learned scalar that
    starts at 0.
    """

    uses_graph = True

    def __init__(self, manifold, x_nodes, edge_index, hidden=256, layers=2, dropout=0.0,
                 gcn_hidden: int = 128, gcn_layers: int = 2, **kw):
        super().__init__(manifold, x_nodes, edge_index, hidden, layers, dropout, **kw)
        N, F = x_nodes.shape
        self.gcn = HGCNEncoder([manifold] * gcn_layers, num_nodes=N, in_dim=F, dim=F,
                               hidden=gcn_hidden, dropout=dropout)
        self.gcn.set_graph(edge_index)
        self.gate = nn.Parameter(torch.zeros(()))

    def _tangent(self, x: Tensor, ei: Tensor, ids: Tensor) -> Tensor:
        g = M.logmap0(self.manifold, self.gcn(x, ei, ids))
        return self.tower.tangent(x, None) + self.gate * g

    def categories(self, ids: Optional[Tensor] = None) -> Tensor:
        N = self.x_nodes.shape[0]
        u = self._tangent(self.x_nodes, self.edge_index,
                          torch.arange(N, device=self.x_nodes.device))
        u = u if ids is None else u[ids]
        return M.expmap0(self.manifold, u)

    def fresh_categories(self, ids: Tensor) -> Tensor:
        """Points of categories ``ids`` with their text re-encoded now through the
        shared text head (gradients into it) and their neighbours' vectors read from
        the last refresh of ``x_nodes``: historical embeddings, as GNNAutoScale keeps
        them (Fey et al., ICML 2021).  The alternative, encoding each batch's 2-hop
        neighbourhoods live, puts thousands of ICD-10-CM codes through the head per
        step instead of the batch's few hundred.  ``ids`` must be distinct."""
        x = self.x_nodes.index_copy(0, ids, self.node_vectors(ids))
        N = x.shape[0]
        u = self._tangent(x, self.edge_index, torch.arange(N, device=x.device))
        return M.expmap0(self.manifold, u[ids])

    def new_categories(self, x_all: Tensor, edge_index: Tensor, nodes: Tensor) -> Tensor:
        from torch_geometric.utils import k_hop_subgraph
        subset, sub_ei, mapping, _ = k_hop_subgraph(nodes, len(self.gcn.blocks), edge_index,
                                                    relabel_nodes=True, num_nodes=x_all.size(0))
        # node_ids None: degrees of the k-hop subgraph, which for the 'mean'
        # aggregation equal the grown graph's at every node that sends to a new one
        g = M.logmap0(self.manifold, self.gcn(x_all[subset], sub_ei, None))
        u = self.tower.tangent(x_all[subset], None)
        return M.expmap0(self.manifold, (u + self.gate * g)[mapping])


class TableModel(ItemModel):
    """``shallow``: one free point per category (Riemannian updates)."""

    places_new = False

    def __init__(self, manifold, x_nodes, edge_index, hidden=256, layers=2, dropout=0.0,
                 init_scale: float = 1e-2, **kw):
        super().__init__(manifold, x_nodes, edge_index, hidden, layers, dropout, **kw)
        N, F = x_nodes.shape
        u = (torch.rand(N, F, dtype=x_nodes.dtype) * 2 - 1) * init_scale
        self.table = geoopt.ManifoldParameter(M.expmap0(manifold, u), manifold=manifold)

    def categories(self, ids: Optional[Tensor] = None) -> Tensor:
        return self.table if ids is None else self.table[ids]

    def new_categories(self, x_all, edge_index, nodes):
        raise ValueError("shallow has a free point per training category: it cannot place "
                         "categories added after training")


@contextmanager
def evaluating(model):
    """Eval mode inside, the caller's mode restored after (scoring, mining and
    timing all nest: none may leave a text head's dropout on or off for the others)."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def embed_items(model: ItemModel, data, items: np.ndarray) -> Tensor:
    """(n, D) points of items ``items`` (ids), in eval mode, in batches of 1,024
    (the same batches everywhere: a text head's numerics depend a little on
    its length-sorted chunks, enough to flip near-tied top-1s)."""
    with evaluating(model):
        return torch.cat([model.items(data.item_input(items[a:a + 1024]))
                          for a in range(0, len(items), 1024)])


@torch.no_grad()
def embed_categories(model: ItemModel, cand: np.ndarray) -> Tensor:
    """(C, D) points of the candidates ``cand``, in eval mode (:func:`evaluating`)."""
    with evaluating(model):
        return model.categories(None)[torch.as_tensor(cand, device=model.x_nodes.device)]


#: name -> trained item model
ITEM_MODELS: Dict[str, Type[ItemModel]] = {
    "ramen": SiameseModel,
    "hgcn": GraphModel,
    "shallow": TableModel,
}


class Scorer:
    """An untrained baseline: ``scores(x_items) -> (n, N)`` (larger is better)."""

    trainable = False
    uses_graph = False
    places_new = True

    def __init__(self, x_nodes: Tensor, x_train: Tensor, train_cat: Tensor):
        self.x_nodes = nn.functional.normalize(x_nodes, dim=-1)
        self.x_train = nn.functional.normalize(x_train, dim=-1)
        self.train_cat = train_cat.long()

    def scores(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    # ---- the interface every item model and baseline shares (see ItemModel)
    reads_token_states = False
    encodes_categories_as_items = False

    @torch.no_grad()
    def rank(self, data, items: np.ndarray, k: int = 10, z_cats=None, offset=None):
        """(topk (n, k), rank (n,)) of items ``items`` over ``data.cand`` by score
        (``z_cats`` and ``offset`` are a trained model's; ignored here)."""
        from hgraph.eval.items import rank_scores
        truth = [data.truth[i] for i in items]
        x = data.x_items[torch.as_tensor(items, device=data.x_items.device)]
        tops, ranks = [], []
        for a in range(0, len(items), 512):
            s = self.scores(x[a:a + 512])[:, torch.as_tensor(data.cand, device=x.device)]
            t, r = rank_scores(s, data.cand, truth[a:a + 512], k=k)
            tops.append(t)
            ranks.append(r)
        return np.concatenate(tops), np.concatenate(ranks)

    @torch.no_grad()
    def top_scores(self, data, items: np.ndarray, k: int, chunk: int = 512):
        cand = torch.as_tensor(data.cand, device=data.x_nodes.device)
        x = data.x_items[torch.as_tensor(items, device=data.x_items.device)]
        for a in range(0, len(items), chunk):
            yield torch.topk(self.scores(x[a:a + chunk])[:, cand], k, dim=1)

    def placement_context(self, data):
        return None

    @torch.no_grad()
    def timed_placement(self, x, ctx, k: int = 10, chunk: int = 512) -> None:
        for a in range(0, x.shape[0], chunk):
            torch.topk(self.scores(x[a:a + chunk]), k, dim=1)

    @torch.no_grad()
    def place_new_categories(self, xnew, parents, data) -> None:
        nn.functional.normalize(xnew, dim=-1)


class CosineScorer(Scorer):
    """``features``: cosine of item and category text vectors."""

    def scores(self, x: Tensor) -> Tensor:
        return nn.functional.normalize(x, dim=-1) @ self.x_nodes.T

    def export_state(self, data) -> dict:
        return {"kind": "cosine",
                "cat_points": self.x_nodes[torch.as_tensor(data.cand)].cpu()}


class KnnScorer(Scorer):
    """``knn``: a category's score is the best cosine of the item to one of
    the category's training items (1-nearest-neighbour by category); a
    category without training items scores -inf."""

    places_new = False

    def scores(self, x: Tensor) -> Tensor:
        sim = nn.functional.normalize(x, dim=-1) @ self.x_train.T        # (n, T)
        out = torch.full((x.shape[0], self.x_nodes.shape[0]), float("-inf"), dtype=sim.dtype,
                         device=sim.device)
        idx = self.train_cat.to(sim.device).expand(x.shape[0], -1)
        return out.scatter_reduce(1, idx, sim, reduce="amax", include_self=True)

    def export_state(self, data) -> dict:
        return {"kind": "knn", "x_train": self.x_train.cpu(), "train_cat": self.train_cat.cpu(),
                "cat_points": None}


#: name -> untrained baseline
SCORERS: Dict[str, Type[Scorer]] = {"features": CosineScorer, "knn": KnnScorer}

#: every --encoder choice of the item task
ITEM_ENCODERS = tuple(ITEM_MODELS) + tuple(SCORERS)

__all__ = ["ITEM_ENCODERS", "ITEM_MODELS", "SCORERS", "ItemAdapter", "ItemTower", "TextHead",
           "ItemModel", "item_points", "SiameseModel",
           "GraphModel", "TableModel", "Scorer", "CosineScorer", "KnnScorer", "make_tower",
           "evaluating", "embed_items", "embed_categories"]
