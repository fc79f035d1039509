"""What a task gives the one training loop (:func:`hgraph.train.loop.train`).

A task's training data is a :class:`Batches`: how many examples an epoch
permutes, the loss of one step over a slice of that permutation, what is
scored on validation, and the state it keeps between steps.  The loop owns
everything else — epochs, the permutation, the optimiser step, non-finite
guards, model selection, early stopping, time caps, checkpoints, resume and
signals — so every task gets them the same way.  Node tasks use
:class:`hgraph.train.pairs.TrainData` (positive pairs + negatives); the item
-> category task :class:`hgraph.tasks.item_batches.ItemBatches`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np
import torch


@dataclass
class StepLoss:
    """One step's result: ``objective`` is differentiated; ``loss`` (a scalar
    tensor, the global batch's under torchrun) and ``reg`` (a float) are
    logged, weighted by ``n`` examples."""
    objective: torch.Tensor
    loss: torch.Tensor
    reg: float
    n: int


class Batches:
    """The interface of a task's training data (declared, not probed).

    ``val_name``: the history key of validation (``val_<name>``);
    ``validate_at_start``: score the untrained model as epoch 0 (it can be the
    kept model); ``distributed``: can train under torchrun; ``has_reg``: the
    epoch records hold the regulariser's mean; ``scheduled``: the loop sets
    every group's rate from ``train.lr`` and its schedule (else each group
    keeps its own rate, scaled by the schedule's factor).
    """

    val_name: str = "ap"
    validate_at_start: bool = False
    distributed: bool = True
    has_reg: bool = False
    scheduled: bool = True

    def num_examples(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def rng_seed(self, seed: int) -> int:
        """The seed of the loop's numpy generator (permutations, negatives)."""
        return seed

    def optimizer(self, model, cfg):  # pragma: no cover - interface
        raise NotImplementedError

    def begin_epoch(self, model, epoch: int) -> None:
        """Before the first step of 0-based ``epoch`` (not on a mid-epoch resume)."""

    def loss(self, model, net, rows: np.ndarray, rng: np.random.Generator, epoch: int, cfg,
             dist, device) -> StepLoss:  # pragma: no cover - interface
        raise NotImplementedError

    def end_epoch(self, model) -> None:
        """After the last step of an epoch, before validation."""

    def epoch_stats(self, model) -> Dict[str, float]:
        """Numbers added to each epoch's history record (the untrained epoch 0's too)."""
        return {}

    def validates(self) -> bool:
        return False

    def validate(self, model) -> Optional[float]:
        return None

    def state(self) -> Dict[str, Any]:
        """What a mid-epoch checkpoint needs besides the model (e.g. this epoch's mined
        negatives)."""
        return {}

    def load_state(self, state: Dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""

    def snapshot(self, model) -> Any:
        """What the kept (best) model needs besides its state dict (None: nothing)."""
        return None

    def restore(self, model, snap: Any) -> None:
        """Inverse of :meth:`snapshot`."""
