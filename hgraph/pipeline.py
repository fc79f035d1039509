"""The pipeline: ``run(cfg) -> RunResult``.

data (DATASETS) -> leak-free splits -> for each seed: encoder (ENCODERS) on a
manifold (MANIFOLDS), trained with a loss (LOSSES) by :func:`hgraph.train.train`,
then evaluated -> ``results/<run_id>/`` + ``results/summary.{csv,md}``.

Seeds are set inside :func:`run`, never at import.  The input is read and
validated before anything is written, so bad input leaves no folder behind.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from hgraph import manifolds as M
from hgraph import results as R
from hgraph.config import DataConfig, RunConfig
from hgraph.data.graph import NegativeSampler, has_neighbor_sampler, symmetric, to_pyg
from hgraph.data.taxonomy import Taxonomy, csr_pairs, transitive_closure
from hgraph.errors import HGraphInputError
from hgraph.nn.encoders import EncoderSpec, build_encoder
from hgraph.train import (DirectEmbedder, FullGraphEmbedder, SampledEmbedder, TrainData,
                          TrainingDiverged, TrainingInterrupted, TrainResult, train)

Tensor = torch.Tensor


# ------------------------------------------------------------------ datasets
def _synthetic(cfg: DataConfig, arg: Optional[str]) -> Taxonomy:
    from hgraph.data.generate import generate_tree, hierarchical_features
    tax = generate_tree(root_children=cfg.gen_root_children, min_children=cfg.gen_min_children,
                        max_children=cfg.gen_max_children, leaf_prob=tuple(cfg.gen_leaf_prob),
                        seed=cfg.gen_seed)
    if cfg.features is None:
        tax.features = hierarchical_features(tax, dim=cfg.feature_dim, noise=cfg.feature_noise,
                                             seed=cfg.gen_seed)
    return tax


def _file_reader(default_format: str, tree: Optional[bool]):
    def read(cfg: DataConfig, arg: Optional[str]) -> Taxonomy:
        from hgraph.data.io import read_taxonomy
        if not arg:
            raise HGraphInputError("this dataset needs a path, e.g. csv:path/to/edges.csv",
                                   file=cfg.dataset)
        fmt = cfg.format if cfg.format != "auto" else default_format
        return read_taxonomy(arg, format=fmt, tree=tree)
    return read


def _wordnet(which: str):
    def read(cfg: DataConfig, arg: Optional[str]) -> Taxonomy:
        from hgraph.data.wordnet import WORDNET_DIR, gloss_features, load_wordnet
        root = WORDNET_DIR if arg is None else arg
        tax = load_wordnet(which, root=root)
        if cfg.features is None:   # text features: TF-IDF + SVD of lemmas and gloss
            tax.features = gloss_features(tax, dim=cfg.feature_dim, root=root,
                                          seed=cfg.gen_seed)
        return tax
    return read


#: name -> loader(DataConfig, argument after ':') -> Taxonomy.  The --dataset choices.
DATASETS: Dict[str, Callable[[DataConfig, Optional[str]], Taxonomy]] = {
    "curvlearn-synthetic": _synthetic,
    "curvlearn-csv": _file_reader("auto", True),
    "csv": _file_reader("auto", None),
    "closure": _file_reader("closure", None),
    "wordnet-mammals": _wordnet("mammals"),
    "wordnet-nouns": _wordnet("nouns"),
}


def load_dataset(cfg: DataConfig) -> Taxonomy:
    """Resolve ``cfg.dataset`` (``name`` or ``name:PATH``) through :data:`DATASETS`."""
    name, _, arg = cfg.dataset.partition(":")
    if name not in DATASETS:
        raise HGraphInputError(f"unknown dataset {cfg.dataset!r}",
                               fix=f"choose from {', '.join(sorted(DATASETS))} (PATH after ':')")
    tax = DATASETS[name](cfg, arg or None)
    if cfg.features is not None:
        from hgraph.data.io import read_features
        tax.features = read_features(cfg.features, tax)
    return tax


# ------------------------------------------------------------------ splits
@dataclass
class Splits:
    """Leak-free views of one taxonomy (global node ids throughout).

    ``train``: (E_tr, 2) message-passing / training edges (child, parent);
    ``val``/``test``: held-out edges; ``train_closure``: closure of ``train``
    only; ``forbidden``: symmetric full closure, the filter for negatives;
    ``heldout``: inductive nodes (absent from every training structure);
    ``train_mask``: (N,) nodes seen in training.
    """
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_closure: Any
    all_closure: Any
    all_edges: Any
    forbidden: Any
    heldout: np.ndarray
    train_mask: np.ndarray
    heldout_ancestors: Any = None


def make_splits(tax: Taxonomy, cfg: DataConfig) -> Splits:
    from hgraph.data.splits import edge_split, inductive_split
    n = tax.num_nodes
    es = edge_split(tax, val_frac=cfg.val_frac, test_frac=cfg.test_frac, seed=cfg.split_seed)
    train, val, test = es.train, es.val, es.test
    heldout = np.zeros(0, dtype=np.int64)
    train_mask = np.ones(n, dtype=bool)
    anc = None
    if cfg.inductive_frac > 0:
        ns = inductive_split(tax, frac=cfg.inductive_frac, seed=cfg.split_seed)
        heldout, train_mask, anc = ns.heldout, ns.train_mask, ns.heldout_ancestors

        def keep(e):
            return e[train_mask[e[:, 0]] & train_mask[e[:, 1]]]
        train, val, test = keep(train), keep(val), keep(test)
    train_closure = es.train_closure if cfg.inductive_frac == 0 else transitive_closure(train, n)
    return Splits(train=train, val=val, test=test, train_closure=train_closure,
                  all_closure=es.all_closure, all_edges=es.all_edges,
                  forbidden=symmetric(es.all_closure), heldout=heldout,
                  train_mask=train_mask, heldout_ancestors=anc)


# ------------------------------------------------------------------ helpers
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise HGraphInputError("--device cuda was asked for but no CUDA device is available",
                               fix="use --device auto or cpu")
    return torch.device(name)


def set_seed(seed: int) -> None:
    import random
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


@dataclass
class Prepared:
    """Data-derived state shared by every seed of a run."""
    tax: Taxonomy
    splits: Splits
    x: Optional[Tensor]
    pyg: Any
    positives: np.ndarray
    sampler: NegativeSampler
    val_neg: Optional[np.ndarray]
    test_neg: Optional[np.ndarray]


def prepare(cfg: RunConfig, tax: Taxonomy, device: torch.device, dtype: torch.dtype) -> Prepared:
    from hgraph.eval.link import sample_lp_negatives
    splits = make_splits(tax, cfg.data)
    x = None
    if tax.features is not None:
        x = torch.as_tensor(np.asarray(tax.features), dtype=dtype, device=device)
    pyg = to_pyg(tax, splits.train, None if x is None else x.cpu())
    if cfg.train.positives == "closure":
        positives = csr_pairs(splits.train_closure)
    else:
        positives = splits.train.copy()
    if len(positives) == 0:
        raise HGraphInputError("no training pairs left after the splits",
                               file=tax.source, fix="lower --val-frac/--test-frac")
    cands = np.flatnonzero(splits.train_mask) if len(splits.heldout) else None
    # filtered against the full relation (held-out positives included): leak-free
    train_forbidden = splits.all_closure if cfg.train.neg_filter == "ancestors" else splits.forbidden
    sampler = NegativeSampler(train_forbidden, tax.num_nodes, candidates=cands)
    k = cfg.eval.lp_negatives
    val_neg = test_neg = None
    if len(splits.val):
        val_neg = sample_lp_negatives(torch.as_tensor(splits.val), tax.num_nodes, k,
                                      splits.forbidden, seed=cfg.eval.eval_seed)
    if len(splits.test):
        test_neg = sample_lp_negatives(torch.as_tensor(splits.test), tax.num_nodes, k,
                                       splits.forbidden, seed=cfg.eval.eval_seed + 1)
    return Prepared(tax, splits, x, pyg, positives, sampler,
                    None if val_neg is None else np.asarray(val_neg),
                    None if test_neg is None else np.asarray(test_neg))


def make_embedders(model, prep: Prepared, cfg: RunConfig, device: torch.device):
    """(embedder for training steps, embed_all for evaluation) for this encoder."""
    n = prep.tax.num_nodes
    x = prep.x
    if getattr(model, "uses_graph", False):
        ei = prep.pyg.edge_index.to(device)
        if hasattr(model, "set_graph"):
            # GCN normalisation uses degrees in the training graph, also on sampled subgraphs
            model.set_graph(ei)
        if cfg.train.full_batch or not has_neighbor_sampler():
            if not cfg.train.full_batch:
                print("[hgraph] no pyg-lib/torch-sparse: HGCN trains full-batch", file=sys.stderr)
            emb = FullGraphEmbedder(x, ei, n, hide_supervision=cfg.train.hide_supervision)
        else:
            emb = SampledEmbedder(prep.pyg, cfg.train.fanouts, device,
                                  hide_supervision=cfg.train.hide_supervision)

        def embed_all(m):
            if hasattr(m, "inference"):
                return m.inference(x, ei, n, batch_size=max(cfg.eval.chunk, 4096), device=device)
            return m(x, ei, torch.arange(n, device=device))
        return emb, embed_all

    direct = DirectEmbedder(x)

    def embed_all(m):
        out = []
        step = 65536
        for i in range(0, n, step):
            ids = torch.arange(i, min(i + step, n), device=device)
            out.append(direct(m, ids))
        return torch.cat(out)
    return direct, embed_all


def evaluate(model, prep: Prepared, cfg: RunConfig, embed_all, device) -> Tuple[Dict[str, float], Tensor]:
    """All metrics of one trained model; returns (metrics, all points)."""
    from hgraph.eval.hierarchy import ancestor_map, norm_level_spearman
    from hgraph.eval.link import link_prediction, parent_ranking
    from hgraph.eval.ranking import reconstruction

    model.eval()
    man = model.manifold
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        sync()
        t0 = time.perf_counter()
        z = embed_all(model)
        sync()
        embed_time = time.perf_counter() - t0
    z = z.detach()
    sp_ = prep.splits
    out: Dict[str, float] = {"embed_time_s": embed_time,
                             "embed_nodes_per_s": prep.tax.num_nodes / max(embed_time, 1e-9)}
    t0 = time.perf_counter()
    sample = cfg.eval.recon_sample or None
    rec = reconstruction(man, z, sp_.train_closure, sample=sample, seed=cfg.eval.eval_seed,
                         chunk=cfg.eval.chunk,
                         candidates=sp_.train_mask if len(sp_.heldout) else None)
    out.update({"recon_mean_rank": rec["mean_rank"], "recon_map": rec["map"],
                "recon_sources": rec["num_sources"]})
    if len(sp_.test):
        lp = link_prediction(man, z, torch.as_tensor(sp_.test), torch.as_tensor(prep.test_neg))
        out.update({"lp_roc_auc": lp["roc_auc"], "lp_ap": lp["ap"]})
        cand = torch.as_tensor(sp_.train_mask) if len(sp_.heldout) else None
        pr = parent_ranking(man, z, torch.as_tensor(sp_.test), sp_.all_edges,
                            candidates=cand, chunk=cfg.eval.chunk)
        out.update({"parent_mrr": pr["mrr"], "parent_mean_rank": pr["mean_rank"],
                    "parent_hits@1": pr["hits@1"], "parent_hits@3": pr["hits@3"],
                    "parent_hits@10": pr["hits@10"]})
    if len(sp_.heldout):
        tax = prep.tax
        held = sp_.heldout
        cp = tax.child_to_parent
        rows = [(int(u), int(p)) for u in held for p in cp.indices[cp.indptr[u]:cp.indptr[u + 1]]]
        q = torch.as_tensor(np.array(rows, dtype=np.int64).reshape(-1, 2))
        cand = torch.as_tensor(sp_.train_mask)
        ir = parent_ranking(man, z, q, sp_.all_edges, candidates=cand, chunk=cfg.eval.chunk)
        out.update({"inductive_mrr": ir["mrr"], "inductive_hits@1": ir["hits@1"],
                    "inductive_hits@3": ir["hits@3"], "inductive_hits@10": ir["hits@10"]})
        am = ancestor_map(man, z, torch.as_tensor(held), sp_.heldout_ancestors, cand)
        out["inductive_map"] = am["map"] if isinstance(am, dict) else float(am)
    sl = norm_level_spearman(man, z, prep.tax.level)
    out["spearman_norm_level"] = sl["spearman"]
    out["eval_time_s"] = time.perf_counter() - t0
    return out, z


def embed_nodes(model, x: Tensor, edge_index: Optional[Tensor], nodes: Tensor) -> Tensor:
    """Points of ``nodes`` (k,) from features, the way a new item is placed.

    A graph encoder (``uses_graph``) runs on the L-hop neighbourhood of the
    nodes in ``edge_index`` (``torch_geometric.utils.k_hop_subgraph``, L =
    its number of blocks), which gives the nodes exactly their full-graph
    outputs; any other encoder on the nodes' own features.  -> (k, D).
    """
    if getattr(model, "uses_graph", False):
        from torch_geometric.utils import k_hop_subgraph
        hops = len(getattr(model, "blocks", [None]))
        subset, sub_ei, mapping, _ = k_hop_subgraph(nodes, hops, edge_index, relabel_nodes=True,
                                                    num_nodes=x.size(0))
        return model(x[subset], sub_ei, subset)[mapping]
    return model(x[nodes], None, nodes)


def inference_cost(model, prep: Prepared, device: torch.device, n_new: int = 10_000,
                   seed: int = 0) -> Dict[str, float]:
    """Seconds to embed ``n_new`` nodes as if they were new, per 10k nodes.

    What a user pays to place new items with a trained encoder:

    * feature encoders (ramen, features): one forward on the nodes' features;
    * graph encoders (hgcn): gather the nodes' L-hop neighbourhood in the
      training graph (``torch_geometric.utils.k_hop_subgraph``) and run the
      layers on that subgraph — the nodes arrive with their features and
      edges;
    * shallow, and encoders on id embeddings: NaN (no row for a new node).

    ``n_new`` nodes drawn without replacement (all of them on a smaller graph,
    the time scaled to 10k); timed once, after a warm-up call on 64 nodes.
    """
    n = prep.tax.num_nodes
    if prep.x is None or not getattr(model, "uses_features", False) or \
            getattr(model, "use_ids", False) or getattr(model, "embedding", None) is not None:
        return {"infer_10k_s": float("nan")}
    m = min(n_new, n)
    ids = torch.as_tensor(np.random.default_rng(seed).choice(n, m, replace=False),
                          device=device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    ei = prep.pyg.edge_index.to(device)

    def embed(nodes):
        return embed_nodes(model, prep.x, ei, nodes)

    was_training = model.training
    model.eval()
    with torch.no_grad():
        embed(ids[:64])
        sync()
        t0 = time.perf_counter()
        embed(ids)
        sync()
        dt = time.perf_counter() - t0
    model.train(was_training)
    return {"infer_10k_s": dt * 10_000 / m}


# ------------------------------------------------------------------ run
class RunInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM stopped a run; ``str()`` is one line naming the checkpoint
    and the resume command.  The folder stays INCOMPLETE with no summary row;
    ``exit_status`` is 128 + the signal number (130 SIGINT, 143 SIGTERM)."""

    def __init__(self, message: str, signum: int):
        self.signum = signum
        self.exit_status = 128 + int(signum)
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class RunResult:
    """What :func:`run` returns: where it wrote, and the numbers."""
    run_dir: Path
    config: RunConfig
    metrics: Dict[str, Dict[str, float]]          # name -> {mean, std, n}
    per_seed: List[Dict[str, float]]
    dataset: Dict[str, Any]
    histories: List[List[Dict[str, float]]] = field(default_factory=list)

    def mean(self, key: str) -> float:
        return self.metrics[key]["mean"]


