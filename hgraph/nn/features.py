"""The features-only baseline: a node's raw features, L2-normalised."""
from __future__ import annotations

from typing import Optional

import geoopt
import torch

from hgraph import manifolds as M
from hgraph.errors import HGraphInputError
from hgraph.nn.base import Encoder, EncoderSpec

Tensor = torch.Tensor


class FeatureBaseline(Encoder):
    """The features-only baseline: a node's raw features, L2-normalised.

    Nothing is learned.  On the Euclidean manifold, distance between unit
    vectors is a monotone function of cosine similarity
    (``|a - b|^2 = 2 - 2 cos(a, b)``), so every ranking the evaluation makes
    (parent of a held-out edge, inductive parent, reconstruction) is "nearest
    candidate by cosine of the raw features".  It shows what the features
    alone know, before any encoder or graph.
    """

    trainable = False
    inductive = True
    requires_features = True

    def __init__(self, manifold: geoopt.Manifold, in_dim: int):
        if M.kind(manifold) != "euclidean":
            raise ValueError("the features baseline ranks by cosine: use manifold='euclidean'")
        super().__init__(manifold, in_dim)

    @classmethod
    def from_spec(cls, spec: EncoderSpec) -> "FeatureBaseline":
        if spec.in_dim is None:
            raise HGraphInputError("encoder 'features' needs node features; this dataset has "
                                   "none", fix="pass --features FILE")
        return cls(spec.manifold, spec.in_dim)

    def forward(self, x: Optional[Tensor], edge_index: Optional[Tensor],
                node_ids: Tensor) -> Tensor:
        """``x``: (n, F) -> (n, F) unit rows (zero rows stay zero)."""
        if x is None:
            raise ValueError("the features baseline needs node features")
        return torch.nn.functional.normalize(x, dim=-1)
