"""The pipeline: ``run(cfg) -> RunResult``, a short chain of named steps, for every task.

Nodes: data (:data:`~hgraph.data.datasets.DATASETS`) -> leak-free splits -> per seed: encoder
(:data:`~hgraph.nn.ENCODERS`) trained by :func:`hgraph.train.train` (``--trainer fused``:
:func:`hgraph.train.fused.fit_model`), evaluated -> ``results/<run_id>/`` + summary rows.
Items (``task: items``): :func:`hgraph.tasks.items.run`.  Seeds are set in :func:`run`,
never at import; input is validated before anything is written.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from hgraph import distributed as D
from hgraph import manifolds as M
from hgraph import results as R
from hgraph.config import RunConfig
from hgraph.data.datasets import load_dataset
from hgraph.data.graph import to_pyg
from hgraph.data.pairs import NegativeSampler
from hgraph.data.splits import Splits, make_splits
from hgraph.data.taxonomy import Taxonomy, csr_pairs
from hgraph.errors import HGraphInputError
from hgraph.eval.link import sample_lp_negatives
from hgraph.eval.suite import SUMMARY_METRICS, evaluate, inference_cost, timed_embed_all
from hgraph.export import save_embeddings
from hgraph.losses import GraphRegularizer
from hgraph.nn import ENCODERS, Encoder, EncoderSpec, build_encoder
from hgraph.train.fused import fit_model
from hgraph.train import (RunInterrupted, TrainData, TrainingDiverged,  # noqa: F401
                          TrainingInterrupted, TrainResult, make_embedder, resolve_device,
                          set_seed, train)
from hgraph.viz import plot_run

Tensor = torch.Tensor


@dataclass
class Prepared:
    """Data-derived state shared by every seed of a run."""
    tax: Taxonomy
    splits: Splits
    x: Optional[Tensor]           # (N, F) features on the run's device, or None
    pyg: Any                      # torch_geometric Data of the training graph
    positives: np.ndarray         # (P, 2) training pairs (anchor, positive)
    sampler: NegativeSampler
    val_neg: Optional[np.ndarray]
    test_neg: Optional[np.ndarray]


def prepare(cfg: RunConfig, tax: Taxonomy, device: torch.device, dtype: torch.dtype) -> Prepared:
    """Splits, features, training graph, positives, negative sampler and the
    fixed evaluation negatives (filtered against the full relation: leak-free)."""
    splits = make_splits(tax, cfg.data)
    x = None if tax.features is None else \
        torch.as_tensor(np.asarray(tax.features), dtype=dtype, device=device)
    pyg = to_pyg(tax, splits.train, None if x is None else x.cpu())
    positives = csr_pairs(splits.train_closure) if cfg.train.positives == "closure" \
        else splits.train.copy()
    if len(positives) == 0:
        raise HGraphInputError("no training pairs left after the splits",
                               file=tax.source, fix="lower --val-frac/--test-frac")
    cands = np.flatnonzero(splits.train_mask) if len(splits.heldout) else None
    forbidden = splits.all_closure if cfg.train.neg_filter == "ancestors" else splits.forbidden
    sampler = NegativeSampler(forbidden, tax.num_nodes, candidates=cands)

    def negatives(pos, seed):
        return None if not len(pos) else np.asarray(sample_lp_negatives(
            torch.as_tensor(pos), tax.num_nodes, cfg.eval.lp_negatives, splits.forbidden,
            seed=seed))
    return Prepared(tax, splits, x, pyg, positives, sampler,
                    negatives(splits.val, cfg.eval.eval_seed),
                    negatives(splits.test, cfg.eval.eval_seed + 1))


def check_inputs(cfg: RunConfig, prep: Prepared) -> None:
    """Refuse an item model's name and an encoder that needs features on a dataset without."""
    if cfg.model.encoder not in ENCODERS:
        raise HGraphInputError(f"encoder {cfg.model.encoder!r} is an item model",
                               fix=f"add --task items, or choose from {', '.join(ENCODERS)}")
    if prep.x is None and ENCODERS[cfg.model.encoder].requires_features \
            and not cfg.model.id_embeddings:
        raise HGraphInputError(f"encoder {cfg.model.encoder!r} needs node features; dataset "
                               f"{cfg.data.dataset!r} has none",
                               fix="pass --features FILE (or --id-embeddings)")