def default_run_name(cfg: RunConfig) -> str:
    ds = cfg.data.dataset.split(":")[0] if ":" not in cfg.data.dataset else \
        cfg.data.dataset.split(":")[0] + "-" + Path(cfg.data.dataset.split(":", 1)[1]).stem
    return (f"{time.strftime('%Y%m%d-%H%M%S')}_{ds}_{cfg.model.encoder}_"
            f"{cfg.model.manifold}_d{cfg.model.dim}")


def run(cfg: RunConfig, argv: Optional[List[str]] = None,
        resume_dir: Optional[Path] = None) -> RunResult:
    """Run one configuration over its seeds; write the run folder; return the result.

    With ``resume_dir`` (an interrupted run's folder, its ``config.json`` as
    ``cfg``) each seed continues from its latest checkpoint; seeds without one
    start afresh.  Final metrics equal an uninterrupted run's (same device).
    """
    t_wall = time.perf_counter()
    device = resolve_device(cfg.device)
    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg.dtype]
    tax = load_dataset(cfg.data)                         # validates input, writes nothing
    prep = prepare(cfg, tax, device, dtype)
    if prep.x is None and cfg.model.encoder == "features":
        raise HGraphInputError(f"encoder 'features' needs node features; dataset "
                               f"{cfg.data.dataset!r} has none", fix="pass --features FILE")
    if prep.x is None and cfg.model.encoder in ("ramen",) and not cfg.model.id_embeddings:
        raise HGraphInputError(f"encoder {cfg.model.encoder!r} needs node features; "
                               f"dataset {cfg.data.dataset!r} has none",
                               fix="pass --features FILE or --id-embeddings")

    subtrees = [tax.index(name) for name in cfg.plot_subtree]   # unknown name: error now
    if argv is not None:
        command = " ".join(["python", *argv])
    else:  # called from Python: the configuration is the record
        command = "hgraph.pipeline.run(cfg) with cfg = config.json of this folder"
    if resume_dir is None:
        run_dir = R.new_run_dir(cfg.out, cfg.name or default_run_name(cfg))
        R.atomic_write_text(run_dir / "config.json", cfg.to_json() + "\n")
        R.atomic_write_text(run_dir / "command.txt", command + "\n")
    else:
        run_dir = Path(resume_dir)
        first = (run_dir / "command.txt").read_text().splitlines()[0]
        R.atomic_write_text(run_dir / "command.txt", f"{first}\n# resumed: {command}\n")
    ds_summary = tax.summary()
    ds_summary.update({"train_edges": len(prep.splits.train), "val_edges": len(prep.splits.val),
                       "test_edges": len(prep.splits.test),
                       "heldout_nodes": int(len(prep.splits.heldout)),
                       "train_positives": int(len(prep.positives)),
                       "features": None if prep.x is None else int(prep.x.shape[1])})

    per_seed: List[Dict[str, float]] = []
    histories = []
    best_points = None
    model = None
    for seed in cfg.seeds:
        set_seed(seed)
        manifold = M.make_manifold(cfg.model.manifold, cfg.model.curvature,
                                   cfg.model.learn_curvature)
        spec = EncoderSpec(cfg=cfg.model, manifold=manifold, num_nodes=tax.num_nodes,
                           in_dim=None if prep.x is None else int(prep.x.shape[1]))
        model = build_encoder(spec).to(device=device, dtype=dtype)
        embedder, embed_all = make_embedders(model, prep, cfg, device)
        reg = None
        if cfg.model.encoder == "ramen" and cfg.train.reg_lambda > 0:
            from hgraph.regularizers import GraphRegularizer
            reg = GraphRegularizer(prep.splits.train, tax.num_nodes, kinds=cfg.train.reg_kinds,
                                   margin=cfg.train.reg_margin,
                                   hard_negatives=cfg.train.hard_negatives, level=tax.level,
                                   allowed=prep.splits.train_mask, seed=seed)
        data = TrainData(num_nodes=tax.num_nodes, positives=prep.positives, sampler=prep.sampler,
                         embedder=embedder, embed_all=embed_all,
                         val_pos=prep.splits.val if len(prep.splits.val) else None,
                         val_neg=prep.val_neg, regularizer=reg)
        ckpt_path = run_dir / f"checkpoint_seed{seed}.pt"

        def checkpoint(epoch, state, _p=ckpt_path):
            tmp = _p.with_suffix(".pt.tmp")
            torch.save({"epoch": epoch, **state}, tmp)
            os.replace(tmp, _p)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        state = None
        if resume_dir is not None and ckpt_path.exists():
            state = torch.load(ckpt_path, map_location=device, weights_only=False)
            inside = f" + {state['step']} steps" if "step" in state else ""
            print(f"[seed {seed}] resuming after epoch {state['epoch']}{inside}", file=sys.stderr)
        try:
            if getattr(model, "trainable", True):
                res: TrainResult = train(model, data, cfg.train, device=device, seed=seed,
                                         progress=cfg.progress, checkpoint=checkpoint,
                                         resume=state)
            else:   # a fixed baseline (features): nothing to fit
                res = TrainResult(epochs_run=0, best_epoch=0)
        except TrainingInterrupted as e:
            saved = (f"checkpoint {ckpt_path}" if e.checkpointed and ckpt_path.exists()
                     else "no checkpoint written")
            raise RunInterrupted(f"interrupted ({e}, seed {seed}): {saved}; continue with: "
                                 f"python pipelines/run.py --resume {run_dir}", e.signum) from None
        except TrainingDiverged as e:
            raise TrainingDiverged(f"training diverged (seed {seed}): {e}; "
                                   f"{_last_checkpoint(ckpt_path)}; {run_dir} stays "
                                   f"INCOMPLETE") from None
        metrics, z = evaluate(model, prep, cfg, embed_all, device)
        metrics.update(inference_cost(model, prep, device, seed=cfg.eval.eval_seed))
        # the evaluated weights (best validation epoch), for load_encoder / retrieval
        torch.save(model.state_dict(), run_dir / f"model_seed{seed}.pt")
        metrics.update({"seed": seed, "train_time_s": res.train_time_s,
                        "epochs_run": res.epochs_run, "best_epoch": res.best_epoch,
                        "bad_steps": res.bad_steps,
                        "curvature": M.curvature_of(model.manifold)})
        metrics.update(R.peak_memory_mb(device))
        per_seed.append(metrics)
        histories.append(res.history)
        if best_points is None:
            best_points = z.cpu()
        if cfg.progress:
            _print_seed(seed, metrics)

    agg = R.aggregate(per_seed)
    env = R.environment(device)
    meta = {"git": R.git_hash(str(Path(__file__).resolve().parent.parent)), "command": command,
            "seeds": list(cfg.seeds), "wall_time_s": time.perf_counter() - t_wall,
            "env": env, "dataset": ds_summary, **R.peak_memory_mb(device)}
    R.atomic_write_json(run_dir / "metrics.json", {"mean_std": agg, "per_seed": per_seed,
                                                   "run": meta})
    R.atomic_write_json(run_dir / "history.json", histories)
    if cfg.save_embeddings and best_points is not None:
        _save_embeddings(run_dir, best_points, tax, model.manifold)
    if cfg.plots and best_points is not None:
        _plots(run_dir, best_points, tax, model.manifold, histories[0], subtrees)
    row = {"run_id": run_dir.name, "date": time.strftime("%Y-%m-%d %H:%M"),
           "dataset": cfg.data.dataset, "encoder": cfg.model.encoder,
           "manifold": cfg.model.manifold, "dim": cfg.model.dim, "loss": cfg.train.loss,
           "epochs": cfg.train.epochs, "seeds": len(cfg.seeds), "device": str(device),
           "git": meta["git"]}
    for k in R.SUMMARY_METRICS:
        if k in agg:
            row[k] = agg[k]["mean"]
            row[k + "_std"] = agg[k]["std"]
    R.mark_complete(run_dir)
    R.append_summary(cfg.out, row)
    return RunResult(run_dir=run_dir, config=cfg, metrics=agg, per_seed=per_seed,
                     dataset=ds_summary, histories=histories)


