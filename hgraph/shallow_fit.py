"""Fused reconstruction training of a shallow hyperboloid table.

The library's loop (:func:`hgraph.train.train`) trains any encoder through
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
  at distance 0 held WordNet mammals at MAP 0.935 instead of 0.97): ``d(u, v) + log sum_j exp(-d(u, j))`` over
  ``j in {v, n_1..n_K}`` (:func:`hgraph.losses.ranking_loss`), summed over
  the batch, so the learning rate is per pair and survives a change of
  batch size; with ``temperature`` T the distances are divided by T (the
  preset's 0.25 keeps rows off the radius cap);
* ``d = arcosh(a)``, ``a = -<x, y>_L``, ``a - 1`` computed without the
  product's cancellation (:func:`cosh_dist_minus_one`); the Euclidean gradient of ``a`` in
  ``x`` is ``(y_0, -y_s)``, and the metric's inverse turns it into ``-y``: the
  Riemannian gradient of a pair term in ``x`` is ``-(dL/da) y`` projected on
  the tangent space ``h + <x, h>_L x``;
* every row's tangent gradients are summed (``index_add_``; the projection is
  linear, so projecting per occurrence and summing equals projecting the sum),
  the step is capped at ``max_step`` in hyperbolic distance (the root is in
  about one pair in nine of nouns, so its summed step would otherwise be
  ~100 pair steps at once) and taken with the exponential map, then the row
  is put back on the hyperboloid (time coordinate from the space part).

No autograd graph and no optimiser object: a step is ~25 tensor ops on
``batch x (K + 1)`` rows plus one ``unique`` of the touched rows (WordNet
nouns, batch 1,024, 50 negatives, one thread: ~17 ms a step, 12 s an epoch,
against 41 s an epoch of the loop at the same settings;
results/shallow_fast/README.md).  geoopt has the same maps
(``geoopt.Lorentz.expmap``, ``egrad2rgrad``; the tests check both against
them), but as generic methods that recompute Minkowski products the loss has
already formed; and its tangent norm ``sqrt(<v, v>_L)`` cancels far from the
origin, where the form used here (:meth:`Stepper._move`) does not.

``workers > 1`` runs lock-free updates from several processes on one shared
table (Hogwild, as poincare-embeddings does; gensim refuses more than one
worker).  Not bit-reproducible, so it is opt-in; ``workers=1`` is
deterministic for a seed.

The ranking this trains for is :func:`hgraph.eval.ranking.reconstruction` with
``positives = closure`` (row u = u's ancestors): descendants are non-positives,
so they are not filtered out of the negatives.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import scipy.sparse as sp
import torch

Tensor = torch.Tensor


@dataclass
class FitConfig:
    """Hyperparameters of :func:`fit` (every rate is per positive pair)."""
    dim: int = 10                 # intrinsic dimension (points have dim + 1 coordinates)
    negatives: int = 50
    batch_size: int = 1024
    lr: float = 0.5               # per pair
    epochs: int = 200
    burnin: int = 0               # epochs at lr / burnin_lr_divisor at the start
    burnin_lr_divisor: float = 10.0
    #: 'constant'; 'plateau': lr x 0.2 when on_epoch's score stalls; 'linear': after burn-in
    #: the rate falls linearly to lr / n over the n remaining epochs (a fixed budget)
    schedule: str = "constant"
    patience: int = 4             # scores without a new best before a drop (or the stop)
    drops: int = 3                # 'plateau': rate drops before a stall stops training
    max_step: float = 0.1         # cap on a row's move per step (hyperbolic distance)
    max_radius: float = 20.0      # rows are kept within this distance of the origin
    init: str = "uniform"         # 'uniform' (tangent U(-init_scale, init_scale) at the origin) or 'cone'
    init_scale: float = 1e-3
    init_radius: float = 8.0      # 'cone': deepest level's distance from the origin
    filter_ancestors: bool = True
    #: share of the negatives drawn among the positive's descendants (for a near ancestor:
    #: u's siblings, cousins and descendants, the nodes u's ancestors have to beat in the
    #: ranking) instead of uniformly; each negative's logit gets its importance weight,
    #: so the loss estimates the same objective as uniform draws, with less variance
    local_negatives: float = 0.0
    #: share of the negatives drawn among u's ``near_k`` nearest non-ancestors in the current
    #: table (recomputed every ``near_every`` epochs, counted as training time), importance-
    #: weighted as ``local_negatives``: the nodes that outrank u's ancestors are seldom among
    #: uniform draws (WordNet nouns: a node's ~750 draws an epoch out of 82k nodes)
    near_negatives: float = 0.0
    near_k: int = 64
    near_every: int = 10
    near_method: str = "auto"     # :func:`nearest_non_ancestors`
    #: False: no importance weights on the near draws, so the loss itself leans on the
    #: intruders (with K uniform negatives out of n nodes a node at u's ancestor's distance
    #: weighs K / n in the normaliser: ~1,600 of them on nouns double it)
    near_weighted: bool = True
    #: logits are -d / temperature: below 1 the loss is satisfied at proportionally smaller
    #: distances, so rows drift less far out (the loss always pays for spreading outward)
    temperature: float = 1.0
    #: distances without the Minkowski product's cancellation (:func:`cosh_dist_minus_one`)
    exact_distance: bool = True
    workers: int = 1
    seed: int = 0
    time_limit: float = 0.0       # seconds of training (0 = none)

    def __post_init__(self):
        for name in ("dim", "negatives", "batch_size", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.burnin_lr_divisor < 1:
            raise ValueError("burnin_lr_divisor must be >= 1 (burn-in runs at lr / this; "
                             f"poincare-embeddings' -burnin_multiplier 0.01 is 100), got "
                             f"{self.burnin_lr_divisor}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.near_negatives < 1.0:
            raise ValueError(f"near_negatives is a share in [0, 1), got {self.near_negatives}")
        if self.near_negatives and (self.local_negatives or self.workers > 1):
            raise ValueError("near_negatives runs with one worker and without local_negatives")
        if self.near_k < 1 or self.near_every < 1:
            raise ValueError("near_k and near_every must be >= 1")
        if not 0.0 <= self.local_negatives < 1.0:
            raise ValueError(f"local_negatives is a share in [0, 1), got {self.local_negatives}")
        if self.drops < 0:
            raise ValueError(f"drops must be >= 0, got {self.drops}")
        if self.schedule not in ("constant", "plateau", "linear"):
            raise ValueError(f"schedule must be 'constant', 'plateau' or 'linear', got "
                             f"{self.schedule!r}")
        if self.init not in ("uniform", "cone"):
            raise ValueError(f"init must be 'uniform' or 'cone', got {self.init!r}")


def project(x: Tensor, max_radius: float = 0.0) -> Tensor:
    """Rows (n, d+1) back onto ``<x, x>_L = -1``: time coordinate from the space part;
    with ``max_radius``, a row farther from the origin is pulled back to it radially."""
    sq = (x[:, 1:] * x[:, 1:]).sum(1)
    if max_radius:
        cap = math.sinh(max_radius)
        far = sq > cap * cap
        if bool(far.any()):
            x[far, 1:] *= (cap / sq[far].sqrt()).unsqueeze(1)
            sq = torch.where(far, torch.full_like(sq, cap * cap), sq)
    x[:, 0] = torch.sqrt(1.0 + sq)
    return x


def init_table(cfg: FitConfig, num_nodes: int, edges: Optional[np.ndarray] = None,
               dtype=torch.float64) -> Tensor:
    g = torch.Generator().manual_seed(cfg.seed)
    if cfg.init == "cone":
        if edges is None:
            raise ValueError("init='cone' needs the (child, parent) edges")
        from hgraph.manifolds.construct import cone
        x, _ = cone(edges, num_nodes, cfg.dim, curvature=1.0, lorentz=True, dtype=dtype,
                    radius=cfg.init_radius, seed=cfg.seed)
        return project(x.to(dtype).contiguous())
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
        """Each row's neighbour list (n, k) for ``near_negatives`` (:func:`nearest_non_ancestors`)."""
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
        g = g + _mink(xr, g).unsqueeze(1) * xr     # re-project: float error in the sum
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
        x.index_copy_(0, r, project(y, cfg.max_radius))

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