def build_model(cfg: RunConfig, prep: Prepared, device, dtype) -> Encoder:
    manifold = M.make_manifold(cfg.model.manifold, cfg.model.curvature, cfg.model.learn_curvature)
    spec = EncoderSpec(cfg=cfg.model, manifold=manifold, num_nodes=prep.tax.num_nodes,
                       in_dim=None if prep.x is None else int(prep.x.shape[1]),
                       edges=prep.splits.train, dtype=dtype)
    return build_encoder(spec).to(device=device, dtype=dtype)


def make_embedders(model: Encoder, prep: Prepared, cfg: RunConfig, device: torch.device):
    """(embedder for training steps, ``embed_all(model)`` for validation)."""
    ei = prep.pyg.edge_index.to(device)
    model.set_graph(ei)     # a graph encoder's degrees come from the training graph
    embedder = make_embedder(model, prep.x, prep.pyg, cfg.sampling, device)

    def embed_all(m: Encoder) -> Tensor:
        return m.embed_all(prep.x, ei, prep.tax.num_nodes, chunk=cfg.eval.chunk, device=device)
    return embedder, embed_all


def make_regularizer(cfg: RunConfig, prep: Prepared, seed: int) -> Optional[GraphRegularizer]:
    """The graph regulariser over the training graph when ``reg_lambda > 0``, any encoder."""
    if not cfg.reg.reg_lambda > 0:
        return None
    return GraphRegularizer(prep.splits.train, prep.tax.num_nodes, kinds=cfg.reg.reg_kinds,
                            margin=cfg.reg.reg_margin, hard_negatives=cfg.reg.hard_negatives,
                            level=prep.tax.level, allowed=prep.splits.train_mask, seed=seed)


def fit(model: Encoder, prep: Prepared, cfg: RunConfig, seed: int, device,
        run_dir: Path, resuming: bool) -> TrainResult:
    """Train one seed, checkpointing into ``run_dir`` (and resuming from there)."""
    if not model.trainable:             # a fixed baseline (features): nothing to fit
        return TrainResult(epochs_run=0, best_epoch=0)
    embedder, embed_all = make_embedders(model, prep, cfg, device)
    sp_ = prep.splits
    data = TrainData(num_nodes=prep.tax.num_nodes, positives=prep.positives,
                     sampler=prep.sampler, embedder=embedder, embed_all=embed_all,
                     val_pos=sp_.val if len(sp_.val) else None, val_neg=prep.val_neg,
                     val_metric=cfg.train.val_metric, val_filter=sp_.known_edges(),
                     val_candidates=sp_.train_mask, train_closure=sp_.train_closure,
                     regularizer=make_regularizer(cfg, prep, seed),
                     reg_lambda=cfg.reg.reg_lambda, reg_warmup=cfg.reg.reg_warmup)
    ctx = D.current()                                       # rank 0 reads and writes
    ckpt, state = R.resume_state(run_dir, seed, device, resuming, ctx)
    trainer = fit_model if cfg.train.trainer == "fused" else train   # hgraph.train.fused
    with R.training_seed(run_dir, seed, ckpt):
        return trainer(model, data, cfg.train, device=device, seed=seed, progress=cfg.progress,
                       checkpoint=lambda e, st: ctx.on_main(R.write_checkpoint, ckpt, e, st),
                       resume=state, dist=ctx)


def score(model: Encoder, prep: Prepared, cfg: RunConfig, device) -> tuple:
    """(metrics, points) of a trained model: embed every node, evaluate, time placement."""
    ei = prep.pyg.edge_index.to(device)
    z, embed_time = timed_embed_all(model, prep.x, ei, prep.tax.num_nodes, cfg.eval.chunk, device)
    metrics = {"embed_time_s": embed_time,
               "embed_nodes_per_s": prep.tax.num_nodes / max(embed_time, 1e-9)}
    metrics.update(evaluate(model.manifold, z, prep.tax, prep.splits, cfg.eval, prep.test_neg))
    metrics.update(inference_cost(model, prep.x, ei, device, seed=cfg.eval.eval_seed))
    return metrics, z


