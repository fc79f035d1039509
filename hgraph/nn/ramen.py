"""RAMEN-style encoder: node features -> Euclidean MLP -> exponential map.

The graph is never an input of this encoder: at inference a node's point
depends on its own features only, so inference costs one MLP forward and no
neighbourhood look-up (``uses_graph = False``).  The taxonomy enters only at
training time through the graph regulariser (:mod:`hgraph.losses`, which any
encoder can be trained with)
(Mittal et al. 2024, "Graph Regularized Encoder Training for Extreme
Classification").  "MLP without regulariser" is this encoder trained with
``reg_lambda = 0``; there is no separate encoder for it.

Architecture, for features ``x``: (n, F)::

    h = LayerNorm(x)                           # optional, see below
    h = act(Linear(h)) -> dropout              # cfg.layers - 1 times, width cfg.hidden
    u = Linear(h)                              # (n, dim): a tangent vector at the origin
    z = manifolds.expmap0(manifold, u)         # (n, D) on the manifold (D = dim + 1 on Lorentz)

Widths are ``F -> hidden -> ... -> hidden -> dim`` (``cfg.layers`` Linear
layers; with one layer ``F -> dim``).  No activation or dropout follows the
last layer: the tangent vector must be able to point anywhere.

Input normalisation (``input_norm=True``, the default).  Raw features come at
any scale (counts, BERT vectors of norm ~15, features of norm 1e6).  The
manifold side is already safe for any scale: :func:`hgraph.manifolds.expmap0`
clips the tangent norm, so points stay on the manifold and distances stay
finite.  What the clip cannot do is make *learning* work: with inputs of norm
1e6 almost every tangent vector is clipped, all points sit on the boundary
and the gradient through the clip is ~1e-6.  A LayerNorm on the input (with
learned affine) makes the first layer see zero-mean, unit-variance rows
whatever the input scale.  The price: the per-row mean and norm of the raw
features are discarded; when the feature norm itself carries information
(e.g. encodes depth) pass ``input_norm=False``.  LayerNorm is skipped when
F == 1 (it would map every row to 0) and in id-embedding mode (the table is
learned at unit scale already).

Residual start (``residual=True``).  A sentence encoder's space already
places a category's text near its parent's: the cosine of raw text vectors
is a strong baseline for placing an unseen category.  A tower that starts
from random weights has to rediscover that geometry through its bottleneck,
and on HPO and WordNet it does not (inductive parent MRR about a third of the
cosine baseline's).  With ``residual`` the tangent vector is::

    u = scale * P(x / |x|) + MLP(x)

``P`` is the identity when ``dim`` equals the feature dimension and a trainable
Linear map initialised to an orthonormal projection otherwise; ``scale`` is
a learned positive scalar; the MLP's last layer starts at zero.  At
initialisation every point sits at the same distance from the origin and the
hyperbolic distance between two points is increasing in the angle between
their feature vectors, so the encoder ranks exactly as the cosine baseline
(with ``dim`` equal to the feature dimension) and training moves away from
there only as far as the loss asks.

Id embeddings.  When the dataset has no features (``in_dim is None``) or
``cfg.id_embeddings`` is set, the input is a learned ``nn.Embedding(num_nodes,
hidden)`` indexed by ``node_ids``.  The encoder is then *not inductive*: a
node unseen in training has an untrained row, exactly like the shallow
encoder (:attr:`RamenEncoder.inductive` is False).
"""
from __future__ import annotations

from typing import Optional

import geoopt
import torch
from torch import nn

from hgraph import manifolds as M
from hgraph.nn.base import ACTIVATIONS, Encoder, EncoderSpec

Tensor = torch.Tensor


