"""The item -> category task: place text items into a taxonomy (``task: items``).

:func:`run` is what :func:`hgraph.pipeline.run` calls for an item run: data
(:mod:`~hgraph.tasks.item_data`) -> per seed: leak-free item splits (a
zero-shot slice of categories, the rest per category), a model
(:mod:`~hgraph.tasks.item_fit`) trained by the one loop over
:class:`~hgraph.tasks.item_batches.ItemBatches`, the ranking of every
candidate for each test item, metrics overall and per slice, later stages
(:mod:`~hgraph.tasks.item_stages`) -> the run folder of every task
(``config.json``, ``metrics.json``, checkpoints, ``--resume``, the summary
row) plus ``per_item_seed<S>.npz`` (the per-item values paired bootstrap
intervals are computed from) and ``model_seed<S>.pt`` (:mod:`~hgraph.tasks.item_export`).

Nothing of a test item reaches training: its text vector is computed with
the others (a frozen encoder, no fitting) but only training rows are drawn
in the loss; zero-shot categories stay candidates (their text and place in
the tree are known) and may be drawn as negatives.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from hgraph import distributed as D
from hgraph import results as R
from hgraph.config import RunConfig, from_dict, nest_item_settings
from hgraph.data.item_splits import make_item_splits
from hgraph.errors import HGraphInputError
from hgraph.eval.items import item_metrics
from hgraph.tasks import item_confidence as C
from hgraph.tasks import item_stages as S
from hgraph.tasks.item_data import ItemData, load_item_data
from hgraph.tasks.item_eval import placement_cost, score_items, summarize
from hgraph.tasks.item_export import export_model
from hgraph.tasks.item_fit import build, train_items
from hgraph.tasks.item_models import ITEM_ENCODERS
from hgraph.train.setup import resolve_device


def config_from_dict(d: Dict[str, Any], source: str = "<config>") -> RunConfig:
    """An item run's config from flat item settings (``encoder``, ``lr``,
    ``zero_shot_frac``, ...: the layout of item YAML files and of item run folders
    written before the one harness), the item preset filling the rest."""
    return from_dict(nest_item_settings(d, source), source=source)


def item_config(**settings) -> RunConfig:
    """:func:`config_from_dict` of keyword settings: ``item_config(encoder="hgcn", seeds=[0, 1])``."""
    return config_from_dict(settings, "<settings>")


def check(cfg: RunConfig) -> None:
    """What the config cannot check without the registries: the item encoder's name."""
    if cfg.model.encoder not in ITEM_ENCODERS:
        raise HGraphInputError(f"unknown encoder {cfg.model.encoder!r} for the item task",
                               fix=f"choose from {', '.join(ITEM_ENCODERS)}")


def run_seed(cfg: RunConfig, data: ItemData, seed: int, measure_cost: bool = True,
             checkpoint=None, resume=None) -> Tuple[Dict[str, Any], Dict]:
    """Split, build, train, evaluate one seed -> (metrics, per-item arrays);
    the inference cost is timed when ``measure_cost``; ``checkpoint`` / ``resume``
    as :func:`hgraph.train.loop.train` takes them."""
    cand_mask = np.zeros(data.tax.num_nodes, dtype=bool)
    cand_mask[data.cand] = True
    sp = make_item_splits(data.items, data.tax.num_nodes, cfg.items.zero_shot_frac, cfg.data.val_frac,
                          cfg.data.test_frac, seed=seed, candidates=cand_mask)
    model = build(cfg, data, sp, seed)
    info: Dict[str, Any] = {"train_time_s": 0.0, "best_epoch": 0, "epochs_run": 0,
                            "history": []}
    if model.trainable:
        info = train_items(model, data, sp, cfg, seed, checkpoint=checkpoint, resume=resume)
    test = sp.items_of("test")
    t0 = time.perf_counter()
    top, rank = score_items(model, data, test, k=10)
    eval_s = time.perf_counter() - t0
    truth = [data.truth[i] for i in test]
    per_item = item_metrics(top, rank, truth, data.adj, data.up_hops, cand_mask)
    slices = sp.slice_of(test)
    metrics = summarize(per_item, slices)
    metrics.update({k: info[k] for k in ("train_time_s", "best_epoch", "epochs_run",
                                         "best_val_p1") if k in info})
    if measure_cost:
        metrics.update(placement_cost(model, data, cfg, n_items=cfg.items.cost_items,
                                      n_new=cfg.items.cost_items, seed=seed))
    metrics.update({"seed": seed, "eval_time_s": eval_s, **sp.summary()})
    if not model.trainable:
        metrics["best_val_p1"] = float(np.mean([np.isin(t[:1], data.truth[i]).any() for t, i in
                                                zip(score_items(model, data, sp.items_of("val"),
                                                                k=1)[0], sp.items_of("val"))])) \
            if len(sp.items_of("val")) else float("nan")
    arrays = {"items": test, "slice": slices.astype(str), "top1": top[:, 0], "rank": rank,
              **per_item}
    # the placement's confidence: a temperature fitted on validation, its error on test
    m_conf, a_conf = C.calibrate(model, data, sp.items_of("val"), test)
    metrics.update(m_conf)
    arrays.update(a_conf)
    twin = None
    if cfg.items.calibrate and model.trainable:
        twin = S.twin(cfg, data, sp, seed)
        m_cal, a_cal = S.calibrated(cfg, data, sp, seed, model, test, slices, cand_mask, twin)
        metrics.update(m_cal)
        arrays.update(a_cal)
    if cfg.items.rerank:
        twin = twin or S.twin(cfg, data, sp, seed)
        m_rr, a_rr = S.reranked(cfg, data, sp, seed, model, test, slices, cand_mask, twin, rank)
        metrics.update(m_rr)
        arrays.update(a_rr)
    return metrics, {"history": info["history"], "arrays": arrays, "model": model}


