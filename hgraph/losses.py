"""Training losses over (anchor, positive, negatives) and the LOSSES registry.

Every loss has one signature::

    loss = LOSSES[name](manifold, z_u, z_v, z_n, mask)

* ``z_u``: (B, D) anchors, ``z_v``: (B, D) positives, ``z_n``: (B, K, D)
  negatives for each anchor, all points on ``manifold``;
* ``mask``: (B, K) bool, False where a negative could not be drawn (the
  sampler found no valid one); masked negatives contribute nothing.

Returns a scalar tensor (mean over the batch).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F

from hgraph import manifolds as M

Tensor = torch.Tensor


def _dists(manifold, z_u: Tensor, z_v: Tensor, z_n: Tensor):
    d_pos = M.dist(manifold, z_u, z_v)                      # (B,)
    d_neg = M.dist(manifold, z_u.unsqueeze(1), z_n)         # (B, K)
    return d_pos, d_neg


def ranking_loss(manifold, z_u: Tensor, z_v: Tensor, z_n: Tensor,
                 mask: Optional[Tensor] = None) -> Tensor:
    """Nickel & Kiela (2017) softmax ranking loss.

    ``L = -log( exp(-d(u,v)) / (exp(-d(u,v)) + sum_k exp(-d(u,n_k))) )``,
    i.e. cross-entropy over logits ``-d`` with the positive as class 0.
    """
    d_pos, d_neg = _dists(manifold, z_u, z_v, z_n)
    logits_neg = -d_neg
    if mask is not None:
        logits_neg = logits_neg.masked_fill(~mask, float("-inf"))
    logits = torch.cat([-d_pos.unsqueeze(1), logits_neg], dim=1)
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


def triplet_loss(manifold, z_u: Tensor, z_v: Tensor, z_n: Tensor,
                 mask: Optional[Tensor] = None, margin: float = 0.5,
                 scale: float = 5.0, penalty: float = 1e-3) -> Tensor:
    """CurvLearn's tree-pretrain triplet loss.

    ``sim(d) = sigmoid(scale - scale * d^2)``;
    ``L = mean_k relu(margin - sim(d(u,v)) + sim(d(u,n_k)))
          + penalty * (d(u,0)^2 + d(v,0)^2) / 2``
    (the penalty keeps points from drifting to the boundary).
    """
    d_pos, d_neg = _dists(manifold, z_u, z_v, z_n)
    sim_pos = torch.sigmoid(scale - scale * d_pos ** 2)
    sim_neg = torch.sigmoid(scale - scale * d_neg ** 2)
    hinge = F.relu(margin - sim_pos.unsqueeze(1) + sim_neg)
    if mask is not None:
        hinge = hinge * mask
        denom = mask.sum().clamp_min(1)
    else:
        denom = hinge.numel()
    reg = 0.5 * (M.dist0(manifold, z_u) ** 2 + M.dist0(manifold, z_v) ** 2).mean()
    return hinge.sum() / denom + penalty * reg


def fermi_dirac_loss(manifold, z_u: Tensor, z_v: Tensor, z_n: Tensor,
                     mask: Optional[Tensor] = None, r: float = 2.0, t: float = 1.0) -> Tensor:
    """HGCN's Fermi-Dirac decoder with binary cross-entropy.

    ``p(u, v) = 1 / (exp((d(u,v)^2 - r) / t) + 1)``; positives have label 1,
    negatives 0; ``L = BCE(p_pos, 1) + mean_k BCE(p_neg, 0)`` with logits
    ``(r - d^2) / t`` for numerical stability.
    """
    d_pos, d_neg = _dists(manifold, z_u, z_v, z_n)
    logit_pos = (r - d_pos ** 2) / t
    logit_neg = (r - d_neg ** 2) / t
    pos = F.binary_cross_entropy_with_logits(logit_pos, torch.ones_like(logit_pos))
    neg_all = F.binary_cross_entropy_with_logits(logit_neg, torch.zeros_like(logit_neg),
                                                 reduction="none")
    if mask is not None:
        neg = (neg_all * mask).sum() / mask.sum().clamp_min(1)
    else:
        neg = neg_all.mean()
    return pos + neg


#: name -> loss(manifold, z_u, z_v, z_n, mask) -> scalar.  The CLI's --loss choices.
LOSSES: Dict[str, Callable[..., Tensor]] = {
    "ranking": ranking_loss,
    "triplet": triplet_loss,
    "fermi_dirac": fermi_dirac_loss,
}