def _last_checkpoint(path: Path) -> str:
    """'last good checkpoint PATH (after epoch E)', or why there is none."""
    if not path.exists():
        return "no checkpoint was written (see --checkpoint-every)"
    epoch = torch.load(path, map_location="cpu", weights_only=False)["epoch"]
    return f"last good checkpoint {path} (after epoch {epoch})"


def _save_embeddings(run_dir: Path, points: Tensor, tax: Taxonomy, manifold) -> None:
    try:
        from hgraph.export import save_embeddings
    except ImportError:  # export module not present: keep the raw points
        np.save(run_dir / "embeddings.npy", points.numpy())
        return
    save_embeddings(run_dir, points, tax, manifold)


def _plots(run_dir: Path, points: Tensor, tax: Taxonomy, manifold, history,
           subtrees: List[int]) -> None:
    """Disk by level (Lorentz mapped to the ball), subtrees, norm by level, curves."""
    from hgraph import viz
    if history:      # a fixed baseline (features) has no training curve
        viz.plot_curves(history, run_dir / "curves.png", title=f"{run_dir.name}: training")
    if M.kind(manifold) == "euclidean":
        return
    pts = M.to_poincare(manifold, points).numpy()
    c = M.curvature_of(manifold)
    viz.plot_disk(pts, tax.level, run_dir / "disk.png", curvature=c,
                  title=f"{run_dir.name}: embeddings by level")
    # same picture with radius proportional to hyperbolic distance from the origin:
    # deep levels no longer merge into the boundary
    viz.plot_disk(pts, tax.level, run_dir / "disk_equidistant.png", curvature=c,
                  title=f"{run_dir.name}: by level (radius = distance to origin)",
                  radial="equidistant")
    viz.plot_norm_by_level(pts, tax.level, run_dir / "norm_by_level.png", curvature=c)
    for node in subtrees:
        viz.plot_subtree(pts, tax, node, run_dir / f"subtree_{R.slug(tax.names[node])}.png",
                         curvature=c)