def run(cfg: RunConfig, argv: Optional[List[str]] = None,
        resume_dir: Optional[Path] = None) -> R.RunResult:
    """Every seed of an item run into a new run folder (or ``resume_dir``, an
    interrupted one: each seed continues from its checkpoint)."""
    check(cfg)
    if D.current().active:
        raise HGraphInputError("the item task runs in one process", fix="run it without torchrun")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t_wall = time.perf_counter()
    device = resolve_device(cfg.device)
    data = load_item_data(cfg, device, dtype=R.DTYPES[cfg.dtype])   # bad input: nothing written
    command = " ".join(["python", *argv]) if argv is not None else \
        "hgraph.pipeline.run(cfg) with cfg = config.json of this folder"
    run_dir = R.open_run_dir(cfg, command, resume_dir)
    per_seed: List[Dict[str, Any]] = []
    histories: List[Any] = []
    for seed in cfg.seeds:
        if cfg.progress:
            print(f"[{cfg.model.encoder} seed {seed}] {cfg.data.dataset}: {data.tax.num_nodes} "
                  f"nodes, {len(data.cand)} candidates, {len(data.item_texts)} items",
                  file=sys.stderr)
        torch.manual_seed(seed)
        ckpt, state = R.resume_state(run_dir, seed, device, resume_dir is not None)
        with R.training_seed(run_dir, seed, ckpt):
            # inference cost: timed on the first seed only (it does not depend on the split)
            m, extra = run_seed(cfg, data, seed, measure_cost=seed == cfg.seeds[0],
                                checkpoint=lambda e, st: R.write_checkpoint(ckpt, e, st),
                                resume=state)
        per_seed.append(m)
        histories.append(extra["history"])
        np.savez_compressed(run_dir / f"per_item_seed{seed}.npz", **extra["arrays"])
        export_model(extra["model"], data, cfg, run_dir / f"model_seed{seed}.pt",
                     temperature=m["conf_temperature"])
        if cfg.plots:
            a = extra["arrays"]
            C.plot_reliability(run_dir / f"reliability_seed{seed}.png",
                               [("T fitted on validation", a["conf"], a["conf_correct"]),
                                ("T = 1", a["conf_t1"], a["conf_correct"])],
                               f"{cfg.model.encoder}, seed {seed}: test items")
        if cfg.progress:
            print(f"[{cfg.model.encoder} seed {seed}] P@1 {m['p1']:.4f} (head {m['p1_head']:.4f}, "
                  f"tail {m['p1_tail']:.4f}, zero {m['p1_zero']:.4f}) P@5 {m['p5']:.4f} "
                  f"MRR {m['mrr']:.4f} train {m['train_time_s']:.0f} s", file=sys.stderr)
    return finish(cfg, data, run_dir, command, per_seed, histories, device, t_wall)


#: metrics of an item run in the summary rows
SUMMARY_METRICS = ("p1", "p1_seen", "p1_zero", "p5", "mrr", "hp5", "tree_dist", "train_time_s")


def finish(cfg, data: ItemData, run_dir: Path, command: str, per_seed, histories, device,
           t_wall) -> R.RunResult:
    """metrics.json, history.json, the summary row; the folder complete."""
    agg = R.aggregate([{k: v for k, v in m.items() if isinstance(v, (int, float))}
                       for m in per_seed])
    ds = {**data.tax.summary(), "candidates": int(len(data.cand)),
          "items": len(data.item_texts), "rows": len(data.items)}
    meta = {"command": command, "task": "items", "seeds": list(cfg.seeds),
            "seeds_done": [m["seed"] for m in per_seed],
            "wall_time_s": time.perf_counter() - t_wall, "text_encode_s": data.encode_s,
            "git": R.git_hash(str(Path(__file__).resolve().parent.parent.parent)),
            "env": R.environment(device), "torch_threads": torch.get_num_threads(),
            "dataset": ds, "nodes": ds["num_nodes"], "candidates": ds["candidates"],
            "items": ds["items"], "rows": ds["rows"], **R.peak_memory_mb(device)}
    R.atomic_write_json(run_dir / "metrics.json", {"mean_std": agg, "per_seed": per_seed,
                                                   "run": meta})
    R.atomic_write_json(run_dir / "history.json", histories)
    R.mark_complete(run_dir)
    R.append_summary(cfg.out, R.summary_row(cfg, run_dir, agg, SUMMARY_METRICS, device,
                                            meta["git"], dim=int(data.x_nodes.shape[1]),
                                            loss="softmax"))
    return R.RunResult(run_dir=run_dir, config=cfg, metrics=agg, per_seed=per_seed, dataset=ds,
                       histories=histories)


def read_metrics(run_dir) -> Dict[str, Any]:
    """``metrics.json`` of a finished item run folder (an error otherwise)."""
    p = Path(run_dir) / "metrics.json"
    if not p.exists() or (Path(run_dir) / R.INCOMPLETE).exists():
        raise HGraphInputError("not a finished run folder", file=str(run_dir))
    return json.loads(p.read_text())


__all__ = ["config_from_dict", "item_config", "check", "run_seed", "run", "finish",
           "read_metrics", "build", "train_items", "score_items", "summarize",
           "placement_cost", "load_item_data", "ItemData", "SUMMARY_METRICS"]
