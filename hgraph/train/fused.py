"""Fused reconstruction training of a shallow hyperboloid table: :func:`fit` on a
closure, and the pipeline's ``--trainer fused`` (:func:`fit_model`, :func:`check_fusable`).

The library's loop (:func:`hgraph.train.loop.train`) trains any encoder through
autograd; for a shallow table on the transitive closure one step is written out
in closed form instead (:mod:`hgraph.train.fused_step`: the ranking loss's
Riemannian gradients and exponential-map row steps on ``<x, x>_L = -1``, with the
maths in :mod:`hgraph.manifolds.lorentz`), with filtered and importance-weighted
negatives (:mod:`hgraph.train.fused_negatives`), optional Hogwild workers
(:mod:`hgraph.train.fused_workers`), hyperparameters in
:class:`hgraph.train.fused_config.FitConfig`, and the rate rules of
:mod:`hgraph.train.schedule` (burn-in, linear, :class:`~hgraph.train.schedule.Plateau`).

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

from hgraph.train.fused_config import FitConfig
from hgraph.train.fused_negatives import closure_keys, nearest_non_ancestors
from hgraph.train.fused_step import init_table
from hgraph.train.fused_workers import _Workers
from hgraph.train.schedule import Plateau, rate_at

Tensor = torch.Tensor


def lr_at(cfg: FitConfig, epoch: int) -> float:
    """The rate of 0-based ``epoch`` (the pipeline's rule,
    :func:`hgraph.train.schedule.rate_at`)."""
    return rate_at(cfg.lr, epoch, cfg.epochs, cfg.burnin, cfg.burnin_lr_divisor,
                   linear=cfg.schedule == "linear")


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
    drives :class:`hgraph.train.schedule.Plateau` (``schedule``, ``patience``); None: no
    score this epoch.
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
    :func:`hgraph.train.loop.train` would (same :class:`hgraph.train.pairs.TrainData`, same
    early stopping on ``validation_score``, checkpoints every
    ``checkpoint_every`` epochs, bit-exact resume with ``workers`` 1), with
    :class:`hgraph.train.fused_step.Stepper`'s closed-form steps.  Returns a
    :class:`hgraph.train.loop.TrainResult`.

    Negatives are filtered against ``data.sampler``'s forbidden pairs (the full
    relation: held-out positives are never trained as negatives).
    """
    from tqdm.auto import tqdm

    from hgraph.train.loop import TrainResult
    from hgraph.train.pairs import validation_score
    from hgraph.train.schedule import lr_at as train_lr_at
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
                from hgraph.train.interrupt import TrainingDiverged
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
