"""One step of the fused shallow trainer: the ranking loss's gradients in closed form
(:func:`ranking_grads`) and the row updates (:class:`Stepper`), plus the table's start
(:func:`init_table`).

The library's loop (:func:`hgraph.train.loop.train`) trains any encoder through
autograd and an optimiser over a ``ManifoldParameter``; for a shallow table
on the transitive closure that generality is most of the cost (on WordNet
nouns, 82k rows, 1,024 pairs x 10 negatives a step: forward 5 ms, backward 5
ms, the row-sparse optimiser 13 ms, gradient checks 1 ms; profile in
results/benchmarks.md).  Here one step is written out in closed form on the
hyperboloid ``<x, x>_L = -1`` (Nickel & Kiela 2018, "Learning Continuous
Hierarchies in the Lorentz Model"):

* loss per positive pair ``(u, v)`` with negatives ``n_1..n_K`` (uniform
  nodes; a draw that is u itself or one of u's ancestors gets weight 0, as
  the reference's filtered sampling; unmasked, u drawn as its own negative
  at distance 0 held WordNet mammals at MAP 0.935 instead of 0.97):
  ``d(u, v) + log sum_j exp(-d(u, j))`` over
  ``j in {v, n_1..n_K}`` (:func:`hgraph.losses.ranking_loss`), summed over
  the batch, so the learning rate is per pair and survives a change of
  batch size; with ``temperature`` T the distances are divided by T (the
  preset's 0.25 keeps rows off the radius cap);
* ``d = arcosh(a)``, ``a = -<x, y>_L``, ``a - 1`` computed without the
  product's cancellation (:func:`hgraph.manifolds.lorentz.cosh_dist_minus_one`);
  the Euclidean gradient of ``a`` in
  ``x`` is ``(y_0, -y_s)``, and the metric's inverse turns it into ``-y``: the
  Riemannian gradient of a pair term in ``x`` is ``-(dL/da) y`` projected on
  the tangent space ``h + <x, h>_L x``;
* every row's tangent gradients are summed (``index_add_``; the projection is
  linear, so projecting per occurrence and summing equals projecting the sum),
  the step is capped at ``max_step`` in hyperbolic distance (the root is in
  about one pair in nine of nouns, so its summed step would otherwise be
  ~100 pair steps at once) and taken with the exponential map, then the row
  is put back on the hyperboloid (time coordinate from the space part,
  :func:`hgraph.manifolds.lorentz.project_rows`).

No autograd graph and no optimiser object: a step is ~25 tensor ops on
``batch x (K + 1)`` rows plus one ``unique`` of the touched rows (WordNet
nouns, batch 1,024, 50 negatives, one thread: ~17 ms a step, 12 s an epoch,
against 41 s an epoch of the loop at the same settings;
results/shallow_fast/README.md).  geoopt has the same maps
(``geoopt.Lorentz.expmap``, ``egrad2rgrad``; the tests check both against
them), but as generic methods that recompute Minkowski products the loss has
already formed; and its tangent norm ``sqrt(<v, v>_L)`` cancels far from the
origin, where the form used here (:meth:`Stepper._move`) does not.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from hgraph.manifolds.lorentz import cosh_dist_minus_one, inner, project_rows
from hgraph.train.fused_config import FitConfig
from hgraph.train.fused_negatives import _member

Tensor = torch.Tensor


def init_table(cfg: FitConfig, num_nodes: int, edges: Optional[np.ndarray] = None,
               dtype=torch.float64) -> Tensor:
    g = torch.Generator().manual_seed(cfg.seed)
    if cfg.init == "cone":
        if edges is None:
            raise ValueError("init='cone' needs the (child, parent) edges")
        from hgraph.manifolds.construct import cone
        x, _ = cone(edges, num_nodes, cfg.dim, curvature=1.0, lorentz=True, dtype=dtype,
                    radius=cfg.init_radius, seed=cfg.seed)
        return project_rows(x.to(dtype).contiguous())
    u = torch.empty(num_nodes, cfg.dim, dtype=dtype).uniform_(-cfg.init_scale, cfg.init_scale,
                                                              generator=g)
    n = u.norm(dim=1, keepdim=True).clamp_min(1e-300)
    return torch.cat([torch.cosh(n), torch.sinh(n) * u / n], 1)


class Stepper:
    """One worker's steps over a shared (N, d+1) table."""

    def __init__(self, x: Tensor, pairs: Tensor, closure_keys: Optional[Tensor],
                 cfg: FitConfig, candidates: Optional[Tensor] = None):
        self.x = x
        self.n = x.shape[0]
        self.pairs = pairs
        self.keys = closure_keys           # sorted u * N + w of the pairs never drawn
        self.candidates = candidates       # nodes negatives are drawn from (None: all)
        self.cfg = cfg
        self.tangent = torch.zeros_like(x)
        self.local = int(round(cfg.negatives * cfg.local_negatives))
        self.near_n = int(round(cfg.negatives * cfg.near_negatives))
        self.near = self.near_keys = None          # set by set_near()
        if self.local:
            if closure_keys is None:
                raise ValueError("local_negatives needs the closure keys (filter_ancestors)")
            # descendants of every node in the training pairs (CSR by ancestor); a pair's
            # own u is among its v's, so every v has at least one
            by_v = torch.argsort(pairs[:, 1], stable=True)
            self.desc = pairs[by_v, 0].contiguous()
            self.desc_cnt = torch.bincount(pairs[:, 1], minlength=self.n)
            self.desc_ptr = torch.cumsum(self.desc_cnt, 0) - self.desc_cnt

    def set_near(self, near: Tensor) -> None:
        """Each row's neighbour list (n, k) for ``near_negatives`` (:func:`hgraph.train.fused_negatives.nearest_non_ancestors`)."""
        self.near = near
        k = near.shape[1]
        self.near_keys = torch.sort((torch.arange(self.n).unsqueeze(1) * self.n + near).view(-1))[0]
        self.near_k = k

    def _move(self, rows: Tensor, h: Tensor, lr: float) -> None:
        """Sum the tangent vectors ``h`` per row and take each touched row's step."""
        cfg, x, t = self.cfg, self.x, self.tangent
        t.index_add_(0, rows, h)
        r = rows.unique()  # rows touched (sorted); each is moved once
        g = t.index_select(0, r)
        t.index_fill_(0, r, 0.0)
        xr = x.index_select(0, r)
        g = g + inner(xr, g).unsqueeze(1) * xr     # re-project: float error in the sum
        # |g|_L^2 = |g_s|^2 - g_0^2 cancels far from the origin (it went negative, then NaN);
        # with g_0 = <g_s, x_s> / x_0 (tangency) it is |g_s|^2 - <g_s, x_s>^2 / x_0^2, which is
        # >= |g_s|^2 / x_0^2 by Cauchy-Schwarz, so it is clamped there
        gs2 = (g[:, 1:] * g[:, 1:]).sum(1)
        x02 = xr[:, 0] * xr[:, 0]
        gx = (g[:, 1:] * xr[:, 1:]).sum(1)
        gn = torch.sqrt(torch.maximum(gs2 - gx * gx / x02, gs2 / x02)).unsqueeze(1)
        step = (lr * gn).clamp_max(cfg.max_step)
        direction = torch.where(gn > 0, g / gn.clamp_min(1e-300), torch.zeros_like(g))
        # exp_x(-step * direction)
        y = torch.cosh(step) * xr - torch.sinh(step) * direction
        x.index_copy_(0, r, project_rows(y, cfg.max_radius))

    def negatives(self, u: Tensor, v: Tensor, gen: torch.Generator):
        """Draw the candidates of the pairs ``(u[i], v[i])``.

        -> ``(cand (b, K+1), dropped (b, K), offset (b, K) or None)``: the positive
        first, then ``negatives`` draws; ``dropped`` marks u itself and u's ancestors
        (weight 0); ``offset`` is each negative's log importance weight when
        ``local_negatives`` > 0.  ``K - L`` draws are uniform over the ``m`` candidate
        nodes and ``L`` uniform among v's ``cnt(v)`` descendants, so node j is drawn
        ``(K - L) / m + L [j below v] / cnt(v)`` times on average against ``K / m`` for K
        uniform draws; weighting its term by the ratio makes the sampled normaliser
        estimate the same sum as uniform draws (tests/test_shallow_fit.py checks this).
        """
        cfg, n = self.cfg, self.n
        b, K = u.shape[0], cfg.negatives
        cand = torch.empty(b, K + 1, dtype=torch.long)
        cand[:, 0] = v
        if self.candidates is None:
            m = n
            cand[:, 1:] = torch.randint(n, (b, K), generator=gen)
        else:
            m = self.candidates.numel()
            cand[:, 1:] = self.candidates[torch.randint(m, (b, K), generator=gen)]
        offset = None
        if self.local:
            L = self.local
            cnt = self.desc_cnt[v].unsqueeze(1)
            off = (torch.rand(b, L, generator=gen, dtype=torch.float64) * cnt).long()
            cand[:, K + 1 - L:] = self.desc[self.desc_ptr[v].unsqueeze(1) + off.clamp_max_(cnt - 1)]
            below = _member(self.keys, cand[:, 1:] * n + v.unsqueeze(1)).to(torch.float64)
            offset = -torch.log(((K - L) + L * m * below / cnt) / K)
        if self.near_n and self.near is not None:
            L, k = self.near_n, self.near_k
            pick = torch.randint(k, (b, L), generator=gen)
            cand[:, K + 1 - L:] = self.near[u.unsqueeze(1), pick]
            if cfg.near_weighted:
                listed = _member(self.near_keys, u.unsqueeze(1) * n + cand[:, 1:])
                offset = -torch.log(((K - L) + L * m * listed.to(torch.float64) / k) / K)
        dropped = cand[:, 1:] == u.unsqueeze(1)      # u itself is never its own negative
        if self.keys is not None and cfg.filter_ancestors:
            dropped |= _member(self.keys, u.unsqueeze(1) * n + cand[:, 1:])
        return cand, dropped, offset

    def step(self, u: Tensor, v: Tensor, lr: float, gen: torch.Generator) -> float:
        """One step on the pairs ``(u[i], v[i])`` (negatives from :meth:`negatives`)."""
        x, b = self.x, u.shape[0]
        cand, dropped, offset = self.negatives(u, v, gen)
        xu = x.index_select(0, u)                                  # (b, D)
        xc = x.index_select(0, cand.view(-1)).view(b, cand.shape[1], -1)   # (b, K+1, D)
        loss, hu, hc = ranking_grads(xu, xc, dropped, offset, self.cfg.temperature,
                                     self.cfg.exact_distance)
        self._move(torch.cat([u, cand.view(-1)]), torch.cat([hu, hc.view(-1, x.shape[1])]), lr)
        return loss