def run(cfg: RunConfig, argv: Optional[List[str]] = None,
        resume_dir: Optional[Path] = None) -> Optional[R.RunResult]:
    """Run one configuration over its seeds; write the run folder; return the result.

    With ``resume_dir`` (an interrupted run's folder, its ``config.json`` as
    ``cfg``) each seed continues from its latest checkpoint; seeds without one
    start afresh.  Final metrics equal an uninterrupted run's (same device).
    Under torchrun (:mod:`hgraph.distributed`) ranks other than 0 return None.
    Task "items": :func:`hgraph.tasks.items.run`, the same folder, checkpoints and rows.
    """
    if cfg.task == "items":
        from hgraph.tasks import items
        return items.run(cfg, argv=argv, resume_dir=resume_dir)
    t_wall = time.perf_counter()
    device, dtype = resolve_device(cfg.device), R.DTYPES[cfg.dtype]
    tax = load_dataset(cfg.data, progress=cfg.progress)  # validates input, writes nothing
    prep = prepare(cfg, tax, device, dtype)
    check_inputs(cfg, prep)
    subtrees = [tax.index(name) for name in cfg.plot_subtree]   # unknown name: error now
    command = " ".join(["python", *argv]) if argv is not None else \
        "hgraph.pipeline.run(cfg) with cfg = config.json of this folder"
    ctx = D.current()       # under torchrun: every rank trains, rank 0 alone writes and evaluates
    run_dir = ctx.from_main(R.open_run_dir, cfg, command, resume_dir)

    per_seed: List[Dict[str, float]] = []
    histories, points, model = [], None, None
    for seed in cfg.seeds:
        set_seed(seed)
        model = build_model(cfg, prep, device, dtype)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        res = fit(model, prep, cfg, seed, device, run_dir, resuming=resume_dir is not None)
        if not ctx.is_main:
            continue
        metrics, z = score(model, prep, cfg, device)
        # the evaluated weights (best validation epoch), for load_encoder / retrieval
        torch.save(model.state_dict(), run_dir / f"model_seed{seed}.pt")
        metrics.update({"seed": seed, "train_time_s": res.train_time_s,
                        "epochs_run": res.epochs_run, "best_epoch": res.best_epoch,
                        "bad_steps": res.bad_steps, "curvature": M.curvature_of(model.manifold),
                        **R.peak_memory_mb(device)})
        per_seed.append(metrics)
        histories.append(res.history)
        points = z.cpu() if points is None else points
        if cfg.progress:
            print(f"[seed {seed}] " + " ".join(f"{k}={metrics[k]:.4g}" for k in SUMMARY_METRICS
                                               if metrics.get(k) is not None), file=sys.stderr)
    return finish(cfg, prep, run_dir, command, per_seed, histories, points, model, subtrees,
                  device, t_wall) if ctx.is_main else None


def finish(cfg, prep, run_dir, command, per_seed, histories, points, model, subtrees, device,
           t_wall) -> R.RunResult:
    """metrics.json, history.json, embeddings, plots, the summary row; the folder complete."""
    agg = R.aggregate(per_seed)
    ds = {**prep.tax.summary(), "train_edges": len(prep.splits.train),
          "val_edges": len(prep.splits.val), "test_edges": len(prep.splits.test),
          "heldout_nodes": int(len(prep.splits.heldout)),
          "train_positives": int(len(prep.positives)),
          "features": None if prep.x is None else int(prep.x.shape[1])}
    meta = {"git": R.git_hash(str(Path(__file__).resolve().parent.parent)), "command": command,
            "seeds": list(cfg.seeds), "wall_time_s": time.perf_counter() - t_wall,
            "world_size": D.current().world_size,
            "env": R.environment(device), "dataset": ds, **R.peak_memory_mb(device)}
    R.atomic_write_json(run_dir / "metrics.json", {"mean_std": agg, "per_seed": per_seed,
                                                   "run": meta})
    R.atomic_write_json(run_dir / "history.json", histories)
    if cfg.save_embeddings:
        save_embeddings(run_dir, points, prep.tax, model.manifold)
    if cfg.plots:   # disk by level, norm by level, subtrees, training curves
        plot_run(run_dir, points, prep.tax, model.manifold, histories[0], subtrees)
    R.mark_complete(run_dir)
    R.append_summary(cfg.out, R.summary_row(cfg, run_dir, agg, SUMMARY_METRICS, device,
                                            meta["git"], world_size=meta["world_size"]))
    return R.RunResult(run_dir=run_dir, config=cfg, metrics=agg, per_seed=per_seed, dataset=ds,
                       histories=histories)


def resume(run_dir, argv: Optional[List[str]] = None) -> R.RunResult:
    """Continue an interrupted run from its folder (``--resume results/<run>``)."""
    return run(R.resumable_config(run_dir), argv=argv, resume_dir=Path(run_dir))
