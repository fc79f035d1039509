"""Learning-rate schedules of both trainers: burn-in, constant, linear decay (:func:`lr_at`,
:func:`rate_at`), and the plateau rule (:class:`Plateau`: rate drops, then early stopping)."""
from __future__ import annotations

import math


def lr_at(cfg, epoch: int) -> float:
    """The learning rate of 0-based ``epoch``: ``lr / burnin_lr_divisor`` during burn-in,
    then ``lr`` (``lr_schedule`` constant) or ``lr * (n - e) / n`` for the e-th
    of the n epochs after burn-in (linear: the last epoch runs at lr / n).  ``plateau``
    (the fused trainer's) is ``lr`` here; :class:`Plateau` scales it.

    With ``lr_unit`` pair the rate applies to each positive pair (the loop
    sums the step's loss over its pairs), with batch to the step's mean."""
    return rate_at(cfg.lr, epoch, cfg.epochs, cfg.burnin, cfg.burnin_lr_divisor,
                   linear=cfg.lr_schedule == "linear")


def rate_at(lr: float, epoch: int, epochs: int, burnin: int, burnin_lr_divisor: float,
            linear: bool) -> float:
    """The rule of :func:`lr_at` on plain numbers (also the fused trainer's
    :func:`hgraph.train.fused.lr_at`)."""
    if epoch < burnin:
        return lr / burnin_lr_divisor
    if linear:
        n = max(epochs - burnin, 1)
        return lr * max(n - (epoch - burnin), 1) / n
    return lr


def _set_lr(opt, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


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
