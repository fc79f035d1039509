"""The combinatorial encoder: a fixed table of points built from the training
graph by Sala et al.'s construction (:mod:`hgraph.manifolds.construct`)."""
from __future__ import annotations

from typing import Dict, Optional

import geoopt
import numpy as np
import torch

from hgraph import manifolds as M
from hgraph.manifolds.construct import construct
from hgraph.nn.base import Encoder, EncoderSpec

Tensor = torch.Tensor


class CombinatorialEncoder(Encoder):
    """One point per node, placed by construction, nothing trained (``--encoder construct``).

    The training edges (``EncoderSpec.edges``, ``(child, parent)`` rows) go
    through a BFS spanning tree; the root sits at the origin and every tree
    edge has hyperbolic length ``tau`` (``--construct-tau``; 0: the largest
    that keeps the deepest node inside the boundary clamp of ``dtype``, the
    run's).  The table is computed in float64 and kept as a buffer; float32's
    clamp (``|x| <= 1 - 4e-3``, 6.2 from the origin) leaves half the room of
    float64's (12.2), so the preset runs it in float64.  Transductive, like
    the shallow table.
    Built without edges (an encoder rebuilt around saved weights) the table
    is the origin until ``load_state_dict`` fills it.

    ``stats``: what :func:`~hgraph.manifolds.construct.construct` reports
    (tau, depth, clamped points, the bits a distortion-free 2-d embedding needs).
    """

    trainable = False

    def __init__(self, manifold: geoopt.Manifold, num_nodes: int, dim: int,
                 edges: Optional[np.ndarray] = None, tau: float = 0.0,
                 dtype: torch.dtype = torch.float64):
        kind = M.kind(manifold)
        if kind == "euclidean":
            raise ValueError("the combinatorial construction is hyperbolic: use "
                             "manifold='poincare' or 'lorentz'")
        super().__init__(manifold, dim)
        self.num_nodes = num_nodes
        self.tau = tau
        self.stats: Dict[str, float] = {}
        table = M.origin(manifold, dim, dtype=torch.float64).repeat(num_nodes, 1)
        if edges is not None:
            table, self.stats = construct(edges, num_nodes, dim, tau=tau,
                                          curvature=M.curvature_of(manifold),
                                          lorentz=kind == "lorentz", dtype=dtype)
        self.register_buffer("weight", table)

    @classmethod
    def from_spec(cls, spec: EncoderSpec) -> "CombinatorialEncoder":
        return cls(spec.manifold, spec.num_nodes, spec.cfg.dim, spec.edges,
                   spec.cfg.construct_tau, spec.dtype)

    def forward(self, x: Optional[Tensor], edge_index: Optional[Tensor],
                node_ids: Tensor) -> Tensor:
        """``node_ids``: (n,) -> (n, D) points, projected onto the manifold in the table's dtype."""
        return M.project(self.manifold, self.weight[node_ids.to(self.weight.device)])

    def __repr__(self) -> str:
        return (f"CombinatorialEncoder(num_nodes={self.num_nodes}, dim={self.dim}, "
                f"tau={self.stats.get('tau', self.tau):.4g}, manifold={M.kind(self.manifold)})")
