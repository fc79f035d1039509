"""The shallow encoder: one learned point per node (Nickel & Kiela 2017)."""
from __future__ import annotations

from typing import List, Optional

import geoopt
import torch
from torch import nn

from hgraph import manifolds as M
from hgraph.manifolds.construct import clamp_radius, cone, construct
from hgraph.nn.base import Encoder, EncoderSpec

Tensor = torch.Tensor

#: ``init="construct"`` with the default tau: the farthest node at this fraction of the
#: boundary clamp's distance, not on it.  On WordNet mammals, dim 5, Riemannian SGD
#: (benchmarks/construct.py init, results/construct/README.md), tables built to radius
#: 3.2 / 5.4 / 7.6 / 10.4 / 12.2 (the clamp) reached MAP 0.918 / 0.931 / 0.953 / 0.948 /
#: 0.907 after 150 epochs (the last stalls with its deep rows on the clamp); uniform: 0.945.
INIT_RADIUS = 0.6

#: ``init="cone"`` (nested cones, :func:`hgraph.manifolds.construct.cone`): the deepest
#: level at this fraction of the boundary clamp's distance.  Untrained closure MAP of the
#: default generated tree (dim 10, spread 0.5, 2,000 sampled sources) at 0.6 / 0.8 of the
#: clamp: 0.947 / 0.997 (a numpy-seeded prototype); WordNet mammals (dim 5, spread 1)
#: trained from 0.9 of the clamp had 247 rows on the clamp after 30 epochs.
CONE_RADIUS = 0.8


class ShallowEncoder(Encoder):
    """One learned point per node: a ManifoldParameter table.

    The table is initialised uniformly in [-init_scale, init_scale] in the
    tangent space at the origin and mapped onto the manifold, or, given
    ``init_points`` (N, D), at those points (``init="construct"``: the
    combinatorial embedding of the training graph, :mod:`hgraph.manifolds.construct`,
    built with its farthest point at :data:`INIT_RADIUS` of the boundary clamp's
    distance, leaving the rows room to move; ``init="cone"``: nested cones,
    :func:`hgraph.manifolds.construct.cone`, deepest level at :data:`CONE_RADIUS`).
    Transductive: a node unseen in training keeps its untrained row
    (``inductive = False``).
    """

    def __init__(self, manifold: geoopt.Manifold, num_nodes: int, dim: int,
                 init_scale: float = 1e-3, init_points: Optional[Tensor] = None):
        super().__init__(manifold, dim)
        self.num_nodes = num_nodes
        self.init_scale = init_scale
        self.init_points = init_points
        # a given init keeps its dtype (float64 from the construction) until the caller's
        # .to(dtype): a float32 table here would round it and clamp it at float32's boundary
        self.weight = geoopt.ManifoldParameter(
            torch.empty(num_nodes, self.out_dim,
                        dtype=None if init_points is None else init_points.dtype),
            manifold=manifold)
        self.reset_parameters()

    @classmethod
    def from_spec(cls, spec: EncoderSpec) -> "ShallowEncoder":
        points = None
        # without edges (an encoder rebuilt around saved weights) the uniform init stands in
        c = M.curvature_of(spec.manifold)
        given = spec.cfg.init_radius / c ** 0.5 if spec.cfg.init_radius > 0 else None
        if spec.cfg.init == "construct" and spec.edges is not None:
            points, _ = construct(spec.edges, spec.num_nodes, spec.cfg.dim,
                                  tau=spec.cfg.construct_tau, curvature=c,
                                  lorentz=M.kind(spec.manifold) == "lorentz", dtype=spec.dtype,
                                  radius=given or INIT_RADIUS * clamp_radius(spec.dtype) / c ** 0.5)
        if spec.cfg.init == "cone" and spec.edges is not None:
            points, _ = cone(spec.edges, spec.num_nodes, spec.cfg.dim, curvature=c,
                             lorentz=M.kind(spec.manifold) == "lorentz", dtype=spec.dtype,
                             radius=given or CONE_RADIUS * clamp_radius(spec.dtype) / c ** 0.5,
                             seed=int(torch.initial_seed()) % (1 << 63))
        return cls(spec.manifold, spec.num_nodes, spec.cfg.dim, spec.cfg.init_scale, points)

    def reset_parameters(self) -> None:
        if self.init_points is not None:
            with torch.no_grad():
                self.weight.copy_(M.project(self.manifold, self.init_points.to(self.weight)))
            return
        with torch.no_grad():
            u = torch.empty(self.num_nodes, self.dim, dtype=self.weight.dtype,
                            device=self.weight.device).uniform_(-self.init_scale, self.init_scale)
            self.weight.copy_(M.expmap0(self.manifold, u))

    def sparse_parameters(self) -> List[nn.Parameter]:
        """Rows are looked up with sparse gradients, so the optimiser touches only
        the rows of the batch (hgraph.optim / geoopt's Sparse* optimisers)
        instead of all N rows."""
        return [self.weight]

    def forward(self, x: Optional[Tensor], edge_index: Optional[Tensor],
                node_ids: Tensor) -> Tensor:
        """``node_ids``: (n,) -> (n, D) points."""
        return torch.nn.functional.embedding(node_ids, self.weight, sparse=True)

    def __repr__(self) -> str:
        return (f"ShallowEncoder(num_nodes={self.num_nodes}, dim={self.dim}, "
                f"manifold={M.kind(self.manifold)})")