def _print_seed(seed: int, m: Dict[str, float]) -> None:
    keys = ["lp_roc_auc", "lp_ap", "parent_mrr", "recon_mean_rank", "recon_map",
            "spearman_norm_level", "inductive_mrr", "train_time_s"]
    parts = [f"{k}={m[k]:.4g}" for k in keys if k in m and m[k] is not None]
    print(f"[seed {seed}] " + " ".join(parts), file=sys.stderr)


def load_encoder(run_dir, seed: Optional[int] = None, device: str = "cpu"):
    """Rebuild the trained encoder of a finished run: ``(encoder, cfg)``.

    Reads ``config.json``, the dataset sizes from ``metrics.json`` and the
    evaluated weights ``model_seed<S>.pt`` (first seed by default).  A
    feature-based encoder (ramen; hgcn without edges) then embeds new nodes:
    ``encoder(x_new, None, ids)``.
    """
    import json
    from hgraph.config import from_dict
    run_dir = Path(run_dir)
    try:
        cfg = from_dict(json.loads((run_dir / "config.json").read_text()),
                        source=str(run_dir / "config.json"), presets=False)
        info = json.loads((run_dir / "metrics.json").read_text())["run"]["dataset"]
    except FileNotFoundError as e:
        raise HGraphInputError("not a finished run folder", file=e.filename) from None
    seed = cfg.seeds[0] if seed is None else seed
    weights = run_dir / f"model_seed{seed}.pt"
    if not weights.exists():
        raise HGraphInputError("no trained weights for this seed", file=str(weights))
    manifold = M.make_manifold(cfg.model.manifold, cfg.model.curvature, cfg.model.learn_curvature)
    spec = EncoderSpec(cfg=cfg.model, manifold=manifold, num_nodes=int(info["num_nodes"]),
                       in_dim=info.get("features"))
    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg.dtype]
    enc = build_encoder(spec).to(dtype=dtype)
    enc.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return enc.to(device).eval(), cfg


def resume(run_dir, argv: Optional[List[str]] = None) -> RunResult:
    """Continue an interrupted run from its folder (``--resume results/<run>``)."""
    import json
    from hgraph.config import from_dict
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise HGraphInputError("not a run folder (no config.json)", file=str(run_dir))
    if not (run_dir / R.INCOMPLETE).exists():
        raise HGraphInputError("this run finished; nothing to resume", file=str(run_dir))
    cfg = from_dict(json.loads(cfg_path.read_text()), source=str(cfg_path), presets=False)
    return run(cfg, argv=argv, resume_dir=run_dir)
