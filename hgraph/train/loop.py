"""The training loop, shared by every encoder and task.

One step: a batch of positive pairs ``(u, v)`` (u the anchor — a child or
descendant — and v its parent or ancestor), ``K`` filtered negatives per
anchor, the unique nodes among them embedded once by an :class:`Embedder`,
the loss from :data:`hgraph.losses.LOSSES`, plus an optional graph
regulariser (RAMEN-style), one step of geoopt's Riemannian optimiser.

Embedders decide how node ids become points, which is the only place the
encoders differ during training:

* :class:`DirectEmbedder` — ``encoder(x[ids], None, ids)`` (shallow, ramen);
* :class:`FullGraphEmbedder` — one full-graph forward per step, then index
  (hgcn, graphs that fit);
* :class:`SampledEmbedder` — a torch-geometric ``NeighborLoader`` subgraph
  around the step's nodes (hgcn mini-batch; fanouts per layer).

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
from hgraph.data.pairs import NegativeSampler
from hgraph.losses import LOSSES, GraphRegularizer, lambda_at
from hgraph.train.interrupt import StopOnSignal, TrainingDiverged, TrainingInterrupted
from hgraph.train.optimizers import (_grads_finite, _state_finite, load_optimizer_state,
                                     make_optimizer)
from hgraph.train.schedule import _set_lr, lr_at

Tensor = torch.Tensor


# ------------------------------------------------------------------ data
@dataclass
class TrainData:
    """Everything the loop needs, already leak-free.

    ``positives``: (P, 2) int64 rows (anchor, positive); ``sampler`` draws
    negatives for anchors; ``val_pos``/``val_neg``: (V, 2) pairs scored for
    model selection (may be None); ``regularizer``: an optional
    :class:`hgraph.losses.GraphRegularizer`, weighted by ``reg_lambda``
    after a linear warm-up of ``reg_warmup`` epochs (:func:`hgraph.losses.lambda_at`).
    """
    num_nodes: int
    positives: np.ndarray
    sampler: NegativeSampler
    embedder: Callable[[Any, Tensor], Tensor]
    embed_all: Callable[[Any], Tensor]
    val_pos: Optional[np.ndarray] = None
    val_neg: Optional[np.ndarray] = None
    regularizer: Optional[GraphRegularizer] = None
    reg_lambda: float = 0.0
    reg_warmup: int = 0
    #: "ap" or "mrr" (parent MRR of ``val_pos`` among ``val_candidates``, true
    #: parents in ``val_filter`` (N, N) sparse left out of the ranking)
    val_metric: str = "ap"
    val_filter: Any = None
    val_candidates: Optional[np.ndarray] = None
    #: (N, N) sparse training closure, ranked by ``val_metric`` "recon" (reconstruction
    #: MAP on a fixed sample of :data:`VAL_RECON_SOURCES` sources; no validation edges needed)
    train_closure: Any = None

    def validates(self) -> bool:
        """Whether :func:`validation_score` has something to score."""
        if self.val_metric == "recon":
            return self.train_closure is not None
        return self.val_pos is not None and len(self.val_pos) > 0


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



#: subset): each costs a distance to every candidate node
VAL_MRR_QUERIES = 2000
#: validation on the training closure ("recon") ranks the ancestors of at most this many
#: source nodes (a fixed, seeded sample: the same sources at every validation)
VAL_RECON_SOURCES = 2000


def validation_score(model, data: TrainData) -> Optional[float]:
    """``data.val_metric`` of the validation pairs: average precision against
    their negatives ("ap"), or the MRR of each pair's parent among the
    candidate nodes ("mrr"; on a fixed subset of :data:`VAL_MRR_QUERIES` pairs);
    or ("recon") the reconstruction MAP of the training closure
    ``data.train_closure`` over the candidate nodes, on a fixed sample of
    :data:`VAL_RECON_SOURCES` sources (exact when there are fewer)."""
    if not data.validates():
        return None
    from hgraph.eval.link import link_prediction, parent_ranking
    model.eval()
    with torch.no_grad():
        z = data.embed_all(model)
    model.train()
    if data.val_metric == "recon":
        from hgraph.eval.ranking import reconstruction
        return float(reconstruction(model.manifold, z, data.train_closure,
                                    sample=VAL_RECON_SOURCES, seed=0,
                                    candidates=data.val_candidates)["map"])
    if data.val_metric == "mrr":
        q = np.asarray(data.val_pos)
        if len(q) > VAL_MRR_QUERIES:
            q = q[np.sort(np.random.default_rng(0).choice(len(q), VAL_MRR_QUERIES, replace=False))]
        return float(parent_ranking(model.manifold, z, q, data.val_filter,
                                    candidates=data.val_candidates)["mrr"])
    return float(link_prediction(model.manifold, z, torch.as_tensor(data.val_pos),
                                 torch.as_tensor(data.val_neg))["ap"])


def train(model, data: TrainData, cfg, *, device: torch.device, seed: int,
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


def _train(model, data: TrainData, cfg, *, device, seed, progress, on_epoch, checkpoint,
           resume, stop: StopOnSignal, dist: D.Context) -> TrainResult:
    from tqdm.auto import tqdm

    loss_fn = LOSSES[cfg.loss]
    rng = np.random.default_rng(seed)
    res = TrainResult()
    opt = make_optimizer(model, cfg, cfg.lr)
    start_epoch = 0
    best_state = None
    position: Dict[str, Any] = {}
    # early stopping on the training loss: best epoch loss after burn-in, epochs without progress
    early = {"best_loss": math.inf, "bad_epochs": 0}
    if resume is not None:
        model.load_state_dict(resume["model"])
        load_optimizer_state(opt, resume["optimizer"])
        rng.bit_generator.state = resume["rng"]
        ranks = resume.get("torch_rng_ranks", ())      # this rank's, at the same world size
        torch.set_rng_state(ranks[dist.rank] if len(ranks) == dist.world_size
                            else resume["torch_rng"])
        res = resume["result"]
        best_state = resume.get("best_state")
        start_epoch = int(resume["epoch"])
        early.update(resume.get("early_stop", {}))
        if "perm" in resume:          # interrupted inside an epoch
            position = resume
    net = dist.wrap(model, device)       # DDP over the dense parameters under torchrun
    sparse = model.sparse_parameters()
    pos = data.positives
    n_pos = len(pos)
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

    model.train()
    end_epoch = res.epochs_run if res.stopped_early else cfg.epochs   # stopped: nothing left
    bar = tqdm(range(start_epoch, end_epoch), desc="train", unit="epoch", dynamic_ncols=True,
               disable=not progress or not dist.is_main)
    for epoch in bar:
        _set_lr(opt, lr_at(cfg, epoch))
        if position and epoch == start_epoch:
            perm, first = position["perm"], int(position["step"])
            total, reg_total, count = position["partial"]
            bad_in_row, last_good = position["bad_in_row"], position["last_good"]
        else:
            perm, first = rng.permutation(n_pos), 0
            total, count = 0.0, 0
            reg_total = 0.0
        for s in range(first, steps):
            if stopping():                   # the previous step is done: stop here
                interrupt(epoch, step=s, perm=perm, partial=(total, reg_total, count),
                          bad_in_row=bad_in_row, last_good=last_good)
            b = pos[perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]]
            u, v = b[:, 0], b[:, 1]
            neg, mask = data.sampler.sample(u, cfg.negatives, rng)
            reg_samples = None
            lam = 0.0
            if data.regularizer is not None:
                lam = lambda_at(epoch, data.reg_lambda, data.reg_warmup)
                if lam > 0:
                    reg_samples = data.regularizer.sample(u, rng)
            # this rank's slice of the global batch (all of it in one process)
            sh = dist.shard(len(u))
            B = len(u)
            u, v, neg, mask = u[sh.rows], v[sh.rows], neg[sh.rows], mask[sh.rows]
            reg_samples, reg_w = dist.shard_samples(reg_samples)
            parts = [u, v, neg.ravel()]
            if reg_samples is not None:
                parts.append(data.regularizer.nodes(reg_samples))
            ids_np, inv = np.unique(np.concatenate(parts), return_inverse=True)
            ids = torch.from_numpy(ids_np).to(device)
            if data.embedder.hides_pairs:      # the global batch's pairs, on every rank
                z = data.embedder(net, ids, pairs=(torch.from_numpy(b[:, 0]).to(device),
                                                    torch.from_numpy(b[:, 1]).to(device)))
            else:
                z = data.embedder(net, ids)
            n = len(u)
            iu = torch.from_numpy(inv[:n]).to(device)
            iv = torch.from_numpy(inv[n:2 * n]).to(device)
            ineg = torch.from_numpy(inv[2 * n:2 * n + neg.size].reshape(neg.shape)).to(device)
            # weight W * n / B: the ranks' mean gradient is the global batch's
            loss = sh.weight * loss_fn(model.manifold, z[iu], z[iv], z[ineg],
                                       torch.from_numpy(mask).to(device))
            reg_val = 0.0
            if reg_samples is not None:
                def local(g, _ids=ids_np):  # global ids -> rows of z
                    return torch.from_numpy(np.searchsorted(_ids, g)).to(device)
                reg_losses = data.regularizer.loss(model.manifold, z, local, reg_samples)
                reg = sum(reg_w[k] * r for k, r in reg_losses.items())
                reg_val = float(reg.detach())
                loss = loss + lam * reg
            # lr_unit pair: the sum over the step's pairs, so lr is a rate per pair
            objective = loss * B if cfg.lr_unit == "pair" else loss
            opt.zero_grad(set_to_none=True)
            # every rank skips the same steps; loss and reg become the global batch's
            bad, loss_val, reg_val, signum = dist.step_values(
                not bool(torch.isfinite(objective)), loss, reg_val, stop.signum, stop.SIGNALS)
            pending[0] = pending[0] or signum
            if not bad:
                objective.backward()
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
        rec: Dict[str, float] = {"epoch": epoch + 1, "loss": total / max(count, 1),
                                 "lr": opt.param_groups[0]["lr"],
                                 "time_s": time.perf_counter() - t_start}
        if data.regularizer is not None:
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
            score = dist.from_main(validation_score, model, data)    # rank 0 validates
            rec["val_" + data.val_metric] = score
            if score is not None and not (score <= res.best_val):  # NaN-safe: first wins
                res.best_val, res.best_epoch = score, epoch + 1
                best_state = copy.deepcopy(model.state_dict())
        if reason is None and cfg.patience and res.best_epoch > 0 and \
                (epoch + 1 - res.best_epoch) >= cfg.patience * cfg.eval_every:
            reason = (f"validation {data.val_metric.upper()} not above its best "
                      f"(epoch {res.best_epoch}) for "
                      f"{epoch + 1 - res.best_epoch} epochs")
        reason = dist.broadcast(reason)         # rank 0's decision binds every rank
        if reason is not None and not last:     # stop here: this epoch is the last
            res.stopped_early, res.stop_reason = True, f"after epoch {epoch + 1}: {reason}"
            rec["stopped_early"] = True
            last = True
        res.history.append(rec)
        res.epochs_run = epoch + 1
        res.train_time_s = time.perf_counter() - t_start
        bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v)
                         for k, v in rec.items() if k in ("loss", "val_ap", "val_mrr", "reg")})
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
    else:
        res.best_epoch = res.epochs_run
    res.train_time_s = time.perf_counter() - t_start
    return res
