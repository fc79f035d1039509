"""The fused shallow trainer's hyperparameters (:class:`FitConfig`), checked when built.

Filled by :func:`hgraph.train.fused.fit_model` from the run's ``train`` section, or by
hand for :func:`hgraph.train.fused.fit`; a bad value raises
:class:`hgraph.errors.HGraphInputError` naming the field.
"""
from __future__ import annotations

from dataclasses import dataclass

from hgraph.errors import HGraphInputError


@dataclass
class FitConfig:
    """Hyperparameters of :func:`hgraph.train.fused.fit` (every rate is per positive pair)."""
    dim: int = 10                 # intrinsic dimension (points have dim + 1 coordinates)
    negatives: int = 50
    batch_size: int = 1024
    lr: float = 0.5               # per pair
    epochs: int = 200
    burnin: int = 0               # epochs at lr / burnin_lr_divisor at the start
    burnin_lr_divisor: float = 10.0
    #: 'constant'; 'plateau': lr x 0.2 when on_epoch's score stalls; 'linear': after burn-in
    #: the rate falls linearly to lr / n over the n remaining epochs (a fixed budget)
    schedule: str = "constant"
    patience: int = 4             # scores without a new best before a drop (or the stop)
    drops: int = 3                # 'plateau': rate drops before a stall stops training
    max_step: float = 0.1         # cap on a row's move per step (hyperbolic distance)
    max_radius: float = 20.0      # rows are kept within this distance of the origin
    init: str = "uniform"         # 'uniform' (tangent U(-init_scale, init_scale) at the origin) or 'cone'
    init_scale: float = 1e-3
    init_radius: float = 8.0      # 'cone': deepest level's distance from the origin
    filter_ancestors: bool = True
    #: share of the negatives drawn among the positive's descendants (for a near ancestor:
    #: u's siblings, cousins and descendants, the nodes u's ancestors have to beat in the
    #: ranking) instead of uniformly; each negative's logit gets its importance weight,
    #: so the loss estimates the same objective as uniform draws, with less variance
    local_negatives: float = 0.0
    #: share of the negatives drawn among u's ``near_k`` nearest non-ancestors in the current
    #: table (recomputed every ``near_every`` epochs, counted as training time), importance-
    #: weighted as ``local_negatives``: the nodes that outrank u's ancestors are seldom among
    #: uniform draws (WordNet nouns: a node's ~750 draws an epoch out of 82k nodes)
    near_negatives: float = 0.0
    near_k: int = 64
    near_every: int = 10
    near_method: str = "auto"     # hgraph.train.fused_negatives.nearest_non_ancestors
    #: False: no importance weights on the near draws, so the loss itself leans on the
    #: intruders (with K uniform negatives out of n nodes a node at u's ancestor's distance
    #: weighs K / n in the normaliser: ~1,600 of them on nouns double it)
    near_weighted: bool = True
    #: logits are -d / temperature: below 1 the loss is satisfied at proportionally smaller
    #: distances, so rows drift less far out (the loss always pays for spreading outward)
    temperature: float = 1.0
    #: distances without the Minkowski product's cancellation (lorentz.cosh_dist_minus_one)
    exact_distance: bool = True
    workers: int = 1
    seed: int = 0
    time_limit: float = 0.0       # seconds of training (0 = none)

    def __post_init__(self):
        for name in ("dim", "negatives", "batch_size", "workers"):
            if getattr(self, name) < 1:
                raise HGraphInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise HGraphInputError(f"lr must be > 0, got {self.lr}")
        if self.burnin_lr_divisor < 1:
            raise HGraphInputError("burnin_lr_divisor must be >= 1 (burn-in runs at lr / this; "
                                   f"poincare-embeddings' -burnin_multiplier 0.01 is 100), got "
                                   f"{self.burnin_lr_divisor}")
        if not self.temperature > 0:
            raise HGraphInputError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.near_negatives < 1.0:
            raise HGraphInputError(f"near_negatives is a share in [0, 1), got "
                                   f"{self.near_negatives}")
        if self.near_negatives and (self.local_negatives or self.workers > 1):
            raise HGraphInputError("near_negatives runs with one worker and without "
                                   "local_negatives")
        if self.near_k < 1 or self.near_every < 1:
            raise HGraphInputError("near_k and near_every must be >= 1")
        if not 0.0 <= self.local_negatives < 1.0:
            raise HGraphInputError(f"local_negatives is a share in [0, 1), got "
                                   f"{self.local_negatives}")
        if self.drops < 0:
            raise HGraphInputError(f"drops must be >= 0, got {self.drops}")
        if self.schedule not in ("constant", "plateau", "linear"):
            raise HGraphInputError(f"schedule must be 'constant', 'plateau' or 'linear', got "
                                   f"{self.schedule!r}")
        if self.init not in ("uniform", "cone"):
            raise HGraphInputError(f"init must be 'uniform' or 'cone', got {self.init!r}")
