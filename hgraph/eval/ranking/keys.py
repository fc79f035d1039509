"""Ranking keys: a per-row increasing function of the geodesic distance.

Ranking key.  Ranking within one source row only needs a per-row increasing
function of the distance, and for all three manifolds there is one that is a
single matrix product (no arcosh, no per-element work besides the product):

* Poincaré ball (curvature -c):
  ``d = arcosh(1 + 2c|x-y|^2 / ((1-c|x|^2)(1-c|y|^2))) / sqrt(c)`` is
  increasing in ``|x-y|^2 / (1-c|y|^2)`` for fixed ``x``, which is
  ``[x, |x|^2, 1] . [-2 b y, b, b |y|^2]`` with ``b = 1/(1-c|y|^2)``;
* Lorentz (``<x, x>_L = -k``): ``d = sqrt(k) arcosh(-<x, y>_L / k)`` is
  increasing in ``-<x, y>_L = x0 y0 - <x_s, y_s>``;
* Euclidean: ``|y|^2 - 2 <x, y>`` (the row-constant ``|x|^2`` dropped).

The cancellation in these sums is the same as in
:func:`hgraph.manifolds.pairwise_dist` (which also expands ``|x-y|^2``); pass
float64 points for more head-room.  Ties are judged on this key; exact ties
come from duplicate points, which get identical keys.
"""
from __future__ import annotations

from typing import Optional

import geoopt
import torch

from hgraph.manifolds import eps, kind

Tensor = torch.Tensor


class RankKeys:
    """Per-row increasing transform of the geodesic distance, as one matmul.

    ``RankKeys(manifold, y)`` prepares the column side once (``y``: (M, D));
    :meth:`block` then returns ``K`` (n, M) for rows ``x`` (n, D) with
    ``K[i, j] < K[i, l]  <=>  d(x_i, y_j) < d(x_i, y_l)`` (exact arithmetic).
    Keys are comparable within a row only.
    """

    def __init__(self, manifold: geoopt.Manifold, y: Tensor):
        self.kind = kind(manifold)
        y = y.detach()
        if self.kind == "poincare":
            c = manifold.c.detach().to(y)
            self.c = c
            sq = (y * y).sum(-1, keepdim=True)
            b = 1.0 / (1.0 - c * sq).clamp_min(eps(y.dtype))
            cols = torch.cat([-2.0 * b * y, b, b * sq], dim=1)
        elif self.kind == "lorentz":
            cols = torch.cat([y[:, :1], -y[:, 1:]], dim=1)
        else:
            cols = torch.cat([-2.0 * y, (y * y).sum(-1, keepdim=True)], dim=1)
        #: (D', M) column features, contiguous for the matmul
        self.cols_t = cols.T.contiguous()
        self.num_cols = y.shape[0]
        self.row_features: Optional[Tensor] = None

    def prepare_rows(self, x: Tensor) -> None:
        """Precompute row features of all of ``x`` (N, D); :meth:`block_ids` then indexes them."""
        self.row_features = self.rows(x)

    def rows(self, x: Tensor) -> Tensor:
        """(n, D') row features for points ``x`` (n, D)."""
        x = x.detach()
        if self.kind == "poincare":
            return torch.cat([x, (x * x).sum(-1, keepdim=True), torch.ones_like(x[:, :1])], dim=1)
        if self.kind == "lorentz":
            return x
        return torch.cat([x, torch.ones_like(x[:, :1])], dim=1)

    def block(self, x: Tensor, out: Optional[Tensor] = None) -> Tensor:
        """(n, M) keys of rows ``x`` against all columns (into ``out`` if given)."""
        return self._mm(self.rows(x), out)

    def block_ids(self, ids: Tensor, out: Optional[Tensor] = None) -> Tensor:
        """(n, M) keys of rows ``ids`` of the points given to :meth:`prepare_rows`."""
        return self._mm(self.row_features[ids], out)

    def _mm(self, a: Tensor, out: Optional[Tensor]) -> Tensor:
        if out is None:
            return a @ self.cols_t
        return torch.mm(a, self.cols_t, out=out)


def rank_keys(manifold: geoopt.Manifold, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
    """(n, m) ranking keys of ``x`` (n, D) against ``y`` (m, D) (default ``x``).

    See :class:`RankKeys`; keys order each row like the geodesic distances.
    """
    return RankKeys(manifold, x if y is None else y).block(x)
