"""Training: the one loop (:mod:`~hgraph.train.loop`) and its parts.

``interrupt`` (signals, divergence), ``embedders`` (ids -> points), ``optimizers``,
``schedule`` (learning-rate rules), ``setup`` (device, seeds).
"""
from hgraph.train.embedders import (DirectEmbedder, Embedder, FullGraphEmbedder,  # noqa: F401
                                    SampledEmbedder, hide_pairs, make_embedder)
from hgraph.train.interrupt import (RunInterrupted, StopOnSignal,  # noqa: F401
                                    TrainingDiverged, TrainingInterrupted)
from hgraph.train.batches import Batches, StepLoss  # noqa: F401
from hgraph.train.loop import TrainResult, train  # noqa: F401
from hgraph.train.pairs import (VAL_MRR_QUERIES, VAL_RECON_SOURCES, TrainData,  # noqa: F401
                                validation_score)
from hgraph.train.optimizers import (_grads_finite, _state_finite,  # noqa: F401
                                     load_optimizer_state, make_optimizer)
from hgraph.train.schedule import _set_lr, lr_at, rate_at  # noqa: F401
from hgraph.train.setup import resolve_device, set_seed  # noqa: F401
