"""Learning-rate schedules of the loop: burn-in, constant, linear decay."""
from __future__ import annotations


def lr_at(cfg, epoch: int) -> float:
    """The learning rate of 0-based ``epoch``: ``lr / burnin_lr_divisor`` during burn-in,
    then ``lr`` (``lr_schedule`` constant) or ``lr * (n - e) / n`` for the e-th
    of the n epochs after burn-in (linear: the last epoch runs at lr / n).  ``plateau``
    (the fused trainer's) is ``lr`` here; :class:`hgraph.shallow_fit.Plateau` scales it.

    With ``lr_unit`` pair the rate applies to each positive pair (the loop
    sums the step's loss over its pairs), with batch to the step's mean."""
    return rate_at(cfg.lr, epoch, cfg.epochs, cfg.burnin, cfg.burnin_lr_divisor,
                   linear=cfg.lr_schedule == "linear")


def rate_at(lr: float, epoch: int, epochs: int, burnin: int, burnin_lr_divisor: float,
            linear: bool) -> float:
    """The rule of :func:`lr_at` on plain numbers (also the fused trainer's
    :func:`hgraph.shallow_fit.lr_at`)."""
    if epoch < burnin:
        return lr / burnin_lr_divisor
    if linear:
        n = max(epochs - burnin, 1)
        return lr * max(n - (epoch - burnin), 1) / n
    return lr


def _set_lr(opt, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr

