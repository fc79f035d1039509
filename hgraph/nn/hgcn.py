"""The ``hgcn`` encoder: a stack of HGCN blocks (Chami et al. 2019).

Block ``l`` (of ``L = cfg.layers``) on manifold ``m_l``::

    HypLinear(m_l) -> HypAgg(m_l) -> HypAct(m_l -> m_{l+1})

widths ``in_dim -> hidden -> ... -> dim``.  The last block has no activation
(PyG's convention; HGCN's link-prediction encoder applies one there too,
which with ReLU confines every output to one orthant of the tangent space),
so its output stays on ``m_{L-1}``, the encoder's ``manifold`` — the one the
losses and the evaluation use.

Curvatures: one manifold per block.  With a fixed curvature all blocks share
``spec.manifold`` (one object, one curvature).  With ``learn_curvature`` each
block has its own learnable manifold (softplus-parameterised, so positive)
and the last one is ``spec.manifold``.  ``manifold="euclidean"`` gives the GCN
ablation.

Input: features ``x`` (n, F), read as tangent vectors at the origin of
``m_0`` and mapped by :func:`hgraph.manifolds.expmap0`; without features (or
with ``cfg.id_embeddings``) a learned table ``nn.Embedding(num_nodes, hidden)``
indexed by ``node_ids`` takes their place.

Mini-batches: ``forward`` runs on any subgraph (e.g. a ``NeighborLoader``
batch).  GCN weights need the degrees of the full message-passing graph;
:meth:`HGCNEncoder.set_graph` records them (a buffer indexed by
``node_ids``), so a batch whose fan-outs cover all neighbours gives its seed
nodes exactly the full-batch outputs.  Before ``set_graph`` is called, the
degrees are counted on the ``edge_index`` given (right for the full graph).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import geoopt
import torch
from torch import nn

from hgraph import manifolds as M
from hgraph.nn.base import ACTIVATIONS, Encoder, EncoderSpec
from hgraph.nn.layers import HypAct, HypAgg, HypLinear

Tensor = torch.Tensor


def _remove_self_loops(edge_index: Tensor) -> Tensor:
    return edge_index[:, edge_index[0] != edge_index[1]]


def graph_degree(edge_index: Tensor, num_nodes: int) -> Tensor:
    """(num_nodes,) in-degree plus one (the self-loop), as HypAgg counts it."""
    ei = _remove_self_loops(edge_index)
    return torch.bincount(ei[1], minlength=num_nodes).to(torch.get_default_dtype()) + 1.0


class HGCNBlock(nn.Module):
    """``HypLinear -> HypAgg -> HypAct`` (no HypAct when ``act`` is None).

    Shapes: ``x: (N, D_in)``, ``edge_index: (2, E)`` -> ``(N_dst, D_out)``.
    """

    def __init__(self, manifold_in: geoopt.Manifold, manifold_out: geoopt.Manifold,
                 in_features: int, out_features: int, act: Optional[str], dropout: float = 0.0,
                 bias: bool = True, attention: bool = False, local_agg: bool = False,
                 norm: str = "mean"):
        super().__init__()
        self.lin = HypLinear(manifold_in, in_features, out_features, bias=bias, dropout=dropout)
        self.agg = HypAgg(manifold_in, out_features, attention=attention, local_agg=local_agg,
                          norm=norm)
        self.act = None if act is None else HypAct(manifold_in, manifold_out, act)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        self.agg.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, size: Optional[Tuple[int, int]] = None,
                deg: Optional[Tensor] = None) -> Tensor:
        """``x``: (N, D_in) -> (N_dst, D_out) (``N_dst = size[1]`` or N)."""
        h = self.agg(self.lin(x), edge_index, size=size, deg=deg)
        return h if self.act is None else self.act(h)


class HGCNEncoder(Encoder):
    """Hyperbolic GCN encoder: ``encoder(x, edge_index, node_ids) -> (n, D)``.

    Args:
        manifolds: one manifold per block (``len = layers``); the same object
            repeated for a shared curvature; the last is ``self.manifold``.
        num_nodes: nodes in the whole graph (id-embedding table, degree buffer).
        in_dim: feature dimension F, or None when there are no features.
        dim, hidden: output and hidden intrinsic widths.
        act: key of :data:`hgraph.nn.base.ACTIVATIONS`, used after every
            block but the last.
        id_embeddings: use the learned id table even when features exist.
        norm: neighbour weights of :class:`HypAgg`, ``"mean"`` or ``"sym"``.
    """

    uses_graph = True
    inductive = True          # from features and the k-hop neighbourhood; not with id embeddings

    def __init__(self, manifolds: Sequence[geoopt.Manifold], num_nodes: int,
                 in_dim: Optional[int], dim: int, hidden: int = 64, act: str = "relu",
                 dropout: float = 0.0, bias: bool = True, attention: bool = False,
                 local_agg: bool = False, id_embeddings: bool = False, norm: str = "mean"):
        if len(manifolds) < 1:
            raise ValueError("HGCNEncoder needs at least one manifold (one per layer)")
        kinds = {M.kind(m) for m in manifolds}
        if len(kinds) != 1:
            raise ValueError(f"all layers must use one manifold kind, got {sorted(kinds)}")
        if act not in ACTIVATIONS:
            raise ValueError(f"unknown activation {act!r}; choose from {sorted(ACTIVATIONS)}")
        super().__init__(manifolds[-1], dim)
        self.num_nodes = num_nodes
        self.hidden = hidden
        self.use_ids = in_dim is None or id_embeddings
        self.inductive = not self.use_ids
        self.in_dim = hidden if self.use_ids else int(in_dim)
        self.emb = nn.Embedding(num_nodes, hidden) if self.use_ids else None
        L = len(manifolds)
        widths = [self.in_dim] + [hidden] * (L - 1) + [dim]
        self.blocks = nn.ModuleList(
            HGCNBlock(manifolds[i], manifolds[min(i + 1, L - 1)], widths[i], widths[i + 1],
                      act=act if i < L - 1 else None, dropout=dropout, bias=bias,
                      attention=attention, local_agg=local_agg, norm=norm)
            for i in range(L))
        # degrees (self-loop included) of the full message-passing graph; 0 = not set
        self.register_buffer("degree", torch.zeros(num_nodes))
        self.reset_parameters()

    @classmethod
    def from_spec(cls, spec: EncoderSpec) -> "HGCNEncoder":
        """ENCODERS["hgcn"]: an :class:`HGCNEncoder` from an ``EncoderSpec``."""
        cfg = spec.cfg
        if cfg.layers < 1:
            raise ValueError(f"hgcn needs layers >= 1, got {cfg.layers}")
        if M.kind(spec.manifold) != cfg.manifold:
            raise ValueError(f"spec.manifold is {M.kind(spec.manifold)} but cfg.manifold is "
                             f"{cfg.manifold!r}")
        if cfg.learn_curvature and cfg.manifold != "euclidean":
            manifolds = [M.make_manifold(cfg.manifold, cfg.curvature, learnable=True)
                         for _ in range(cfg.layers - 1)] + [spec.manifold]
        else:
            manifolds = [spec.manifold] * cfg.layers
        return cls(manifolds, num_nodes=spec.num_nodes, in_dim=spec.in_dim, dim=cfg.dim,
                   hidden=cfg.hidden, act=cfg.act, dropout=cfg.dropout, bias=cfg.bias,
                   attention=cfg.attention, local_agg=cfg.local_agg,
                   id_embeddings=cfg.id_embeddings, norm=cfg.agg_norm)

    @property
    def manifolds(self) -> List[geoopt.Manifold]:
        """The manifold of each block (block ``l`` computes on ``manifolds[l]``)."""
        return [b.lin.manifold for b in self.blocks]

    def reset_parameters(self) -> None:
        if self.emb is not None:
            nn.init.normal_(self.emb.weight, std=self.hidden ** -0.5)
        for block in self.blocks:
            block.reset_parameters()

    @torch.no_grad()
    def set_graph(self, edge_index: Optional[Tensor]) -> None:
        """Record the degrees of the full message-passing graph (2, E) over
        ``num_nodes`` nodes, used by sampled subgraphs; None forgets them."""
        if edge_index is None:
            self.degree.zero_()
        else:
            self.degree.copy_(graph_degree(edge_index.to(self.degree.device), self.num_nodes))

    # -- forward ------------------------------------------------------------
    def _input(self, x: Optional[Tensor], node_ids: Optional[Tensor]) -> Tensor:
        """(n, D_0) points on ``manifolds[0]`` from features or id embeddings."""
        if self.emb is not None:
            if node_ids is None:
                raise ValueError("hgcn with id embeddings needs node_ids")
            u = self.emb(node_ids)
        else:
            if x is None:
                raise ValueError("hgcn was built for node features but got x=None; "
                                 "pass features or build it with id_embeddings")
            if x.dim() != 2 or x.size(1) != self.in_dim:
                raise ValueError(f"hgcn expects features of shape (n, {self.in_dim}), "
                                 f"got {tuple(x.shape)}")
            u = x.to(self.blocks[0].lin.weight.dtype)
        return M.expmap0(self.blocks[0].lin.manifold, u)

    def _degrees(self, edge_index: Tensor, n: int, node_ids: Optional[Tensor],
                 dtype: torch.dtype) -> Tensor:
        deg = graph_degree(edge_index, n).to(dtype)
        if node_ids is None:
            return deg
        known = self.degree[node_ids].to(dtype)
        return torch.where(known > 0, known, deg)

    def forward(self, x: Optional[Tensor], edge_index: Optional[Tensor],
                node_ids: Tensor) -> Tensor:
        """``x``: (n, F) or None; ``edge_index``: (2, E) local; ``node_ids``: (n,)
        global ids -> (n, D) points on ``self.manifold``."""
        if edge_index is None:
            raise ValueError("hgcn needs edge_index (it is a graph encoder)")
        h = self._input(x, node_ids)
        deg = self._degrees(edge_index, h.size(0), node_ids, h.dtype)
        for block in self.blocks:
            h = block(h, edge_index, deg=deg)
        return h

    @torch.no_grad()
    def inference(self, x: Optional[Tensor], edge_index: Tensor, num_nodes: int,
                  batch_size: int = 4096, device: Union[str, torch.device, None] = None
                  ) -> Tensor:
        """Layer-wise inference over the whole graph, in chunks of target nodes.

        Each block is computed for all nodes before the next: its HypLinear in
        chunks of ``batch_size`` rows, then for each chunk of targets the
        in-edges of those targets (from the full ``edge_index``, degrees from
        it too) are aggregated over just the source rows they need.  Memory is
        O(num_nodes * hidden + chunk edges); the result equals the full-batch
        ``forward(x, edge_index, arange(num_nodes))`` up to float error (when
        :meth:`set_graph` saw this graph or was not called).

        ``x``: (num_nodes, F) or None; ``edge_index``: (2, E) global ->
        (num_nodes, D) points, on the device of ``x`` (or of ``edge_index``).
        Computation runs on ``device`` (default: the module's).  Dropout is
        off during the call.
        """
        param = self.blocks[0].lin.weight
        device = param.device if device is None else torch.device(device)
        store = x.device if x is not None else edge_index.device
        was_training = self.training
        self.eval()
        try:
            ids = torch.arange(num_nodes, device=store)
            chunks = [(s, min(s + batch_size, num_nodes)) for s in range(0, num_nodes, batch_size)]
            h = torch.cat([self._input(None if x is None else x[s:e].to(device),
                                       ids[s:e].to(device)).to(store) for s, e in chunks])
            ei = _remove_self_loops(edge_index.to(store))
            order = torch.argsort(ei[1], stable=True)
            src, dst = ei[0, order], ei[1, order]
            counts = torch.bincount(dst, minlength=num_nodes)
            ptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=store)
            ptr[1:] = torch.cumsum(counts, 0)
            deg = counts.to(h.dtype) + 1.0
            for block in self.blocks:
                lin = torch.cat([block.lin(h[s:e].to(device)).to(store) for s, e in chunks])
                out = []
                for s, e in chunks:
                    a, b = int(ptr[s]), int(ptr[e])
                    sub, inv = torch.unique(src[a:b], return_inverse=True)
                    local = torch.stack([inv, dst[a:b] - s]).to(device)
                    y = block.agg((lin[sub].to(device), lin[s:e].to(device)), local,
                                  deg=(deg[sub].to(device), deg[s:e].to(device)))
                    if block.act is not None:
                        y = block.act(y)
                    out.append(y.to(store))
                h = torch.cat(out)
                del lin
        finally:
            self.train(was_training)
        return h

    def embed_all(self, x: Optional[Tensor], edge_index: Optional[Tensor], num_nodes: int, *,
                  chunk: int = 1024, device=None) -> Tensor:
        """Every node's point by :meth:`inference` (chunks of ``max(chunk, 4096)``
        target nodes)."""
        return self.inference(x, edge_index, num_nodes, batch_size=max(chunk, 4096),
                              device=device)

    def embed_new(self, x: Tensor, edge_index: Optional[Tensor], nodes: Tensor) -> Tensor:
        """Points of ``nodes`` (k,) on their L-hop neighbourhood in ``edge_index``
        (``torch_geometric.utils.k_hop_subgraph``, L = number of blocks), which
        gives them exactly their full-graph outputs.  -> (k, D)."""
        from torch_geometric.utils import k_hop_subgraph
        if edge_index is None:
            edge_index = torch.empty(2, 0, dtype=torch.long, device=x.device)
        subset, sub_ei, mapping, _ = k_hop_subgraph(nodes, len(self.blocks), edge_index,
                                                    relabel_nodes=True, num_nodes=x.size(0))
        return self(x[subset], sub_ei, subset)[mapping]

    def __repr__(self) -> str:
        return (f"HGCNEncoder(num_nodes={self.num_nodes}, in_dim={self.in_dim}, "
                f"hidden={self.hidden}, dim={self.dim}, layers={len(self.blocks)}, "
                f"manifold={M.kind(self.manifold)}, ids={self.use_ids})")