def nearest_non_ancestors(x: Tensor, keys: Tensor, k: int, method: str = "auto",
                          chunk: int = 256) -> Tensor:
    """(n, k): for every row of the hyperboloid table ``x``, ``k`` near rows that are
    neither itself nor among its closure pairs (``keys``: sorted ``u * n + w``).

    ``method`` ``"exact"``: the ``k`` nearest, ranked by the Minkowski product (its
    cancellation leaves ~1e-3 in ``cosh d`` at distance 15 from the origin, enough to pick
    neighbours); all pairs, so O(n^2): 207 s for WordNet nouns on one thread.
    ``"angle"``: faiss's HNSW graph over the rows' unit directions gives ``2k`` candidates
    by angle (a point far out is nearest to what lies in its direction), re-ranked by
    exact distance (:func:`cosh_dist_minus_one`): ~8 s for nouns (HNSW recall 0.99 against
    a flat search there).  An approximate list only changes which nodes are drawn more
    often: the importance weights keep the estimate of the uniform-draw loss unbiased.
    Rows with fewer than ``k`` valid candidates keep some self / ancestor entries, which
    the sampler drops like any other draw of them.  ``"auto"``: exact up to 20,000 rows.
    Deterministic with one thread (faiss's HNSW build is sequential then)."""
    n = x.shape[0]
    k = min(k, n - 1)
    extra = int(torch.bincount(keys // n, minlength=n).max()) + 1 if keys.numel() else 1
    if method == "auto":
        method = "exact" if n <= 20000 else "angle"
    if method not in ("exact", "angle"):
        raise ValueError(f"method must be 'exact', 'angle' or 'auto', got {method!r}")
    out = torch.empty(n, k, dtype=torch.long)
    if method == "exact":
        take = min(k + extra, n)
        xs, x0 = x[:, 1:], x[:, 0]
        for i in range(0, n, chunk):
            j = min(i + chunk, n)
            a = torch.outer(x0[i:j], x0) - xs[i:j] @ xs.T               # cosh d, (c, n)
            idx = torch.topk(a, take, dim=1, largest=False, sorted=True).indices
            rows = torch.arange(i, j).unsqueeze(1)
            bad = (idx == rows) | _member(keys, rows * n + idx)
            first = torch.argsort(bad.to(torch.int8), dim=1, stable=True)[:, :k]
            out[i:j] = idx.gather(1, first)
        return out
    import faiss
    pool = min(n, 2 * k + extra)
    e = torch.nn.functional.normalize(x[:, 1:].to(torch.float64), dim=1)
    e = np.ascontiguousarray(e.numpy().astype(np.float32))
    index = faiss.IndexHNSWFlat(e.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = max(128, pool)
    index.add(e)
    cand = torch.from_numpy(index.search(e, pool)[1]).long()
    rows_all = torch.arange(n).unsqueeze(1)
    cand = torch.where(cand < 0, rows_all, cand)                # missing -> self (invalid)
    step = max(1, (1 << 20) // pool)
    for i in range(0, n, step):
        j = min(i + step, n)
        c, rows = cand[i:j], rows_all[i:j]
        d = cosh_dist_minus_one(x[i:j].unsqueeze(1), x[c])
        d.masked_fill_((c == rows) | _member(keys, rows * n + c), math.inf)
        out[i:j] = c.gather(1, torch.argsort(d, dim=1, stable=True)[:, :k])
    return out


def _member(keys: Tensor, q: Tensor) -> Tensor:
    """Which of the keys ``q`` are in the sorted ``keys``."""
    pos = torch.searchsorted(keys, q).clamp_(max=keys.numel() - 1)
    return keys[pos] == q


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


def cosh_dist_minus_one(x: Tensor, y: Tensor) -> Tensor:
    """``cosh d(x, y) - 1`` for hyperboloid rows (broadcast over leading axes), without
    cancellation.

    ``-<x, y>_L - 1`` subtracts products of size ``cosh r_x cosh r_y``: at distance 19.5
    from the origin that is ~2e16, so float64 leaves an absolute error of a few units, and
    a parent-child pair out there (``cosh 1 - 1`` ≈ 0.54) gets a distance of noise.  With
    ``s = sinh r = |x_s|``, ``c = cosh r = x_0`` and unit directions ``e``,

        cosh d - 1 = (s_x - s_y)^2 (1 + cosh(r_x - r_y)) / (c_x + c_y)^2 + s_x s_y |e_x - e_y|^2 / 2

    (the radial part is ``cosh(r_x - r_y) - 1`` written as a square, the angular part
    ``s_x s_y (1 - cos θ)``): two non-negative terms, each as precise as the rows'
    float coordinates allow (tests: 1e-9 relative up to distance 10 from the origin; at
    19.5 the rounding of the directions leaves ~1e-5 relative in ``cosh d - 1`` for
    d = 1e-3, ~1e-8 absolute in d).
    """
    cx, cy = x[..., 0], y[..., 0]
    sx = torch.sqrt((cx - 1.0) * (cx + 1.0))      # = |x_s| for rows put back by project()
    sy = torch.sqrt((cy - 1.0) * (cy + 1.0))
    ex = x[..., 1:] * (1.0 / sx.clamp_min(1e-300)).unsqueeze(-1)
    ey = y[..., 1:] * (1.0 / sy.clamp_min(1e-300)).unsqueeze(-1)
    radial = (sx - sy) ** 2 * (1.0 + torch.cosh(torch.asinh(sx) - torch.asinh(sy))) / (cx + cy) ** 2
    return radial + 0.5 * sx * sy * (ex - ey).pow_(2).sum(-1)


def _mink(a: Tensor, b: Tensor) -> Tensor:
    """Minkowski product over the last axis."""
    return (a[..., 1:] * b[..., 1:]).sum(-1) - a[..., 0] * b[..., 0]


def lr_at(cfg: FitConfig, epoch: int) -> float:
    """The rate of 0-based ``epoch`` (the pipeline's rule, :func:`hgraph.train.rate_at`)."""
    from hgraph.train import rate_at
    return rate_at(cfg.lr, epoch, cfg.epochs, cfg.burnin, cfg.burnin_lr_divisor,
                   linear=cfg.schedule == "linear")


class Plateau:
    """Early stopping with learning-rate drops: after ``patience`` scores in a row
    without a new best, the rate is multiplied by :attr:`FACTOR` (at most ``drops``
    times); the next such stall stops training.  ``drops=0`` is plain early stopping,
    ``patience=0`` never stops."""
    FACTOR = 0.2
    DROPS = 3
    #: a score counts as progress for the patience only when it beats the best by this
    #: much (a new best by less is still kept): on the generated tree the sampled MAP rose
    #: by 1e-4 every few validations for 90 epochs (9 minutes) without this
    MIN_DELTA = 1e-3

    def __init__(self, patience: int, drops: int = DROPS, min_delta: float = MIN_DELTA):
        self.patience, self.drops_left, self.min_delta = patience, drops, min_delta
        self.best, self.ref, self.bad, self.scale = -math.inf, -math.inf, 0, 1.0

    def update(self, score: float):
        """-> (``score`` is a new best, training should stop)."""
        better = score > self.best
        if better:
            self.best = score
        if score > self.ref + self.min_delta or self.ref == -math.inf:
            self.ref, self.bad = score, 0
            return better, False
        self.bad += 1
        if not self.patience or self.bad < self.patience:
            return better, False
        if self.drops_left:
            self.drops_left -= 1
            self.scale *= self.FACTOR
            self.bad = 0
            return better, False
        return better, True


def _epoch(stepper: Stepper, order: Tensor, lr: float, gen: torch.Generator) -> float:
    pairs, bs = stepper.pairs, stepper.cfg.batch_size
    total = 0.0
    for i in range(0, order.numel(), bs):
        idx = order[i:i + bs]
        p = pairs.index_select(0, idx)
        total += stepper.step(p[:, 0], p[:, 1], lr, gen)
    return total


def _worker(rank: int, x: Tensor, pairs: Tensor, keys: Optional[Tensor], cfg: FitConfig,
            conn, candidates: Optional[Tensor] = None) -> None:
    torch.set_num_threads(1)
    stepper = Stepper(x, pairs, keys, cfg, candidates)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + rank + 1)
    while True:
        msg = conn.recv()
        if msg is None:
            return
        order, lr = msg
        conn.send(_epoch(stepper, order, lr, gen))


class _Workers:
    """Runs epochs in this process (``workers`` 1) or spread over ``workers`` forked
    processes that update the same shared-memory table (Hogwild)."""

    def __init__(self, x: Tensor, pairs: Tensor, keys: Optional[Tensor], cfg: FitConfig,
                 candidates: Optional[Tensor] = None):
        self.procs, self.conns, self.stepper = [], [], None
        if cfg.workers == 1:
            self.stepper = Stepper(x, pairs, keys, cfg, candidates)
            return
        import torch.multiprocessing as mp
        ctx = mp.get_context("fork")
        x.share_memory_()
        for rank in range(cfg.workers):
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(rank, x, pairs, keys, cfg, theirs, candidates),
                            daemon=True)
            p.start()
            self.procs.append(p)
            self.conns.append(mine)

    def epoch(self, order: Tensor, lr: float, gen: torch.Generator) -> float:
        """One pass over ``pairs[order]``; returns the summed loss."""
        if self.stepper is not None:
            return _epoch(self.stepper, order, lr, gen)
        for conn, part in zip(self.conns, order.chunk(len(self.conns))):
            conn.send((part, lr))
        return sum(conn.recv() for conn in self.conns)

    def close(self) -> None:
        for conn in self.conns:
            conn.send(None)
        for p in self.procs:
            p.join(timeout=10)


def closure_keys(closure: sp.spmatrix, n: int) -> Tensor:
    c = sp.coo_matrix(closure)
    return torch.from_numpy(np.sort(c.row.astype(np.int64) * n + c.col.astype(np.int64)))


@dataclass
class FitResult:
    x: Tensor                       # (N, d+1) hyperboloid points, float64
    history: List[Dict[str, float]] = field(default_factory=list)
    train_s: float = 0.0
    config: Dict = field(default_factory=dict)


def fit(closure: sp.spmatrix, cfg: FitConfig, edges: Optional[np.ndarray] = None,
        on_epoch: Optional[Callable[[int, Tensor, Dict], bool]] = None,
        x0: Optional[Tensor] = None) -> FitResult:
    """Train a hyperboloid table on the closure pairs (row u, col v = u's ancestor).

    ``on_epoch(epoch, x, record)`` runs after each epoch (its time is not counted
    as training) and may return a score (higher is better, e.g. a sampled MAP) that
    drives :class:`Plateau` (``schedule``, ``patience``); None: no score this epoch.
    """
    n = closure.shape[0]
    c = sp.coo_matrix(closure)
    pairs = torch.from_numpy(np.stack([c.row, c.col], 1).astype(np.int64))
    keys = closure_keys(closure, n) if cfg.filter_ancestors else None
    x = (x0.clone() if x0 is not None else init_table(cfg, n, edges)).to(torch.float64)
    x = x.contiguous()
    gen = torch.Generator().manual_seed(cfg.seed)
    res = FitResult(x=x, config=asdict(cfg))
    workers = _Workers(x, pairs, keys, cfg)
    plateau = Plateau(cfg.patience, cfg.drops if cfg.schedule == "plateau" else 0)
    train_s = 0.0
    try:
        for epoch in range(cfg.epochs):
            lr = lr_at(cfg, epoch) * plateau.scale
            t0 = time.perf_counter()
            if cfg.near_negatives and epoch % cfg.near_every == 0:
                if keys is None:
                    raise ValueError("near_negatives needs filter_ancestors")
                workers.stepper.set_near(nearest_non_ancestors(x, keys, cfg.near_k,
                                                               cfg.near_method))
            loss = workers.epoch(torch.randperm(pairs.shape[0], generator=gen), lr, gen)
            train_s += time.perf_counter() - t0
            rec = {"epoch": epoch + 1, "loss": loss / pairs.shape[0], "lr": lr,
                   "train_s": train_s}
            res.history.append(rec)
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at epoch {epoch + 1}")
            score = on_epoch(epoch + 1, x, rec) if on_epoch is not None else None
            stop = plateau.update(score)[1] if score is not None else False
            if stop or (cfg.time_limit and train_s >= cfg.time_limit):
                break
    finally:
        workers.close()
    res.train_s = train_s
    return res


# ----------------------------------------------------------------------------------------
# the pipeline's entry: ``--trainer fused`` (the shallow preset's)

def check_fusable(model, data, tcfg) -> None:
    """Raise :class:`hgraph.errors.HGraphInputError` unless ``--trainer fused`` applies:
    a shallow table on the hyperboloid, the ranking loss, no graph regulariser, one process."""
    from hgraph import manifolds as M
    from hgraph.errors import HGraphInputError
    from hgraph.nn.shallow import ShallowEncoder
    why = []
    if not isinstance(model, ShallowEncoder):
        why.append(f"--encoder shallow (got {type(model).__name__})")
    elif M.kind(model.manifold) != "lorentz" or abs(M.curvature_of(model.manifold) - 1.0) > 1e-12:
        why.append("--manifold lorentz --curvature 1")
    if tcfg.loss != "ranking":
        why.append(f"--loss ranking (got {tcfg.loss})")
    if data.regularizer is not None:
        why.append("--reg-lambda 0")
    if why:
        raise HGraphInputError("--trainer fused trains a shallow table on the hyperboloid with "
                               "the ranking loss; it needs " + ", ".join(why),
                               fix="pass those flags, or --trainer loop")


def fit_model(model, data, tcfg, *, seed: int, device=None, progress: bool = True,
              checkpoint: Optional[Callable[[int, Dict], None]] = None,
              resume: Optional[Dict] = None, dist=None):
    """Train a :class:`hgraph.nn.ShallowEncoder` on the hyperboloid in place, as
    :func:`hgraph.train.train` would (same :class:`hgraph.train.TrainData`, same
    early stopping on ``validation_score``, checkpoints every
    ``checkpoint_every`` epochs, bit-exact resume with ``workers`` 1), with
    :class:`Stepper`'s closed-form steps.  Returns a :class:`hgraph.train.TrainResult`.

    Negatives are filtered against ``data.sampler``'s forbidden pairs (the full
    relation: held-out positives are never trained as negatives).
    """
    from tqdm.auto import tqdm

    from hgraph.train import TrainResult, validation_score
    from hgraph.train import lr_at as train_lr_at
    check_fusable(model, data, tcfg)
    if dist is not None and dist.world_size > 1:
        raise RuntimeError("--trainer fused runs in one process (its --workers share one "
                           "table); under torchrun use --trainer loop")
    if tcfg.lr_unit != "pair":
        raise ValueError("--trainer fused takes --lr per positive pair (--lr-unit pair)")
    cfg = FitConfig(dim=model.dim, negatives=tcfg.negatives, batch_size=tcfg.batch_size,
                    lr=tcfg.lr, epochs=tcfg.epochs, burnin=tcfg.burnin,
                    burnin_lr_divisor=tcfg.burnin_lr_divisor, workers=tcfg.workers, seed=seed,
                    local_negatives=tcfg.local_negatives, temperature=tcfg.temperature,
                    near_negatives=tcfg.near_negatives, near_k=tcfg.near_k,
                    near_every=tcfg.near_every,
                    schedule="plateau" if tcfg.lr_schedule == "plateau" else "constant",
                    patience=tcfg.patience)
    pairs = torch.as_tensor(np.asarray(data.positives), dtype=torch.long)
    if pairs.shape[0] == 0:
        raise ValueError("no training positives (is every edge held out?)")
    keys = torch.from_numpy(np.asarray(data.sampler.keys, dtype=np.int64))
    cands = None if data.sampler.candidates is None else \
        torch.as_tensor(np.asarray(data.sampler.candidates), dtype=torch.long)
    if cfg.near_negatives and cands is not None:
        from hgraph.errors import HGraphInputError
        raise HGraphInputError("--near-negatives ranks every node as a neighbour; this run "
                               "holds nodes out of the candidates",
                               fix="--inductive-frac 0, or --near-negatives 0")
    w = model.weight
    x = w.detach().to("cpu", torch.float64).clone().contiguous()
    near = None
    gen = torch.Generator().manual_seed(seed)
    res, start, best_x = TrainResult(), 0, None
    plateau = Plateau(cfg.patience, Plateau.DROPS if cfg.schedule == "plateau" else 0)
    if resume is not None:
        st = resume["fused"]
        x.copy_(st["x"])
        gen.set_state(st["gen"])
        res, start, best_x, plateau = st["result"], int(resume["epoch"]), st["best_x"], \
            st["plateau"]
        near = st.get("near")

    def put(table: Tensor) -> None:
        with torch.no_grad():
            w.copy_(table.to(w))

    workers = _Workers(x, pairs, keys, cfg, cands)
    if near is not None:
        workers.stepper.set_near(near)
    bar = tqdm(total=cfg.epochs, initial=start, desc="fused", unit="epoch", disable=not progress)
    t_start = time.perf_counter() - res.train_time_s
    try:
        for epoch in range(start, cfg.epochs):
            lr = train_lr_at(tcfg, epoch) * plateau.scale
            if cfg.near_negatives and epoch % cfg.near_every == 0:
                t_near = time.perf_counter()
                near = nearest_non_ancestors(x, keys, cfg.near_k, cfg.near_method)
                workers.stepper.set_near(near)
                if progress:
                    bar.set_postfix_str(f"near lists {time.perf_counter() - t_near:.1f} s")
            loss = workers.epoch(torch.randperm(pairs.shape[0], generator=gen), lr, gen)
            if not math.isfinite(loss) or not bool(torch.isfinite(x).all()):
                from hgraph.train import TrainingDiverged
                raise TrainingDiverged(f"non-finite loss or table after epoch {epoch + 1}")
            res.train_time_s = time.perf_counter() - t_start
            rec = {"epoch": epoch, "loss": loss / pairs.shape[0], "lr": lr,
                   "time_s": res.train_time_s}
            res.epochs_run = epoch + 1
            last = epoch + 1 == cfg.epochs
            if data.validates() and ((epoch + 1) % tcfg.eval_every == 0 or last):
                t_val = time.perf_counter()
                put(x)
                val = validation_score(model, data)
                t_start += time.perf_counter() - t_val     # validation is not training time
                rec["val"] = val
                better, stop = plateau.update(val)
                if better:
                    res.best_val, res.best_epoch, best_x = val, epoch, x.clone()
                if stop:
                    res.stopped_early = True
                    res.stop_reason = (f"no new best {tcfg.val_metric} in {plateau.bad} "
                                       f"validations (patience {tcfg.patience})"
                                       + (" at the lowest rate" if cfg.schedule == "plateau"
                                          else ""))
                    rec["stopped_early"] = True
            res.history.append(rec)
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", **({"val": f"{rec['val']:.4f}"}
                                                         if "val" in rec else {}))
            if checkpoint is not None and (res.stopped_early or last or (
                    tcfg.checkpoint_every and (epoch + 1) % tcfg.checkpoint_every == 0)):
                checkpoint(epoch + 1, {"fused": {"x": x.clone(), "gen": gen.get_state(),
                                                 "result": res, "best_x": best_x,
                                                 "plateau": plateau, "near": near}})
            if res.stopped_early:
                break
    finally:
        bar.close()
        workers.close()
    put(best_x if best_x is not None else x)
    if best_x is None:
        res.best_epoch = res.epochs_run - 1
    return res
