"""Embedders: how node ids of a training step become points (the only place
the encoders differ during training).

* :class:`DirectEmbedder` — ``encoder(x[ids], None, ids)`` (shallow, ramen);
* :class:`FullGraphEmbedder` — one full-graph forward per step, then index
  (hgcn, graphs that fit);
* :class:`SampledEmbedder` — a torch-geometric ``NeighborLoader`` subgraph
  around the step's nodes (hgcn mini-batch; fanouts per layer).
"""
from __future__ import annotations

from typing import Optional

import torch

Tensor = torch.Tensor


class Embedder:
    """Node ids of a training step -> their points: ``embedder(model, ids)``.

    ``hides_pairs``: the embedder also takes the step's positive pairs
    (``pairs=(u, v)``) and hides them from message passing.
    """

    hides_pairs: bool = False

    def __call__(self, model, ids: Tensor, pairs=None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class DirectEmbedder(Embedder):
    """Points for ids without message passing: ``encoder(x[ids], None, ids)``."""

    def __init__(self, x: Optional[Tensor]):
        self.x = x

    def __call__(self, model, ids: Tensor, pairs=None) -> Tensor:
        return model(None if self.x is None else self.x[ids], None, ids)


def hide_pairs(edge_index: Tensor, node_ids: Optional[Tensor], u: Tensor, v: Tensor,
               num_nodes: int) -> Tensor:
    """``edge_index`` (2, E) without the edges between ``u[i]`` and ``v[i]``
    (either direction).

    ``edge_index`` holds local rows of ``node_ids`` (global ids), or global ids
    when ``node_ids`` is None.  Used for the step's supervision pairs: a graph
    encoder must not see the edge it is asked to predict, or it learns to put
    a child next to its parent through the parent's message alone — a
    shortcut that is gone at test time, where the held-out edge is absent
    (PyG's ``RandomLinkSplit(disjoint_train_ratio=...)`` makes the same
    separation once per split; here it is redrawn every step).
    """
    g = edge_index if node_ids is None else node_ids[edge_index]
    n = int(num_nodes)
    keys = g[0] * n + g[1]
    hide = torch.cat([u * n + v, v * n + u]).to(keys.device)
    return edge_index[:, ~torch.isin(keys, hide)]


class FullGraphEmbedder(Embedder):
    """Full-batch message passing over the training graph, then index.

    With ``hide_supervision`` the step's positive pairs are removed from the
    message-passing graph for that step (see :func:`hide_pairs`).
    """

    def __init__(self, x: Optional[Tensor], edge_index: Tensor, num_nodes: int,
                 hide_supervision: bool = False):
        self.x, self.edge_index = x, edge_index
        self.num_nodes = num_nodes
        self.hides_pairs = hide_supervision
        self.all_ids = torch.arange(num_nodes, device=edge_index.device)

    def __call__(self, model, ids: Tensor, pairs=None) -> Tensor:
        ei = self.edge_index
        if pairs is not None and self.hides_pairs:
            ei = hide_pairs(ei, None, pairs[0], pairs[1], self.num_nodes)
        return model(self.x, ei, self.all_ids)[ids]


class SampledEmbedder(Embedder):
    """Neighbour-sampled subgraphs (torch-geometric ``NeighborLoader``).

    The step's unique nodes are the seed nodes; ``fanouts[i]`` neighbours are
    sampled at hop i (-1 = all).  The loader runs over the *training* graph
    only, so held-out edges never appear in a sampled subgraph.
    """

    def __init__(self, data, fanouts, device, hide_supervision: bool = False):
        from torch_geometric.loader import NeighborLoader
        from hgraph.data.sampling import make_neighbor_sampler
        self.device = device
        self.hides_pairs = hide_supervision
        self.num_nodes = int(data.num_nodes)
        # pyg-lib/torch-sparse when importable, else hgraph's pure-PyTorch sampler
        self.loader = NeighborLoader(data, num_neighbors=list(fanouts), batch_size=1,
                                     shuffle=False,
                                     neighbor_sampler=make_neighbor_sampler(data, list(fanouts)))

    def __call__(self, model, ids: Tensor, pairs=None) -> Tensor:
        batch = self.loader(ids.cpu()).to(self.device)
        x = batch.x if "x" in batch else None
        ei = batch.edge_index
        if pairs is not None and self.hides_pairs:
            ei = hide_pairs(ei, batch.n_id, pairs[0].to(self.device), pairs[1].to(self.device),
                            self.num_nodes)
        z = model(x, ei, batch.n_id)
        return z[:batch.batch_size]


def make_embedder(model, x: Optional[Tensor], pyg, cfg, device: torch.device) -> Embedder:
    """The training embedder for ``model``: message passing for a graph encoder
    (``uses_graph``) — full batch, or neighbour-sampled subgraphs of ``pyg``
    (the training graph) — else direct.  ``cfg``: a
    :class:`hgraph.config.SamplingConfig`."""
    if not model.uses_graph:
        return DirectEmbedder(x)
    if cfg.full_batch:
        return FullGraphEmbedder(x, pyg.edge_index.to(device), int(pyg.num_nodes),
                                 hide_supervision=cfg.hide_supervision)
    return SampledEmbedder(pyg, cfg.fanouts, device, hide_supervision=cfg.hide_supervision)

