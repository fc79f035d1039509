"""Hyperbolic graph-convolution layers (HGCN, Chami et al. 2019) over geoopt.

Three layers make one HGCN block, ``HypLinear -> HypAgg -> HypAct``:

* :class:`HypLinear` — Möbius matrix-vector product plus a hyperbolic bias;
* :class:`HypAgg` — neighbourhood aggregation in a tangent space, as a
  ``torch_geometric.nn.MessagePassing`` layer (symmetric GCN weights or
  attention);
* :class:`HypAct` — a nonlinearity in the tangent space at the origin, which
  also moves points from one curvature to the next.

Every layer takes its manifold object (which owns the curvature, fixed or
learnable); layers that should share a curvature share the object.  On
``geoopt.Euclidean`` the three layers reduce to ``Linear``, ``GCNConv``-style
aggregation and a plain activation, which is the GCN ablation.

Coordinates: a point of an intrinsic ``d``-dimensional manifold has ``D``
coordinates, ``D = d`` on the ball and in Euclidean space, ``D = d + 1`` on
the hyperboloid (time coordinate first).  ``in_features`` / ``out_features`` /
``channels`` are always the intrinsic ``d``.

Numerics: tangent vectors are mapped back through
:func:`hgraph.manifolds.expmap0`, which clips their norm to
:data:`hgraph.manifolds.guards.MAX_TANGENT_NORM`, and every output is
projected onto its manifold.  The two maps at a point other than the origin
(:func:`hgraph.manifolds.expmap_at`, :func:`hgraph.manifolds.lorentz.translate`)
clip with the same constant, and hyperboloid outputs are kept within that
distance of the origin (:func:`hgraph.manifolds.lorentz.clip`).  The formulas
live in :mod:`hgraph.manifolds`; no guard constant is defined here.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import geoopt
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from hgraph import manifolds as M
from hgraph.nn.base import ACTIVATIONS

Tensor = torch.Tensor
PairTensor = Tuple[Tensor, Tensor]


# --------------------------------------------------------------- layers
class HypLinear(nn.Module):
    r"""Hyperbolic linear layer: Möbius matrix-vector product, then a bias.

    .. math::

        h = \exp_0(W \log_0(x)),\qquad y = h \oplus b

    * ball: :math:`\oplus` is Möbius addition (so ``h`` is geoopt's
      ``mobius_matvec(W, x)``);
    * hyperboloid: ``W`` acts on the space part of :math:`\log_0(x)` and
      :math:`h \oplus b = \exp_h(PT_{o \to h}(\log_0 b))`
      (:func:`hgraph.manifolds.lorentz.translate`), which on the ball is Möbius addition too;
    * Euclidean: ``y = x W^T + b`` (``torch.nn.Linear``).

    The bias starts at the origin.  On the ball ``b`` is a
    ``geoopt.ManifoldParameter`` (D,), projected onto the manifold before use
    so that a learned curvature that moved since the last optimiser step
    cannot leave it outside the ball.  On the hyperboloid the parameter is
    ``log_0 b`` (d,), a plain tensor: geoopt's ``RiemannianAdam`` steps on
    hyperboloid manifold parameters overflow ``cosh`` and write NaN into
    them at learning rates ~0.5 (seen in testing), a tangent vector is valid
    for every curvature, and it is what :func:`hgraph.manifolds.lorentz.translate` takes.  In
    Euclidean space it is the plain bias.  ``dropout`` drops entries of ``W``
    during training (as HGCN does).  ``W`` is Xavier-uniform with gain
    sqrt(2).

    Args:
        manifold: geoopt manifold of inputs and outputs.
        in_features, out_features: intrinsic dimensions ``d_in``, ``d_out``.

    Shapes: ``x: (N, D_in) -> (N, D_out)`` (``D = d + 1`` on the hyperboloid).
    """

    def __init__(self, manifold: geoopt.Manifold, in_features: int, out_features: int,
                 bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.manifold = manifold
        self.in_features = in_features
        self.out_features = out_features
        self.dropout = dropout
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        if bias and M.kind(manifold) == "poincare":
            self.bias = geoopt.ManifoldParameter(torch.empty(out_features), manifold=manifold)
        elif bias:
            self.bias = nn.Parameter(torch.empty(out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight, gain=math.sqrt(2.0))
        if self.bias is not None:
            with torch.no_grad():
                self.bias.zero_()     # the origin (ball), or log_0 of it (hyperboloid)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: (N, D_in) points -> (N, D_out) points."""
        w = F.dropout(self.weight, self.dropout, self.training)
        k = M.kind(self.manifold)
        if k == "euclidean":
            return F.linear(x, w, self.bias)
        h = M.expmap0(self.manifold, F.linear(M.logmap0(self.manifold, x), w))
        if self.bias is None:
            return h
        if k == "poincare":
            b = self.manifold.projx(self.bias.to(h.dtype))
            return self.manifold.mobius_add(h, b)           # projects
        return M.lorentz.translate(h, self.bias.to(h.dtype), self.manifold.k.to(h))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_features}, {self.out_features}, "
                f"manifold={M.kind(self.manifold)}, bias={self.bias is not None}, "
                f"dropout={self.dropout})")


