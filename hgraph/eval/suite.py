"""The evaluation suite of a run: every metric of one set of trained points.

:func:`evaluate` takes points, not a model: reconstruction of the training
closure (MR, MAP), link prediction and parent ranking of the held-out test
edges, inductive placement of held-out nodes, and the norm-by-level Spearman
correlation.  :func:`inference_cost` measures what placing new nodes costs
with a trained encoder.  Metric names are those of :data:`METRICS`.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Dict, Optional

import numpy as np
import torch

from hgraph.data.splits import Splits
from hgraph.data.taxonomy import Taxonomy
from hgraph.eval.hierarchy import ancestor_map, norm_level_spearman
from hgraph.eval.link import link_prediction, parent_ranking
from hgraph.eval.ranking import reconstruction

if TYPE_CHECKING:  # pragma: no cover
    from hgraph.config import EvalConfig
    from hgraph.nn.base import Encoder

Tensor = torch.Tensor

#: every metric a run reports, in table order: name -> what it measures
METRICS: Dict[str, str] = {
    "lp_roc_auc": "link prediction ROC-AUC, test edges vs sampled negatives",
    "lp_ap": "link prediction average precision",
    "parent_mrr": "mean reciprocal rank of a test edge's parent among all nodes",
    "parent_mean_rank": "mean rank of that parent",
    "parent_hits@1": "share of test edges whose parent ranks first",
    "parent_hits@3": "... in the top 3",
    "parent_hits@10": "... in the top 10",
    "recon_mean_rank": "reconstruction of the training closure: mean rank of an ancestor",
    "recon_map": "reconstruction mean average precision",
    "recon_sources": "source nodes the reconstruction ranked",
    "spearman_norm_level": "Spearman correlation of distance to the origin with level",
    "inductive_mrr": "held-out nodes: MRR of their parent among training nodes",
    "inductive_hits@1": "... parent first",
    "inductive_hits@3": "... parent in the top 3",
    "inductive_hits@10": "... parent in the top 10",
    "inductive_map": "held-out nodes: MAP of their ancestors among training nodes",
    "infer_10k_s": "seconds to place 10k new nodes (NaN: the encoder cannot)",
    "embed_time_s": "seconds to embed every node",
    "embed_nodes_per_s": "nodes embedded per second",
    "eval_time_s": "seconds the evaluation took",
    "train_time_s": "seconds of training",
}


#: the columns of summary.csv and of the printed results, in order
SUMMARY_METRICS = ("lp_roc_auc", "lp_ap", "parent_mrr", "parent_hits@10", "recon_mean_rank",
                   "recon_map", "spearman_norm_level", "inductive_mrr", "inductive_hits@10",
                   "train_time_s", "embed_time_s", "infer_10k_s")


def evaluate(manifold, z: Tensor, tax: Taxonomy, splits: Splits, cfg: "EvalConfig",
             test_neg: Optional[np.ndarray] = None) -> Dict[str, float]:
    """All metrics of the points ``z`` (N, D) on ``manifold``.

    ``test_neg``: (T * K, 2) sampled negative pairs for the test edges
    (link prediction); needed when ``splits.test`` is not empty.
    """
    t0 = time.perf_counter()
    out: Dict[str, float] = {}
    inductive = len(splits.heldout) > 0
    rec = reconstruction(manifold, z, splits.train_closure, sample=cfg.recon_sample or None,
                         seed=cfg.eval_seed, chunk=cfg.chunk,
                         candidates=splits.train_mask if inductive else None)
    out.update({"recon_mean_rank": rec["mean_rank"], "recon_map": rec["map"],
                "recon_sources": rec["num_sources"]})
    if len(splits.test):
        test = torch.as_tensor(splits.test)
        lp = link_prediction(manifold, z, test, torch.as_tensor(test_neg))
        out.update({"lp_roc_auc": lp["roc_auc"], "lp_ap": lp["ap"]})
        cand = torch.as_tensor(splits.train_mask) if inductive else None
        pr = parent_ranking(manifold, z, test, splits.all_edges, candidates=cand, chunk=cfg.chunk)
        out.update({"parent_mrr": pr["mrr"], "parent_mean_rank": pr["mean_rank"],
                    "parent_hits@1": pr["hits@1"], "parent_hits@3": pr["hits@3"],
                    "parent_hits@10": pr["hits@10"]})
    if inductive:
        held = splits.heldout
        cp = tax.child_to_parent
        rows = [(int(u), int(p)) for u in held for p in cp.indices[cp.indptr[u]:cp.indptr[u + 1]]]
        q = torch.as_tensor(np.array(rows, dtype=np.int64).reshape(-1, 2))
        cand = torch.as_tensor(splits.train_mask)
        ir = parent_ranking(manifold, z, q, splits.all_edges, candidates=cand, chunk=cfg.chunk)
        out.update({"inductive_mrr": ir["mrr"], "inductive_hits@1": ir["hits@1"],
                    "inductive_hits@3": ir["hits@3"], "inductive_hits@10": ir["hits@10"]})
        am = ancestor_map(manifold, z, torch.as_tensor(held), splits.heldout_ancestors, cand)
        out["inductive_map"] = am["map"] if isinstance(am, dict) else float(am)
    out["spearman_norm_level"] = norm_level_spearman(manifold, z, tax.level)["spearman"]
    out["eval_time_s"] = time.perf_counter() - t0
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_embed_all(model: "Encoder", x: Optional[Tensor], edge_index: Optional[Tensor],
                    num_nodes: int, chunk: int, device: torch.device):
    """``(points (N, D) detached, seconds)`` of ``model.embed_all`` in eval mode."""
    model.eval()
    with torch.no_grad():
        _sync(device)
        t0 = time.perf_counter()
        z = model.embed_all(x, edge_index, num_nodes, chunk=chunk, device=device)
        _sync(device)
    return z.detach(), time.perf_counter() - t0


def inference_cost(model: "Encoder", x: Optional[Tensor], edge_index: Tensor,
                   device: torch.device, n_new: int = 10_000, seed: int = 0) -> Dict[str, float]:
    """Seconds to embed ``n_new`` nodes as if they were new, per 10k nodes.

    What a user pays to place new items with a trained encoder
    (:meth:`~hgraph.nn.base.Encoder.embed_new`):

    * feature encoders (ramen, features): one forward on the nodes' features;
    * graph encoders (hgcn): gather the nodes' L-hop neighbourhood in the
      training graph ``edge_index`` (N nodes, global ids) and run the layers
      on that subgraph — the nodes arrive with their features and edges;
    * encoders that are not ``inductive`` (shallow, id embeddings), or no
      features: NaN (no row for a new node).

    ``n_new`` nodes drawn without replacement (all of them on a smaller graph,
    the time scaled to 10k); timed once, after a warm-up call on 64 nodes.
    """
    if x is None or not model.inductive:
        return {"infer_10k_s": float("nan")}
    n = x.shape[0]
    m = min(n_new, n)
    ids = torch.as_tensor(np.random.default_rng(seed).choice(n, m, replace=False),
                          device=device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model.embed_new(x, edge_index, ids[:64])
        _sync(device)
        t0 = time.perf_counter()
        model.embed_new(x, edge_index, ids)
        _sync(device)
        dt = time.perf_counter() - t0
    model.train(was_training)
    return {"infer_10k_s": dt * 10_000 / m}
