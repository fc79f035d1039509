"""Encoders: node -> point on a geoopt manifold, and the ENCODERS registry.

Every encoder has one call signature, so the training loop, evaluation and
inference treat them alike::

    z = encoder(x, edge_index, node_ids)      # (n, D) points on encoder.manifold

* ``x``: (n, F) features of the n nodes in this (sub)graph, or None when the
  dataset has none (encoders that need features then use id embeddings);
* ``edge_index``: (2, E) local indices into those n nodes (message-passing
  direction source -> target, both directions present), or None;
* ``node_ids``: (n,) global node ids of the rows.

``uses_graph`` tells whether inference needs ``edge_index`` (HGCN) or not
(shallow, RAMEN), which is the cost the project measures.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import geoopt
import torch
from torch import nn

from hgraph import manifolds as M

Tensor = torch.Tensor


@dataclass(frozen=True)
class EncoderSpec:
    """What an encoder factory is given: the config plus data-derived sizes."""
    cfg: "object"                 # hgraph.config.ModelConfig
    manifold: geoopt.Manifold
    num_nodes: int
    in_dim: Optional[int]         # feature dimension, None when no features


class Encoder(nn.Module):
    """Base class: holds the manifold (which owns the curvature)."""

    uses_graph: bool = False
    uses_features: bool = False

    def __init__(self, manifold: geoopt.Manifold, dim: int):
        super().__init__()
        self.manifold = manifold
        self.dim = dim

    @property
    def out_dim(self) -> int:
        """Coordinates per point (dim + 1 on the hyperboloid)."""
        return M.ambient_dim(M.kind(self.manifold), self.dim)

    def forward(self, x: Optional[Tensor], edge_index: Optional[Tensor],
                node_ids: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class ShallowEncoder(Encoder):
    """One learned point per node (Nickel & Kiela 2017): a ManifoldParameter.

    The table is initialised uniformly in [-init_scale, init_scale] in the
    tangent space at the origin and mapped onto the manifold.
    """

    def __init__(self, manifold: geoopt.Manifold, num_nodes: int, dim: int,
                 init_scale: float = 1e-3):
        super().__init__(manifold, dim)
        self.num_nodes = num_nodes
        self.init_scale = init_scale
        self.weight = geoopt.ManifoldParameter(
            torch.empty(num_nodes, self.out_dim), manifold=manifold)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            u = torch.empty(self.num_nodes, self.dim, dtype=self.weight.dtype,
                            device=self.weight.device).uniform_(-self.init_scale, self.init_scale)
            self.weight.copy_(M.expmap0(self.manifold, u))

    #: rows are looked up with sparse gradients, so the optimiser touches only the
    #: rows of the batch (geoopt's Sparse* optimisers) instead of all N rows
    sparse_grad = True

    def forward(self, x: Optional[Tensor], edge_index: Optional[Tensor],
                node_ids: Tensor) -> Tensor:
        """``node_ids``: (n,) -> (n, D) points."""
        return torch.nn.functional.embedding(node_ids, self.weight, sparse=self.sparse_grad)

    def __repr__(self) -> str:
        return (f"ShallowEncoder(num_nodes={self.num_nodes}, dim={self.dim}, "
                f"manifold={M.kind(self.manifold)})")


def _build_shallow(spec: EncoderSpec) -> Encoder:
    return ShallowEncoder(spec.manifold, spec.num_nodes, spec.cfg.dim, spec.cfg.init_scale)


class FeatureBaseline(Encoder):
    """The features-only baseline: a node's raw features, L2-normalised.

    Nothing is learned.  On the Euclidean manifold, distance between unit
    vectors is a monotone function of cosine similarity
    (``|a - b|^2 = 2 - 2 cos(a, b)``), so every ranking the evaluation makes
    (parent of a held-out edge, inductive parent, reconstruction) is "nearest
    candidate by cosine of the raw features".  It shows what the features
    alone know, before any encoder or graph.
    """

    uses_features = True
    trainable = False

    def __init__(self, manifold: geoopt.Manifold, in_dim: int):
        if M.kind(manifold) != "euclidean":
            raise ValueError("the features baseline ranks by cosine: use manifold='euclidean'")
        super().__init__(manifold, in_dim)

    def forward(self, x: Optional[Tensor], edge_index: Optional[Tensor],
                node_ids: Tensor) -> Tensor:
        """``x``: (n, F) -> (n, F) unit rows (zero rows stay zero)."""
        if x is None:
            raise ValueError("the features baseline needs node features")
        return torch.nn.functional.normalize(x, dim=-1)


def _build_features(spec: EncoderSpec) -> Encoder:
    if spec.in_dim is None:
        raise ValueError("encoder 'features' needs node features; this dataset has none")
    return FeatureBaseline(spec.manifold, spec.in_dim)


#: name -> factory(EncoderSpec) -> Encoder.  The CLI's --encoder choices.
ENCODERS: Dict[str, Callable[[EncoderSpec], Encoder]] = {
    "shallow": _build_shallow,
    "features": _build_features,
}


def build_encoder(spec: EncoderSpec) -> Encoder:
    try:
        factory = ENCODERS[spec.cfg.encoder]
    except KeyError:
        raise ValueError(f"unknown encoder {spec.cfg.encoder!r}; choose from {sorted(ENCODERS)}") from None
    return factory(spec)


from hgraph.nn.ramen import build_ramen  # noqa: E402
ENCODERS["ramen"] = build_ramen


from hgraph.nn.hgcn import build_hgcn  # noqa: E402
ENCODERS["hgcn"] = build_hgcn