def ranking_grads(xu: Tensor, xc: Tensor, dropped: Tensor, offset: Optional[Tensor] = None,
                  temperature: float = 1.0, exact: bool = True):
    """The ranking loss of ``b`` anchors and its Riemannian gradients, in closed form.

    ``xu``: (b, D) anchors; ``xc``: (b, K+1, D) candidates, the positive first;
    ``dropped``: (b, K) bool, negatives left out (u itself, u's ancestors); ``offset``:
    (b, K) added to the negatives' logits (log importance weights), or None; the
    logits are ``-d / temperature``.  ``exact``: distances by :func:`cosh_dist_minus_one`
    (no cancellation far from the origin), else from the Minkowski product.  Returns
    ``(loss summed over the b rows, hu (b, D), hc (b, K+1, D))``: tangent vectors at
    each anchor / candidate (their Minkowski product with that point is 0).
    """
    if exact:                                                          # a - 1, a = -<x_u, x_j>_L
        m = cosh_dist_minus_one(xu.unsqueeze(1), xc).clamp_(min=1e-15)
    else:
        m = (xc[..., :1] * xu[:, None, :1]).squeeze(2) - 1.0 - torch.bmm(
            xc[..., 1:], xu[:, 1:].unsqueeze(2)).squeeze(2)
        m.clamp_(min=1e-15)
    a = m + 1.0
    root = torch.sqrt(m * (m + 2.0))                                  # sqrt(a^2 - 1) = sinh d
    logits = torch.log1p(m + root).neg_()                              # -arcosh(a)
    if temperature != 1.0:
        logits /= temperature
    if offset is not None:                   # (b, K) log importance weights of the negatives
        logits[:, 1:] += offset.to(logits)
    logits[:, 1:].masked_fill_(dropped, -math.inf)
    logp = torch.log_softmax(logits, 1)
    loss = -float(logp[:, 0].sum())
    gd = logp.exp_().neg_()                  # dL/dd_j = 1[j = v] - softmax_j
    gd[:, 0] += 1.0
    if temperature != 1.0:
        gd /= temperature
    s = gd / root                                                    # dL/da
    # the term s_j a_j contributes -s_j x_j to u before projection, -s_j (x_j - a_j x_u)
    # after it (<x_u, x_j>_L = -a_j), and s_j (a_j x_j - x_u) to j
    hu = (s * a).sum(1, keepdim=True) * xu - torch.bmm(s.unsqueeze(1), xc).squeeze(1)
    hc = (xc * a.unsqueeze(2)).sub_(xu.unsqueeze(1)).mul_(s.unsqueeze(2))
    return loss, hu, hc
