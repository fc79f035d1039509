"""Epochs of the fused shallow trainer, in this process or Hogwild.

``workers > 1`` runs lock-free updates from several processes on one shared
table (Hogwild, as poincare-embeddings does; gensim refuses more than one
worker).  Not bit-reproducible, so it is opt-in; ``workers=1`` is
deterministic for a seed.
"""
from __future__ import annotations

from typing import Optional

import torch

from hgraph.train.fused_config import FitConfig
from hgraph.train.fused_step import Stepper

Tensor = torch.Tensor


def _epoch(stepper: Stepper, order: Tensor, lr: float, gen: torch.Generator) -> float:
    pairs, bs = stepper.pairs, stepper.cfg.batch_size
    total = 0.0
    for i in range(0, order.numel(), bs):
        idx = order[i:i + bs]
        p = pairs.index_select(0, idx)
        total += stepper.step(p[:, 0], p[:, 1], lr, gen)
    return total


def _worker(rank: int, x: Tensor, pairs: Tensor, keys: Optional[Tensor], cfg: FitConfig,
            conn, candidates: Optional[Tensor] = None) -> None:
    torch.set_num_threads(1)
    stepper = Stepper(x, pairs, keys, cfg, candidates)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + rank + 1)
    while True:
        msg = conn.recv()
        if msg is None:
            return
        order, lr = msg
        conn.send(_epoch(stepper, order, lr, gen))


class _Workers:
    """Runs epochs in this process (``workers`` 1) or spread over ``workers`` forked
    processes that update the same shared-memory table (Hogwild)."""

    def __init__(self, x: Tensor, pairs: Tensor, keys: Optional[Tensor], cfg: FitConfig,
                 candidates: Optional[Tensor] = None):
        self.procs, self.conns, self.stepper = [], [], None
        if cfg.workers == 1:
            self.stepper = Stepper(x, pairs, keys, cfg, candidates)
            return
        import torch.multiprocessing as mp
        ctx = mp.get_context("fork")
        x.share_memory_()
        for rank in range(cfg.workers):
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(rank, x, pairs, keys, cfg, theirs, candidates),
                            daemon=True)
            p.start()
            self.procs.append(p)
            self.conns.append(mine)

    def epoch(self, order: Tensor, lr: float, gen: torch.Generator) -> float:
        """One pass over ``pairs[order]``; returns the summed loss."""
        if self.stepper is not None:
            return _epoch(self.stepper, order, lr, gen)
        for conn, part in zip(self.conns, order.chunk(len(self.conns))):
            conn.send((part, lr))
        return sum(conn.recv() for conn in self.conns)

    def close(self) -> None:
        for conn in self.conns:
            conn.send(None)
        for p in self.procs:
            p.join(timeout=10)