class RamenEncoder(Encoder):
    """Features (or learned ids) -> MLP -> ``expmap0`` onto the manifold.

    Args:
        manifold: geoopt manifold (poincare, lorentz or euclidean).
        dim: intrinsic output dimension (Lorentz points have dim + 1 coordinates).
        in_dim: feature dimension F, or None when the dataset has no features.
        hidden: width of the hidden layers (and of the id embedding).
        layers: number of Linear layers (>= 1).
        act: activation name, a key of :data:`ACTIVATIONS`.
        dropout: dropout probability after each hidden activation.
        bias: Linear biases.
        num_nodes: size of the id-embedding table (needed in id mode).
        id_embeddings: use learned id embeddings even when features exist.
        input_norm: LayerNorm on the input features (see the module docstring).
        residual: start at the feature geometry (see the module docstring);
            ignored in id-embedding mode.
    """

    inductive = True
    #: in id-embedding mode (``id_embeddings``, or no features) neither holds
    requires_features = True

    def __init__(self, manifold: geoopt.Manifold, dim: int, in_dim: Optional[int], *,
                 hidden: int = 64, layers: int = 2, act: str = "relu", dropout: float = 0.0,
                 bias: bool = True, num_nodes: Optional[int] = None,
                 id_embeddings: bool = False, input_norm: bool = True,
                 residual: bool = False):
        super().__init__(manifold, dim)
        if layers < 1:
            raise ValueError(f"ramen: layers must be >= 1, got {layers}")
        if hidden < 1:
            raise ValueError(f"ramen: hidden must be >= 1, got {hidden}")
        if act not in ACTIVATIONS:
            raise ValueError(f"ramen: unknown activation {act!r}; choose from {sorted(ACTIVATIONS)}")
        self.id_mode = bool(id_embeddings) or in_dim is None
        if self.id_mode:
            if num_nodes is None or num_nodes < 1:
                raise ValueError("ramen: id embeddings need num_nodes (the dataset has no "
                                 "features, or model.id_embeddings is set)")
            self.embedding: Optional[nn.Embedding] = nn.Embedding(num_nodes, hidden)
            first = hidden
            self.norm: Optional[nn.Module] = None
        else:
            if in_dim < 1:
                raise ValueError(f"ramen: feature dimension must be >= 1, got {in_dim}")
            self.embedding = None
            first = in_dim
            self.norm = nn.LayerNorm(in_dim) if (input_norm and in_dim > 1) else None
        # instance attributes: in id mode the features are not read
        self.inductive = self.requires_features = not self.id_mode
        self.in_dim = in_dim
        self.num_nodes = num_nodes
        self.hidden = hidden
        self.act_name = act
        widths = [first] + [hidden] * (layers - 1) + [dim]
        mods = []
        for i in range(layers):
            mods.append(nn.Linear(widths[i], widths[i + 1], bias=bias))
            if i < layers - 1:
                mods.append(ACTIVATIONS[act]())
                if dropout > 0:
                    mods.append(nn.Dropout(dropout))
        self.mlp = nn.Sequential(*mods)
        self.residual = bool(residual) and not self.id_mode
        # skip path: identity (no parameters) or a Linear projection; log of the scale
        self.skip: Optional[nn.Linear] = None
        self.log_scale: Optional[nn.Parameter] = None
        if self.residual:
            if in_dim != dim:
                self.skip = nn.Linear(in_dim, dim, bias=False)
            self.log_scale = nn.Parameter(torch.zeros(()))
        self.reset_parameters()

    @classmethod
    def from_spec(cls, spec: EncoderSpec) -> "RamenEncoder":
        """ENCODERS['ramen']: reads hidden, layers, act, dropout, bias, id_embeddings.
        Without features (``in_dim`` None) it falls back to id embeddings; the
        pipeline asks for ``--id-embeddings`` on purpose (``requires_features``)."""
        cfg = spec.cfg
        return cls(spec.manifold, cfg.dim, spec.in_dim, hidden=cfg.hidden, layers=cfg.layers,
                   act=cfg.act, dropout=cfg.dropout, bias=cfg.bias, num_nodes=spec.num_nodes,
                   id_embeddings=cfg.id_embeddings, residual=cfg.residual)

    def reset_parameters(self) -> None:
        if self.embedding is not None:
            nn.init.normal_(self.embedding.weight, std=1.0)
        if self.norm is not None:
            self.norm.reset_parameters()
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        if self.residual:
            last = self.mlp[-1]
            nn.init.zeros_(last.weight)
            if last.bias is not None:
                nn.init.zeros_(last.bias)
            if self.skip is not None:
                # rows orthonormal: distances of the projected (unit) vectors are
                # those of the features seen through a random dim-d subspace
                nn.init.orthogonal_(self.skip.weight)
            nn.init.zeros_(self.log_scale)

    def tangent(self, x: Optional[Tensor], node_ids: Optional[Tensor]) -> Tensor:
        """(n, dim) tangent vectors at the origin, before the exponential map."""
        if self.id_mode:
            if node_ids is None:
                raise ValueError("ramen in id-embedding mode needs node_ids")
            h = self.embedding(node_ids.to(self.embedding.weight.device).long())
        else:
            if x is None:
                raise ValueError("ramen needs node features x: (n, F); this dataset has none "
                                 "(set model.id_embeddings to use learned ids instead)")
            if x.shape[-1] != self.in_dim:
                raise ValueError(f"ramen: expected {self.in_dim} features per node, got {x.shape[-1]}")
            h = x
            if self.norm is not None:
                h = self.norm(h)
            if self.residual:
                unit = torch.nn.functional.normalize(x, dim=-1)
                skip = unit if self.skip is None else self.skip(unit)
                return self.log_scale.exp() * skip + self.mlp(h)
        return self.mlp(h)

    def forward(self, x: Optional[Tensor], edge_index: Optional[Tensor] = None,
                node_ids: Optional[Tensor] = None) -> Tensor:
        """``x``: (n, F) features (None in id mode); ``edge_index`` is ignored;
        ``node_ids``: (n,) global ids (used in id mode).  Returns (n, D) points."""
        return M.expmap0(self.manifold, self.tangent(x, node_ids))

    def __repr__(self) -> str:
        src = f"ids({self.num_nodes})" if self.id_mode else f"features({self.in_dim})"
        return (f"RamenEncoder(input={src}, mlp={self.mlp}, norm={self.norm is not None}, "
                f"residual={self.residual}, "
                f"dim={self.dim}, manifold={M.kind(self.manifold)})")
