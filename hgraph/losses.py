"""Training losses and graph regularisers: the LOSSES and REGULARIZERS registries.

Every loss has one signature::

    loss = LOSSES[name](manifold, z_u, z_v, z_n, mask)

* ``z_u``: (B, D) anchors, ``z_v``: (B, D) positives, ``z_n``: (B, K, D)
  negatives for each anchor, all points on ``manifold``;
* ``mask``: (B, K) bool, False where a negative could not be drawn (the
  sampler found no valid one); masked negatives contribute nothing.

Returns a scalar tensor (mean over the batch).

The graph regulariser (:class:`GraphRegularizer`, RAMEN / HUSE style) adds
terms from :data:`REGULARIZERS` on triplets and pairs drawn by
:class:`hgraph.data.triplets.TripletSampler` from the training graph; any
encoder can be trained with it (``reg.reg_lambda > 0``).  Formulas and
sampling rules: :mod:`hgraph.data.triplets`.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F

import numpy as np

from hgraph import manifolds as M
from hgraph.data.triplets import KINDS, TRIPLET_KINDS, TripletSampler

Tensor = torch.Tensor


def _dists(manifold, z_u: Tensor, z_v: Tensor, z_n: Tensor):
    d_pos = M.dist(manifold, z_u, z_v)                      # (B,)
    d_neg = M.dist(manifold, z_u.unsqueeze(1), z_n)         # (B, K)
    return d_pos, d_neg


def margin_hinge(closer: Tensor, farther: Tensor, margin: float) -> Tensor:
    """``relu(margin + closer - farther)`` elementwise: zero once ``farther``
    exceeds ``closer`` by ``margin``.  The one hinge of every margin loss
    (distances, or negated similarities)."""
    return F.relu(margin + closer - farther)


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
    hinge = margin_hinge(-sim_pos.unsqueeze(1), -sim_neg, margin)
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


# ---------------------------------------------------------------- graph regularisers
def lambda_at(epoch: int, reg_lambda: float, warmup: int) -> float:
    """Regulariser weight at ``epoch`` (0-based): linear warm-up from 0 to λ.

    ``λ · min(1, epoch / warmup)``; ``λ`` for every epoch when ``warmup <= 0``.
    """
    if warmup <= 0 or epoch >= warmup:
        return float(reg_lambda)
    return float(reg_lambda) * max(0, epoch) / float(warmup)


def triplet_term(reg: "GraphRegularizer", manifold, z: Tensor, R: Callable, samples,
                 kind: str) -> Tensor:
    """``mean_t relu(margin + d(z_u, z_pos) - d(z_u, z_w))`` over the rows
    ``(u, pos, w)`` of ``samples[kind]``; zero without samples.  ``R`` maps
    global ids to rows of ``z``."""
    t = samples[kind]
    if len(t) == 0:
        return z.new_zeros(())
    zu, zp, zn = z[R(t[:, 0])], z[R(t[:, 1])], z[R(t[:, 2])]
    d_pos = M.dist(manifold, zu, zp)
    d_neg = M.dist(manifold, zu, zn)
    return margin_hinge(d_pos, d_neg, reg.margin).mean()


def huse_term(reg: "GraphRegularizer", manifold, z: Tensor, R: Callable, samples,
              kind: str = "huse") -> Tensor:
    """HUSE's distance consistency over ``samples["huse"]`` pairs and their
    hierarchy distances ``samples["huse_dist"]`` (fixed or fitted scale, see
    :mod:`hgraph.data.triplets`); zero without samples."""
    pr, tgt = samples["huse"], samples["huse_dist"]
    if len(pr) == 0:
        return z.new_zeros(())
    d = M.dist(manifold, z[R(pr[:, 0])], z[R(pr[:, 1])])
    t = torch.as_tensor(tgt, dtype=z.dtype, device=z.device)
    if reg.huse_scale is not None:
        return ((d / reg.huse_scale - t) ** 2).mean()
    dd = d.detach()
    a = (dd * t).sum() / (dd * dd).sum().clamp_min(M.eps(z.dtype))
    return ((a * d - t) ** 2).mean() / (t * t).mean()


#: regulariser kind (``reg.reg_kinds``) -> term(reg, manifold, z, rows_of, samples, kind)
REGULARIZERS: Dict[str, Callable[..., Tensor]] = {
    "ancestor": triplet_term,
    "sibling": triplet_term,
    "huse": huse_term,
}
assert set(REGULARIZERS) == set(KINDS) and set(TRIPLET_KINDS) <= set(KINDS)


class GraphRegularizer(TripletSampler):
    """Triplet / distance regularisers sampled from a training graph: a
    :class:`~hgraph.data.triplets.TripletSampler` plus the loss of each kind.

    Args (besides the sampler's ``train_edges, num_nodes, kinds,
    hard_negatives, level, allowed, huse_threshold, seed``):
        margin: hinge margin of the triplet kinds (distance units).
        huse_scale: fixed scale of the ``huse`` loss, None to fit it per batch.
    """

    def __init__(self, train_edges: np.ndarray, num_nodes: int,
                 kinds: Sequence[str] = ("ancestor", "sibling"), margin: float = 0.1,
                 hard_negatives: bool = False, level: Optional[np.ndarray] = None,
                 allowed: Optional[np.ndarray] = None, huse_threshold: int = 4,
                 huse_scale: Optional[float] = None, seed: int = 0):
        if not margin >= 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if huse_scale is not None and not huse_scale > 0:
            raise ValueError(f"huse_scale must be > 0 or None, got {huse_scale}")
        super().__init__(train_edges, num_nodes, kinds=kinds, hard_negatives=hard_negatives,
                         level=level, allowed=allowed, huse_threshold=huse_threshold, seed=seed)
        self.margin = float(margin)
        self.huse_scale = huse_scale

    def loss(self, manifold, z: Tensor,
             local: Union[None, Callable, np.ndarray, Tensor],
             samples: Dict[str, np.ndarray]) -> Dict[str, Tensor]:
        """Per-kind scalar losses (formulas in :mod:`hgraph.data.triplets`).

        ``z``: (n, D) points on ``manifold``; ``local`` maps global ids to rows
        of ``z``: an (N,) index array / tensor (e.g. :func:`index_map`), a
        callable ``ids (np.ndarray) -> rows``, or None when row == global id.
        A kind with no samples contributes a zero.
        """
        ids = self.nodes(samples)
        if local is None:
            rows = ids
        elif callable(local) and not isinstance(local, (np.ndarray, Tensor)):
            rows = local(ids)
        else:
            rows = local[torch.as_tensor(ids)] if isinstance(local, Tensor) else local[ids]
        if isinstance(rows, Tensor):
            rows = rows.detach().cpu().long()
        else:
            rows = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= z.shape[0]):
            missing = ids[(rows < 0).numpy() | (rows >= z.shape[0]).numpy()]
            raise ValueError(f"nodes {missing[:5].tolist()} touched by the samples are not rows of z "
                             "(encode reg.nodes(samples))")
        rows = rows.to(z.device)

        def R(arr: np.ndarray) -> Tensor:
            return rows[torch.as_tensor(np.searchsorted(ids, arr), device=z.device)]

        return {kind: REGULARIZERS[kind](self, manifold, z, R, samples, kind)
                for kind in self.kinds}

    def __repr__(self) -> str:
        return (f"GraphRegularizer(kinds={self.kinds}, nodes={len(self.allowed_ids)}/{self.num_nodes}, "
                f"edges={len(self.edges)}, closure={self.closure.nnz}, margin={self.margin}, "
                f"hard_negatives={self.hard_negatives})")
