"""Optimisers: geoopt's Riemannian Adam / SGD over a model's parameters, the
row-sparse variants for tables, and state loading that keeps exact resumes."""
from __future__ import annotations

from typing import Any, Dict

import geoopt
import torch

from hgraph.optim import (SparseBallRiemannianAdam, SparseBallRiemannianSGD, is_ball,
                          row_grad)


class _Optimizers:
    """Several optimisers stepped as one (sparse table + dense rest)."""

    def __init__(self, opts):
        self.opts = opts

    @property
    def param_groups(self):
        return [g for o in self.opts for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True):
        for o in self.opts:
            o.zero_grad(set_to_none=set_to_none)

    def step(self):
        for o in self.opts:
            o.step()

    def state_dict(self):
        return {"optimizers": [o.state_dict() for o in self.opts]}

    def load_state_dict(self, state):
        for o, s in zip(self.opts, state["optimizers"]):
            o.load_state_dict(s)


def make_optimizer(model: torch.nn.Module, cfg, lr: float):
    """geoopt RiemannianAdam / RiemannianSGD over every parameter.

    ManifoldParameters (shallow tables, hyperbolic biases) get Riemannian
    updates; curvatures and Euclidean weights ordinary ones (geoopt treats a
    plain tensor as Euclidean).  Weight decay applies to Euclidean weights only.
    A shallow table (looked up with sparse gradients) gets a sparse variant,
    which updates only the rows in the batch: at 84k nodes the dense update of
    every row's moments was 60% of the step time.  On a Poincaré ball that is
    :mod:`hgraph.optim`'s closed form of geoopt's sparse update; elsewhere
    geoopt's own.
    """
    sparse_ids = {id(p) for p in model.sparse_parameters()}
    sparse = [p for p in model.parameters() if id(p) in sparse_ids]
    manifold_params = [p for p in model.parameters()
                       if isinstance(p, geoopt.ManifoldParameter) and id(p) not in sparse_ids]
    other = [p for p in model.parameters()
             if not isinstance(p, geoopt.ManifoldParameter) and id(p) not in sparse_ids]
    groups = []
    if manifold_params:
        groups.append({"params": manifold_params, "weight_decay": 0.0})
    if other:
        groups.append({"params": other, "weight_decay": cfg.weight_decay})
    opts = []
    # tables on a ball: hgraph.optim's closed-form row updates (geoopt's update; 13 ms
    # instead of 23 ms per 1024-pair step on WordNet nouns, benchmarks/profile_shallow.py);
    # other manifolds: geoopt's sparse optimisers
    on_ball = all(isinstance(p, geoopt.ManifoldParameter) and is_ball(p.manifold)
                  for p in sparse)
    if cfg.optimizer == "rsgd":
        if groups:
            opts.append(geoopt.optim.RiemannianSGD(groups, lr=lr, stabilize=10))
        if sparse:
            opts.append(SparseBallRiemannianSGD(sparse, lr=lr) if on_ball
                        else geoopt.optim.SparseRiemannianSGD(sparse, lr=lr))
    else:
        if groups:
            opts.append(geoopt.optim.RiemannianAdam(groups, lr=lr, stabilize=10))
        if sparse:
            opts.append(SparseBallRiemannianAdam(sparse, lr=lr) if on_ball
                        else geoopt.optim.SparseRiemannianAdam(sparse, lr=lr))
    return opts[0] if len(opts) == 1 else _Optimizers(opts)


def load_optimizer_state(opt, state: Dict[str, Any]) -> None:
    """``opt.load_state_dict(state)``, keeping every per-parameter value's type.

    ``torch.optim.Adam.__setstate__`` (run by ``load_state_dict``; geoopt's
    RiemannianAdam inherits it) turns the saved ``step`` counts, Python ints,
    into float32 tensors.  geoopt then computes the bias corrections
    ``beta ** step`` in float32 instead of float64, so every step after a resume
    differs from the uninterrupted run's in the last bits (1e-7 relative on the
    loss) and the runs drift apart.  The saved values are put back as they were.
    """
    if isinstance(opt, _Optimizers):
        for o, s in zip(opt.opts, state["optimizers"]):
            load_optimizer_state(o, s)
        return
    opt.load_state_dict(state)
    params = [p for g in opt.param_groups for p in g["params"]]
    saved_ids = [i for g in state["param_groups"] for i in g["params"]]
    for i, p in zip(saved_ids, params):
        for key, value in state["state"].get(i, {}).items():
            if not torch.is_tensor(value):
                opt.state[p][key] = value



def _state_finite(model) -> bool:
    return all(torch.isfinite(t).all() for t in model.state_dict().values()
               if t.is_floating_point())


def _grads_finite(model) -> bool:
    for p in model.parameters():
        g = p.grad
        if g is None:
            continue
        if g.is_sparse:
            g = row_grad(g)[1]
        if not torch.isfinite(g).all():
            return False
    return True


