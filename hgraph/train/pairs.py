"""The node tasks' training data: positive pairs and their negatives.

:class:`TrainData` is the :class:`~hgraph.train.batches.Batches` of
reconstruction, link prediction and inductive placement.  One step: a batch
of positive pairs ``(u, v)`` (u the anchor — a child or descendant — and v
its parent or ancestor), ``K`` filtered negatives per anchor, the unique
nodes among them embedded once by an :class:`~hgraph.train.embedders.Embedder`,
the loss from :data:`hgraph.losses.LOSSES`, plus an optional graph
regulariser (RAMEN-style).  Validation: average precision, parent MRR or
the training closure's reconstruction MAP (:func:`validation_score`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch

from hgraph.data.pairs import NegativeSampler
from hgraph.losses import LOSSES, GraphRegularizer, lambda_at
from hgraph.train.batches import Batches, StepLoss
from hgraph.train.optimizers import make_optimizer

Tensor = torch.Tensor


@dataclass
class TrainData(Batches):
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

    # ---- the Batches interface
    @property
    def has_reg(self) -> bool:                      # type: ignore[override]
        return self.regularizer is not None

    @property
    def val_name(self) -> str:                      # type: ignore[override]
        return self.val_metric

    def num_examples(self) -> int:
        return len(self.positives)

    def optimizer(self, model, cfg):
        return make_optimizer(model, cfg, cfg.lr)

    def validate(self, model) -> Optional[float]:
        return validation_score(model, self)

    def loss(self, model, net, rows, rng, epoch, cfg, dist, device) -> StepLoss:
        """Positive pairs ``positives[rows]``, their negatives, the regulariser's
        triplets; under torchrun this rank's slice of the global batch."""
        b = self.positives[rows]
        u, v = b[:, 0], b[:, 1]
        neg, mask = self.sampler.sample(u, cfg.negatives, rng)
        reg_samples = None
        lam = 0.0
        if self.regularizer is not None:
            lam = lambda_at(epoch, self.reg_lambda, self.reg_warmup)
            if lam > 0:
                reg_samples = self.regularizer.sample(u, rng)
        # this rank's slice of the global batch (all of it in one process)
        sh = dist.shard(len(u))
        B = len(u)
        u, v, neg, mask = u[sh.rows], v[sh.rows], neg[sh.rows], mask[sh.rows]
        reg_samples, reg_w = dist.shard_samples(reg_samples)
        parts = [u, v, neg.ravel()]
        if reg_samples is not None:
            parts.append(self.regularizer.nodes(reg_samples))
        ids_np, inv = np.unique(np.concatenate(parts), return_inverse=True)
        ids = torch.from_numpy(ids_np).to(device)
        if self.embedder.hides_pairs:      # the global batch's pairs, on every rank
            z = self.embedder(net, ids, pairs=(torch.from_numpy(b[:, 0]).to(device),
                                                torch.from_numpy(b[:, 1]).to(device)))
        else:
            z = self.embedder(net, ids)
        n = len(u)
        iu = torch.from_numpy(inv[:n]).to(device)
        iv = torch.from_numpy(inv[n:2 * n]).to(device)
        ineg = torch.from_numpy(inv[2 * n:2 * n + neg.size].reshape(neg.shape)).to(device)
        # weight W * n / B: the ranks' mean gradient is the global batch's
        loss = sh.weight * LOSSES[cfg.loss](model.manifold, z[iu], z[iv], z[ineg],
                                            torch.from_numpy(mask).to(device))
        reg_val = 0.0
        if reg_samples is not None:
            def local(g, _ids=ids_np):  # global ids -> rows of z
                return torch.from_numpy(np.searchsorted(_ids, g)).to(device)
            reg_losses = self.regularizer.loss(model.manifold, z, local, reg_samples)
            reg = sum(reg_w[k] * r for k, r in reg_losses.items())
            reg_val = float(reg.detach())
            loss = loss + lam * reg
        # lr_unit pair: the sum over the step's pairs, so lr is a rate per pair
        objective = loss * B if cfg.lr_unit == "pair" else loss
        return StepLoss(objective, loss, reg_val, B)


#: validation parent MRR ranks at most this many validation edges (a fixed, seeded
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
