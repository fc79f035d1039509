"""The encoder contract: :class:`Encoder` with declared capabilities,
:class:`EncoderSpec` (what a factory is given) and the one :data:`ACTIVATIONS`.

Every encoder has one call signature, so the training loop, evaluation and
inference treat them alike::

    z = encoder(x, edge_index, node_ids)      # (n, D) points on encoder.manifold

* ``x``: (n, F) features of the n nodes in this (sub)graph, or None when the
  dataset has none (encoders that need features then use id embeddings);
* ``edge_index``: (2, E) local indices into those n nodes (message-passing
  direction source -> target, both directions present), or None;
* ``node_ids``: (n,) global node ids of the rows.

What an encoder can do is declared once, as typed class attributes on the
base class with the conservative default (the way PyG's ``MessagePassing``
declares ``supports_edge_weight``); subclasses override them, as class
attributes or, when a constructor argument decides (id embeddings instead of
features), as instance attributes set in ``__init__``.  Callers read them;
nobody probes an encoder with ``getattr``/``hasattr``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

import geoopt
import torch
from torch import nn

from hgraph import manifolds as M

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from hgraph.config import ModelConfig

Tensor = torch.Tensor

#: activation name (``ModelConfig.act``) -> module factory, for every encoder.
#: ``leaky_relu`` has torch's (and HGCN's reference code's) negative slope 0.01;
#: the RAMEN encoder used 0.2 before the two tables were merged.
ACTIVATIONS: Dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "none": nn.Identity,
}


@dataclass(frozen=True)
class EncoderSpec:
    """What an encoder factory is given: the model config plus data-derived sizes."""
    cfg: "ModelConfig"
    manifold: geoopt.Manifold
    num_nodes: int
    in_dim: Optional[int]         # feature dimension, None when no features
    #: (E, 2) training ``(child, parent)`` edges, for tables built from the graph
    #: (``construct``, the shallow ``init="construct"``); None when not known
    edges: Optional["np.ndarray"] = None
    #: the dtype the encoder will run in (such tables respect its boundary clamp)
    dtype: torch.dtype = torch.float64


class Encoder(nn.Module):
    """Base class: holds the manifold (which owns the curvature) and declares
    what the encoder can do.

    Capabilities (read by the pipeline, training, evaluation and ``query.py``):

    * ``uses_graph``: inference needs the graph (``edge_index``): the cost the
      project measures.  Training embeds through message passing.
    * ``trainable``: there is something to fit (False: a fixed baseline).
    * ``inductive``: a node unseen in training gets its point from its
      features (and, for a graph encoder, its neighbourhood); False for
      tables of learned rows (shallow, id embeddings).
    * ``requires_features``: cannot be built without node features.
    """

    uses_graph: bool = False
    trainable: bool = True
    inductive: bool = False
    requires_features: bool = False

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

    # -- defaults every encoder has --------------------------------------------
    def set_graph(self, edge_index: Optional[Tensor]) -> None:
        """Record what the encoder needs of the full message-passing graph
        (2, E), or forget it (None).  No-op unless ``uses_graph``."""

    def sparse_parameters(self) -> List[nn.Parameter]:
        """Parameters looked up row by row with sparse gradients (embedding
        tables): the optimiser updates only the rows of the batch."""
        return []

    @torch.no_grad()
    def embed_all(self, x: Optional[Tensor], edge_index: Optional[Tensor], num_nodes: int, *,
                  chunk: int = 1024, device=None) -> Tensor:
        """Points of every node, (num_nodes, D), for evaluation.

        The default runs ``forward`` on the nodes' own rows in chunks of 65,536
        (no graph); ``edge_index`` (2, E, global ids) and ``chunk`` (rows of
        work per chunk) serve graph encoders.
        """
        dev = next(iter(self.parameters()), None)
        dev = (dev.device if dev is not None else torch.device("cpu")) if device is None \
            else torch.device(device)
        out = []
        step = 65536
        for i in range(0, num_nodes, step):
            ids = torch.arange(i, min(i + step, num_nodes), device=dev)
            out.append(self(None if x is None else x[ids], None, ids))
        return torch.cat(out)

    def embed_new(self, x: Tensor, edge_index: Optional[Tensor], nodes: Tensor) -> Tensor:
        """Points of ``nodes`` (k,) from features, the way a new node is placed.

        ``x``: (N, F) features of every node; ``edge_index``: (2, E) global,
        the graph the nodes arrive in (graph encoders only).  The default
        reads the nodes' own features.  -> (k, D).
        """
        return self(x[nodes], None, nodes)