class HypAct(nn.Module):
    r"""Activation in the tangent space at the origin, changing curvature.

    .. math:: y = \exp_0^{out}(\sigma(\log_0^{in}(x)))

    Shapes: ``x: (N, D_in) -> (N, D_out)`` with the same intrinsic ``d`` (the
    coordinate count only differs if one manifold is a hyperboloid and the
    other is not).  ``act`` is a key of :data:`hgraph.nn.base.ACTIVATIONS`.
    """

    def __init__(self, manifold_in: geoopt.Manifold, manifold_out: geoopt.Manifold,
                 act: str = "relu"):
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"unknown activation {act!r}; choose from {sorted(ACTIVATIONS)}")
        self.manifold_in = manifold_in
        self.manifold_out = manifold_out
        self.act = act
        self.fn = ACTIVATIONS[act]()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        pass  # no parameters of its own (the manifolds reset themselves)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: (N, D_in) points on ``manifold_in`` -> (N, D_out) on ``manifold_out``."""
        u = self.fn(M.logmap0(self.manifold_in, x))
        return M.expmap0(self.manifold_out, u)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.act}, {M.kind(self.manifold_in)} -> "
                f"{M.kind(self.manifold_out)})")


class HypAgg(MessagePassing):
    r"""Neighbourhood aggregation in a tangent space (HGCN), as message passing.

    For target ``i`` with neighbours :math:`N(i)` (sources ``j`` of edges
    ``j -> i``) and a self-loop, with weights :math:`w_{ij}`:

    * origin (default): :math:`y_i = \exp_0(\sum_{j \in N(i) \cup \{i\}} w_{ij} \log_0 x_j)`
    * ``local_agg=True``: :math:`y_i = \exp_{x_i}(\sum_{j \in N(i)} w_{ij} \log_{x_i} x_j)`
      (the self term is the zero vector; its weight still counts).  Below
      float64 this step runs in float64 (ill-conditioned in float32 a few
      units from the origin; see ``_local``).

    Weights:

    * ``norm="mean"`` (default): :math:`w_{ij} = 1 / \deg_i` (row-normalised
      :math:`D^{-1}(A + I)`, as HGCN's reference code), degrees counted on the
      ``edge_index`` given (a sampled subgraph averages over the sampled
      neighbours, as GraphSAGE); the weights of each target sum to 1, so the
      aggregate is a convex combination whatever the node's degree;
    * ``norm="sym"``: GCN's :math:`w_{ij} = 1 / \sqrt{\deg_j \deg_i}`, with
      degrees counting the self-loop (``deg = in-degree + 1``).  On a tree the
      weights of a node with k children sum to ~sqrt(k), so hubs land far from
      their children: on a generated 7.7k-node tree a 2-layer Euclidean GCN with
      it stayed at chance on held-out child -> parent edges (ROC-AUC 0.55) where
      ``mean`` learns;
    * ``attention=True``: :math:`w_{ij} = \mathrm{softmax}_{j \in N(i) \cup \{i\}}
      (\mathrm{MLP}([\log_0 x_i \,\|\, \log_0 x_j]))`, the MLP being
      ``Linear(2d, d) -> LeakyReLU(0.2) -> Linear(d, 1)``; the weights of
      each target sum to 1.

    In Euclidean space the origin variant is GCN aggregation
    (``GCNConv`` without its linear map).

    Mini-batches: the sources and targets may differ.  Either ``x`` is one
    (N, D) tensor and the targets are its first ``size[1]`` rows (PyG's
    ``NeighborLoader`` order; all rows when ``size`` is None); self-loop
    edges in ``edge_index`` are dropped, and so are edges into rows beyond
    ``size[1]``.  Or ``x = (x_src, x_dst)`` (bipartite); then ``edge_index``
    must contain no self-loops (the self term of target ``i`` is
    ``x_dst[i]``) and GCN weights need ``deg=(deg_src, deg_dst)``.

    ``deg`` gives the degrees (self-loop included) the GCN weights use: pass
    the full graph's degrees when ``edge_index`` is a sampled subgraph so
    the normalisation is the full graph's.  Without it they are counted on
    ``edge_index`` (right for the full graph; what PyG's ``GCNConv`` does on
    a subgraph).

    Shapes: ``x: (N, D)`` or ``((N_src, D), (N_dst, D))``,
    ``edge_index: (2, E)`` (row 0 sources, row 1 targets, local indices),
    ``deg: (N,)`` or ``((N_src,), (N_dst,))`` -> ``(N_dst, D)``.
    """

    def __init__(self, manifold: geoopt.Manifold, channels: int, attention: bool = False,
                 local_agg: bool = False, norm: str = "mean"):
        super().__init__(aggr="add", node_dim=0)
        if norm not in ("mean", "sym"):
            raise ValueError(f"norm must be 'mean' or 'sym', got {norm!r}")
        self.norm = norm
        self.manifold = manifold
        self.channels = channels
        self.attention = attention
        self.local_agg = local_agg
        if attention:
            self.att = nn.Sequential(nn.Linear(2 * channels, channels), nn.LeakyReLU(0.2),
                                     nn.Linear(channels, 1))
        else:
            self.att = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.att is not None:
            for layer in self.att:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()

    # -- helpers ------------------------------------------------------------
    def _split(self, x: Union[Tensor, PairTensor], edge_index: Tensor,
               size: Optional[Tuple[int, int]]) -> Tuple[Tensor, Tensor, Tensor, bool]:
        """-> (x_src, x_dst, edge_index, shared); ``shared``: x_dst is x_src[:N_dst]."""
        if isinstance(x, Tensor):
            n_src = x.size(0)
            n_dst = n_src if size is None else int(size[1])
            if size is not None and int(size[0]) != n_src:
                raise ValueError(f"size[0]={size[0]} but x has {n_src} rows")
            if n_dst > n_src:
                raise ValueError(f"size[1]={n_dst} exceeds the {n_src} rows of x")
            src, dst = edge_index[0], edge_index[1]
            keep = src != dst
            if n_dst < n_src:
                keep = keep & (dst < n_dst)
            return x, x[:n_dst], edge_index[:, keep], True
        x_src, x_dst = x
        if size is not None and (int(size[0]), int(size[1])) != (x_src.size(0), x_dst.size(0)):
            raise ValueError(f"size={tuple(size)} does not match x_src {tuple(x_src.shape)} "
                             f"and x_dst {tuple(x_dst.shape)}")
        return x_src, x_dst, edge_index, False

    def _gcn_weights(self, edge_index: Tensor, n_src: int, n_dst: int, shared: bool,
                     deg: Union[Tensor, PairTensor, None], dtype: torch.dtype
                     ) -> Tuple[Tensor, Tensor]:
        if self.norm == "mean":
            cnt = torch.bincount(edge_index[1], minlength=n_dst)[:n_dst].to(dtype) + 1.0
            w_self = cnt.reciprocal()
            return w_self[edge_index[1]], w_self
        if deg is None:
            if not shared:
                raise ValueError("bipartite input (x_src, x_dst) needs deg=(deg_src, deg_dst) "
                                 "for GCN weights; pass the full graph's degrees")
            deg_src = torch.bincount(edge_index[1], minlength=n_src).to(dtype) + 1.0
            deg_dst = deg_src[:n_dst]
        elif isinstance(deg, Tensor):
            deg_src, deg_dst = deg.to(dtype), deg[:n_dst].to(dtype)
        else:
            deg_src, deg_dst = deg[0].to(dtype), deg[1].to(dtype)
        w_edge = (deg_src[edge_index[0]] * deg_dst[edge_index[1]]).rsqrt()
        return w_edge, deg_dst.reciprocal()

    def _att_weights(self, u_src: Tensor, u_dst: Tensor, edge_index: Tensor
                     ) -> Tuple[Tensor, Tensor]:
        assert self.att is not None
        src, dst = edge_index[0], edge_index[1]
        n_dst = u_dst.size(0)
        e_edge = self.att(torch.cat([u_dst[dst], u_src[src]], dim=-1)).squeeze(-1)
        e_self = self.att(torch.cat([u_dst, u_dst], dim=-1)).squeeze(-1)
        index = torch.cat([dst, torch.arange(n_dst, device=dst.device)])
        alpha = softmax(torch.cat([e_edge, e_self]), index, num_nodes=n_dst)
        return alpha[:src.numel()], alpha[src.numel():]

    def _tangent0(self, x_src: Tensor, x_dst: Tensor, shared: bool) -> Tuple[Tensor, Tensor]:
        u_src = M.logmap0(self.manifold, x_src)
        u_dst = u_src[:x_dst.size(0)] if shared else M.logmap0(self.manifold, x_dst)
        return u_src, u_dst

    # -- forward ------------------------------------------------------------
    def forward(self, x: Union[Tensor, PairTensor], edge_index: Tensor,
                size: Optional[Tuple[int, int]] = None,
                deg: Union[Tensor, PairTensor, None] = None) -> Tensor:
        """``x``: (N, D) or ((N_src, D), (N_dst, D)); ``edge_index``: (2, E) -> (N_dst, D)."""
        x_src, x_dst, edge_index, shared = self._split(x, edge_index, size)
        n_src, n_dst = x_src.size(0), x_dst.size(0)
        need_u0 = self.attention or not self.local_agg
        u_src, u_dst = self._tangent0(x_src, x_dst, shared) if need_u0 else (None, None)
        if self.attention:
            w_edge, w_self = self._att_weights(u_src, u_dst, edge_index)
        else:
            w_edge, w_self = self._gcn_weights(edge_index, n_src, n_dst, shared, deg, x_src.dtype)
        if self.local_agg:
            return self._local(x_src, x_dst, edge_index, w_edge)
        out = self.propagate(edge_index, p=None, u=(u_src, u_dst), w=w_edge, size=(n_src, n_dst))
        out = out + w_self.unsqueeze(-1) * u_dst
        return M.expmap0(self.manifold, out)

    def _local(self, x_src: Tensor, x_dst: Tensor, edge_index: Tensor, w_edge: Tensor) -> Tensor:
        size = (x_src.size(0), x_dst.size(0))
        if M.kind(self.manifold) == "euclidean" or x_src.dtype == torch.float64:
            v = self.propagate(edge_index, p=(x_src, x_dst), u=None, w=w_edge, size=size)
            return M.expmap_at(self.manifold, x_dst, v)
        # Below float64, log_{x_i} / exp_{x_i} are ill-conditioned a few units from
        # the origin: Minkowski products cancel (error ~1e-7 x_0^2 in float32), and
        # on the ball Möbius addition near the boundary loses ~1e-7 / (1 - |x|^2)^2.
        # So this step runs in float64 on the re-projected points.
        p_src = self.manifold.projx(x_src.double())
        p_dst = self.manifold.projx(x_dst.double())
        v = self.propagate(edge_index, p=(p_src, p_dst), u=None, w=w_edge.double(), size=size)
        y = M.expmap_at(self.manifold, p_dst, v).to(x_dst.dtype)
        return M.project(self.manifold, y)

    def message(self, w: Tensor, u_j: Optional[Tensor], p_i: Optional[Tensor],
                p_j: Optional[Tensor]) -> Tensor:
        """``w``: (E,); ``u_j``: (E, d) tangent vectors at the origin, or
        ``p_i, p_j``: (E, D) points (local aggregation) -> (E, d) or (E, D)."""
        if p_i is None:
            return w.unsqueeze(-1) * u_j
        return w.unsqueeze(-1) * M.logmap(self.manifold, p_i, p_j)

    @torch.no_grad()
    def attention_weights(self, x: Union[Tensor, PairTensor], edge_index: Tensor,
                          size: Optional[Tuple[int, int]] = None) -> Tuple[Tensor, Tensor]:
        """The softmax weights, for inspection.

        Returns ``(edge_index_sl, alpha)``: ``edge_index_sl`` (2, E' + N_dst) is
        ``edge_index`` after the layer's filtering followed by one self-loop
        ``(i, i)`` per target (source ``i`` meaning ``x_dst[i]``); ``alpha``
        (E' + N_dst,) sums to 1 over the entries of each target.
        """
        if not self.attention:
            raise ValueError("attention_weights needs HypAgg(attention=True)")
        x_src, x_dst, edge_index, shared = self._split(x, edge_index, size)
        u_src, u_dst = self._tangent0(x_src, x_dst, shared)
        w_edge, w_self = self._att_weights(u_src, u_dst, edge_index)
        loops = torch.arange(x_dst.size(0), device=edge_index.device)
        ei = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
        return ei, torch.cat([w_edge, w_self])

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, manifold={M.kind(self.manifold)}, "
                f"attention={self.attention}, local_agg={self.local_agg}, norm={self.norm})")
