"""The training loop, shared by every encoder and every task.

A task hands the loop a :class:`~hgraph.train.batches.Batches` (node tasks:
:class:`~hgraph.train.pairs.TrainData`, positive pairs and negatives; items:
:class:`hgraph.tasks.item_batches.ItemBatches`): the number of examples an
epoch permutes, the loss of one step, validation.  The loop owns epochs,
the optimiser step, model selection, early stopping, the time cap,
checkpoints, resume and signals.

Guards: a non-finite loss or gradient skips the step and is counted; after
``max_bad_steps`` in a row training stops with :class:`TrainingDiverged`,
after restoring the last good state.

Interruption: while :func:`train` runs (in the main thread), SIGINT and
SIGTERM only set a flag; the current step finishes, a checkpoint is written
(the periodic format plus the position inside the epoch) and
:class:`TrainingInterrupted` is raised.  A second signal stops at once,
without a checkpoint.  The previous handlers are restored on return.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

from hgraph import distributed as D
from hgraph import manifolds as M
from hgraph.train.batches import Batches
from hgraph.train.interrupt import StopOnSignal, TrainingDiverged, TrainingInterrupted
from hgraph.train.optimizers import _grads_finite, _state_finite, load_optimizer_state
from hgraph.train.pairs import (VAL_MRR_QUERIES, VAL_RECON_SOURCES, TrainData,  # noqa: F401
                                validation_score)
from hgraph.train.schedule import Plateau, _set_lr, lr_at

Tensor = torch.Tensor


@dataclass
class TrainResult:
    """``stopped_early``: training ended before ``epochs`` by early stopping
    (``patience`` on validation AP, or ``loss_patience`` on the training
    loss); ``stop_reason`` says which, in words (None when it ran to the end).
    The last history record of an early stop holds ``stopped_early: True``."""
    history: List[Dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = float("nan")
    bad_steps: int = 0
    train_time_s: float = 0.0
    epochs_run: int = 0
    stopped_early: bool = False
    stop_reason: Optional[str] = None


def train(model, data: Batches, cfg, *, device: torch.device, seed: int,
          progress: bool = True, on_epoch: Optional[Callable[[int, Dict], None]] = None,
          checkpoint: Optional[Callable[[int, Dict], None]] = None,
          resume: Optional[Dict[str, Any]] = None,
          dist: Optional[D.Context] = None) -> TrainResult:
    """Train ``model`` in place; returns the history and the chosen epoch.

    ``cfg`` is a :class:`hgraph.config.TrainConfig`.  The model with the best
    validation AP (if there are validation pairs) is restored at the end.
    ``checkpoint(epoch, state)`` is called every ``cfg.checkpoint_every``
    epochs with a dict holding model, optimiser, RNG states (numpy sampler and
    torch), the result so far and the best-validation weights.  Passing that
    dict back as ``resume`` continues exactly where it stopped: same batches,
    same negatives, same final metrics as an uninterrupted run (CPU).

    On SIGINT/SIGTERM the current step finishes, ``checkpoint`` is called
    once more (``epoch`` = epochs completed; inside an epoch the state also
    holds ``step``, ``perm``, ``partial``, ``bad_in_row`` and ``last_good``,
    which ``resume`` understands) and :class:`TrainingInterrupted` is raised.

    Early stopping on the training loss (``cfg.loss_patience`` > 0): burn-in
    epochs are not counted; after them an epoch whose loss is below
    ``(1 - loss_min_delta)`` x the best epoch loss so far is progress, and
    ``loss_patience`` epochs in a row without progress end training.  The
    counters are part of the checkpoint (``early_stop``), and a run that
    stopped early (``result.stopped_early``) resumes to no further epochs.
    An early stop ends training as its last epoch would: validation runs and
    the final checkpoint is written.

    ``dist`` (default: :func:`hgraph.distributed.current`, one process without
    torchrun): under torchrun every rank draws the same global batch and
    trains on its slice (:mod:`hgraph.distributed`); the result equals one
    process's up to the order of floating-point sums.  Every rank must call
    ``train`` with the same arguments; ``checkpoint`` is called on every rank
    (it gathers the ranks' torch RNG states) and should write on rank 0 only.
    """
    # same bits whatever the process ran before: a resumed run equals an uninterrupted one
    with StopOnSignal() as stop, M.reproducible_execution():
        return _train(model, data, cfg, device=device, seed=seed, progress=progress,
                      on_epoch=on_epoch, checkpoint=checkpoint, resume=resume, stop=stop,
                      dist=D.current() if dist is None else dist)


def _train(model, data: Batches, cfg, *, device, seed, progress, on_epoch, checkpoint,
           resume, stop: StopOnSignal, dist: D.Context) -> TrainResult:
    from tqdm.auto import tqdm

    if dist.active and not data.distributed:
        raise ValueError(f"{type(data).__name__} does not train under torchrun")
    rng = np.random.default_rng(data.rng_seed(seed))
    res = TrainResult()
    opt = data.optimizer(model, cfg)
    base_lrs = [g["lr"] for g in opt.param_groups]
    start_epoch = 0
    best_state, best_extra = None, None
    position: Dict[str, Any] = {}
    # early stopping on the training loss: best epoch loss after burn-in, epochs without progress
    early = {"best_loss": math.inf, "bad_epochs": 0}
    # lr_schedule plateau: the fused trainer's rule (rate / 5 after `patience` validations
    # without progress, three times; the next stall stops), one rule for both trainers
    plateau = Plateau(cfg.patience) if cfg.lr_schedule == "plateau" else None
    if resume is not None:
        model.load_state_dict(resume["model"])
        load_optimizer_state(opt, resume["optimizer"])
        rng.bit_generator.state = resume["rng"]
        ranks = resume.get("torch_rng_ranks", ())      # this rank's, at the same world size
        torch.set_rng_state(ranks[dist.rank] if len(ranks) == dist.world_size
                            else resume["torch_rng"])
        res = resume["result"]
        best_state = resume.get("best_state")
        best_extra = resume.get("best_extra")
        if "task_model" in resume:          # task state that lives beside the weights
            data.restore(model, resume["task_model"])
        start_epoch = int(resume["epoch"])
        early.update(resume.get("early_stop", {}))
        plateau = resume.get("plateau", plateau)
        if "perm" in resume:          # interrupted inside an epoch
            position = resume
            data.load_state(resume.get("task", {}))
    net = dist.wrap(model, device)       # DDP over the dense parameters under torchrun
    sparse = model.sparse_parameters()
    n_pos = data.num_examples()
    if n_pos == 0:
        raise ValueError("no training positives (is every edge held out?)")
    steps = math.ceil(n_pos / cfg.batch_size)
    bad_in_row = 0
    last_good = copy.deepcopy(model.state_dict())
    t_start = time.perf_counter() - res.train_time_s

    def state() -> Dict[str, Any]:
        out = {"model": model.state_dict(), "optimizer": opt.state_dict(),
               "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
               "result": res, "best_state": best_state, "early_stop": dict(early)}
        if plateau is not None:
            out["plateau"] = plateau
        extra = data.snapshot(model)
        if extra is not None:
            out.update(best_extra=best_extra, task_model=extra)
        if dist.active:
            out.update(world_size=dist.world_size,
                       torch_rng_ranks=dist.all_gather(torch.get_rng_state()))
        return out

    pending: List[Optional[int]] = [None]     # under torchrun: a signal every rank knows of

    def stopping(agree: bool = False) -> bool:
        """A signal received: in one process, now; under torchrun, on any rank, known
        to every rank at the same point (the last step's all-reduce, or ``agree``)."""
        if not dist.active:
            return stop.signum is not None
        if agree:
            pending[0] = pending[0] or dist.agree_signal(stop.signum)
        if pending[0] is not None and stop.signum is None:
            stop.signum = pending[0]
        return pending[0] is not None

    def interrupt(epochs_done: int, written: bool = False, **where) -> None:
        res.train_time_s = time.perf_counter() - t_start
        if checkpoint is not None and not written:
            checkpoint(epochs_done, {**state(), **where})
            written = True
        raise TrainingInterrupted(stop.signum, epochs_done, where.get("step", 0), written)

    def keep(score: Optional[float], epoch_done: int) -> None:
        """Model selection: the first best validation score wins (NaN-safe), except
        over the untrained start (epoch 0), which any trained epoch as good replaces."""
        nonlocal best_state, best_extra
        # a trained epoch that ties the untrained start (saturated validation) replaces it
        if score is not None and (not (score <= res.best_val)
                                  or (res.best_epoch == 0 and score == res.best_val)):
            res.best_val, res.best_epoch = score, epoch_done
            best_state = copy.deepcopy(model.state_dict())
            best_extra = data.snapshot(model)

    model.train()
    if data.validates() and data.validate_at_start and start_epoch == 0 and not res.history:
        score = dist.from_main(data.validate, model)        # the untrained model: epoch 0
        res.history.append({"epoch": 0, "loss": float("nan"), "time_s": 0.0,
                            "val_" + data.val_name: score, **data.epoch_stats(model)})
        keep(score, 0)
    end_epoch = res.epochs_run if res.stopped_early else cfg.epochs   # stopped: nothing left
    bar = tqdm(range(start_epoch, end_epoch), desc="train", unit="epoch", dynamic_ncols=True,
               disable=not progress or not dist.is_main)
    for epoch in bar:
        lr = lr_at(cfg, epoch) * (1.0 if plateau is None else plateau.scale)
        if data.scheduled:
            _set_lr(opt, lr)
        else:       # each group its own rate, times the schedule's factor
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base if lr == cfg.lr else base * lr / cfg.lr
        if position and epoch == start_epoch:
            perm, first = position["perm"], int(position["step"])
            total, reg_total, count = position["partial"]
            bad_in_row, last_good = position["bad_in_row"], position["last_good"]
        else:
            perm, first = rng.permutation(n_pos), 0
            total, count = 0.0, 0
            reg_total = 0.0
            data.begin_epoch(model, epoch)
        for s in range(first, steps):
            if stopping():                   # the previous step is done: stop here
                interrupt(epoch, step=s, perm=perm, partial=(total, reg_total, count),
                          bad_in_row=bad_in_row, last_good=last_good, task=data.state())
            rows = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            out = data.loss(model, net, rows, rng, epoch, cfg, dist, device)
            B = out.n
            opt.zero_grad(set_to_none=True)
            # every rank skips the same steps; loss and reg become the global batch's
            bad, loss_val, reg_val, signum = dist.step_values(
                not bool(torch.isfinite(out.objective)), out.loss, out.reg, stop.signum,
                stop.SIGNALS)
            pending[0] = pending[0] or signum
            if not bad:
                out.objective.backward()
                dist.sync_sparse(sparse)
                bad = not _grads_finite(model)
            if bad:
                res.bad_steps += 1
                bad_in_row += 1
                opt.zero_grad(set_to_none=True)
                if bad_in_row >= cfg.max_bad_steps:
                    model.load_state_dict(last_good)
                    raise TrainingDiverged(
                        f"{bad_in_row} non-finite steps in a row at epoch {epoch + 1}; "
                        f"restored the last good parameters (try a lower --lr or float64)")
                continue
            opt.step()
            bad_in_row = 0
            total += loss_val * B
            reg_total += reg_val * B
            count += B
        if not _state_finite(model):       # a finite step can still overflow the update
            model.load_state_dict(last_good)
            raise TrainingDiverged(
                f"non-finite parameters after epoch {epoch + 1}; restored the last good "
                f"parameters (try a lower --lr or float64)")
        if count:
            last_good = copy.deepcopy(model.state_dict())   # what checkpoints hold: finite
        data.end_epoch(model)
        rec: Dict[str, float] = {"epoch": epoch + 1, "loss": total / max(count, 1),
                                 "lr": opt.param_groups[0]["lr"],
                                 "time_s": time.perf_counter() - t_start,
                                 **data.epoch_stats(model)}
        if data.has_reg:
            rec["reg"] = reg_total / max(count, 1)
        if M.kind(model.manifold) != "euclidean":
            rec["curvature"] = M.curvature_of(model.manifold)
        last = epoch + 1 == cfg.epochs
        reason = None
        if cfg.loss_patience and epoch >= cfg.burnin:
            if count and rec["loss"] < (1.0 - cfg.loss_min_delta) * early["best_loss"]:
                early["best_loss"], early["bad_epochs"] = rec["loss"], 0
            else:
                early["bad_epochs"] += 1
            if early["bad_epochs"] >= cfg.loss_patience:
                reason = (f"training loss not below (1 - {cfg.loss_min_delta:g}) x its best "
                          f"{early['best_loss']:.6g} for {early['bad_epochs']} epochs")
        if data.validates() and ((epoch + 1) % cfg.eval_every == 0 or last or reason):
            score = dist.from_main(data.validate, model)    # rank 0 validates
            rec["val_" + data.val_name] = score
            keep(score, epoch + 1)
            if plateau is not None and score is not None and plateau.update(score)[1] \
                    and reason is None:
                reason = (f"no new best validation {data.val_name.upper()} in {plateau.bad} "
                          f"validations at the lowest rate")
        if reason is None and cfg.patience and plateau is None and res.best_epoch >= 0 and \
                (epoch + 1 - res.best_epoch) >= cfg.patience * cfg.eval_every:
            reason = (f"validation {data.val_name.upper()} not above its best "
                      f"(epoch {res.best_epoch}) for "
                      f"{epoch + 1 - res.best_epoch} epochs")
        if reason is None and cfg.time_cap_s and rec["time_s"] >= cfg.time_cap_s:
            reason = f"time cap: {rec['time_s']:.0f} s of training >= {cfg.time_cap_s:g} s"
        reason = dist.broadcast(reason)         # rank 0's decision binds every rank
        if reason is not None and not last:     # stop here: this epoch is the last
            res.stopped_early, res.stop_reason = True, f"after epoch {epoch + 1}: {reason}"
            rec["stopped_early"] = True
            last = True
        res.history.append(rec)
        res.epochs_run = epoch + 1
        res.train_time_s = time.perf_counter() - t_start
        bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v)
                         for k, v in rec.items() if k in ("loss", "reg")
                         or k == "val_" + data.val_name})
        if on_epoch is not None:
            on_epoch(epoch, rec)
        written = False
        if checkpoint is not None and cfg.checkpoint_every and \
                ((epoch + 1) % cfg.checkpoint_every == 0 or last):
            checkpoint(epoch + 1, state())
            written = True
        if stopping(agree=True):
            interrupt(epoch + 1, written)
        if res.stopped_early:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
        if best_extra is not None:
            data.restore(model, best_extra)
    else:
        res.best_epoch = res.epochs_run
    res.train_time_s = time.perf_counter() - t_start
    return res
