"""Data-parallel training on ``torch.distributed`` (torchrun, DDP, gloo / NCCL).

``torchrun --nproc_per_node N pipelines/run.py ...`` starts N processes with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``
set; :func:`session` joins them into one process group (and destroys it on
the way out, whatever happens), :func:`current` hands the loop a
:class:`Context` describing it.  Without those variables everything here is
the identity: one process, no collective, the single-process path bit for bit.

How a step stays the single-process step whatever the world size W:

* every rank draws the *same global batch* (positives, negatives, regulariser
  triplets) from the same seeded generator, so the random stream does not
  depend on W;
* each rank keeps an equal slice of it (:meth:`Context.shard`) and scales its
  mean loss by ``W * n_r / n`` (``n_r`` rows of ``n``), so the average of the
  W gradients — what DDP computes — is the gradient of the global batch's
  mean loss, for any split of ``n`` rows, even a rank with none;
* dense parameters are averaged by ``DistributedDataParallel``; row-sparse
  tables (:meth:`hgraph.nn.base.Encoder.sparse_parameters`) are left out of
  DDP and summed by :meth:`Context.sync_sparse` (an ``all_gather`` of the
  touched rows and their gradients), which also works on NCCL, which has no
  sparse all-reduce, and never meets DDP's "unused sparse parameter" failure;
* the step's loss and its finiteness are agreed on by one small all-reduce
  (:meth:`Context.step_values`), so every rank skips the same bad steps and
  logs the same epoch loss; validation runs on rank 0 and its score, like the
  early-stopping decision, is broadcast (:meth:`Context.from_main`,
  :meth:`Context.broadcast`); a signal on any rank stops every rank at the
  same step (:meth:`Context.agree_signal`).

The ranks differ from one process only in the order of floating-point sums
(about 1e-16 relative per step in float64).  Dropout and neighbour sampling
draw per rank and are not world-size invariant.

Timeouts: every collective gives up after ``HGRAPH_DIST_TIMEOUT`` seconds
(default 1800, enough for rank 0's final evaluation while the others wait);
a rank that dies makes the others fail at their next collective, and
:func:`failure_message` turns that into one line.
"""
from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist

Tensor = torch.Tensor

#: what torchrun sets for every worker; all of them must be present
ENV_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
DEFAULT_TIMEOUT_S = 1800.0


def timeout_s() -> float:
    """Seconds a collective may wait: ``HGRAPH_DIST_TIMEOUT`` or 1800."""
    raw = os.environ.get("HGRAPH_DIST_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"HGRAPH_DIST_TIMEOUT must be a number of seconds, got {raw!r}") \
            from None
    if not value > 0:
        raise ValueError(f"HGRAPH_DIST_TIMEOUT must be > 0, got {raw!r}")
    return value


class MainRankFailed(RuntimeError):
    """Raised on the other ranks when a step that rank 0 runs alone failed there."""


@dataclass(frozen=True)
class Shard:
    """This rank's rows ``[start, stop)`` of a global batch of ``n`` rows, and the
    factor ``weight`` its mean loss is scaled by (``W * (stop - start) / n``).

    A rank with no rows of a non-empty batch takes one row with weight 0: it
    still runs forward and backward (the collectives need every rank) and
    contributes nothing.
    """
    start: int
    stop: int
    weight: float

    @property
    def rows(self) -> slice:
        return slice(self.start, self.stop)


def shard(n: int, rank: int, world_size: int) -> Shard:
    """Rows of rank ``rank`` when ``n`` rows are split into ``world_size``
    contiguous slices whose sizes differ by at most one."""
    if world_size == 1:
        return Shard(0, n, 1.0)
    start, stop = n * rank // world_size, n * (rank + 1) // world_size
    if n == 0:
        return Shard(0, 0, 0.0)
    if stop == start:                       # fewer rows than ranks: one row, no weight
        start = min(start, n - 1)
        return Shard(start, start + 1, 0.0)
    return Shard(start, stop, world_size * (stop - start) / n)


@dataclass(frozen=True)
class Context:
    """Where this process stands in the process group (``world_size`` 1: alone).

    Every method is a collective when ``world_size > 1``: all ranks must call
    it, in the same order.  With one process none communicates.
    """
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    # ------------------------------------------------------------ batches
    def shard(self, n: int) -> Shard:
        """This rank's slice of a global batch of ``n`` rows (see :func:`shard`)."""
        return shard(n, self.rank, self.world_size)

    def shard_samples(self, samples: Optional[Dict[str, np.ndarray]]
                      ) -> Tuple[Optional[Dict[str, np.ndarray]], Dict[str, float]]:
        """This rank's rows of each regulariser sample array and the weight of
        each kind (a kind's term is a mean over its rows).  ``huse_dist`` goes
        with the ``huse`` pairs."""
        if samples is None:
            return None, {}
        if not self.active:
            return samples, {k: 1.0 for k in samples}
        out, weights = {}, {}
        for key, arr in samples.items():
            sh = self.shard(len(arr))
            out[key], weights[key] = arr[sh.rows], sh.weight
        return out, weights

    # ------------------------------------------------------------ model
    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` in DistributedDataParallel over its dense trainable
        parameters (the row-sparse tables are left to :meth:`sync_sparse`);
        ``model`` itself when alone or when nothing dense is trained."""
        if not self.active:
            return model
        sparse = {id(p) for p in model.sparse_parameters()}
        ignore = [n for n, p in model.named_parameters() if id(p) in sparse]
        if not any(p.requires_grad and id(p) not in sparse for p in model.parameters()):
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP
        DDP._set_params_and_buffers_to_ignore_for_model(model, ignore)
        ids = [device.index if device.index is not None else torch.cuda.current_device()] \
            if device.type == "cuda" else None
        # buffers (degrees, curvature) are computed identically on every rank
        return DDP(model, device_ids=ids, broadcast_buffers=False)

    def sync_sparse(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Average the row-sparse gradients of ``params`` over the ranks, in place.

        Each rank's touched rows and their gradients are all-gathered (padded
        to the longest, the padding cut off again) and summed by
        ``coalesce``, identically on every rank.  Dense all-gathers only, so
        it runs on gloo and NCCL alike.
        """
        if not self.active:
            return
        for p in params:
            g = p.grad
            if g is None:
                g = torch.sparse_coo_tensor(torch.zeros(1, 0, dtype=torch.long, device=p.device),
                                            p.new_zeros((0,) + tuple(p.shape[1:])), p.shape)
            g = g.coalesce()
            rows, vals = g.indices()[0], g.values().contiguous()
            count = torch.tensor([len(rows)], device=rows.device)
            counts = [torch.zeros_like(count) for _ in range(self.world_size)]
            dist.all_gather(counts, count)
            counts = [int(c) for c in counts]
            # rows and their values as one byte string per rank, padded to the longest
            row_b = rows.element_size()
            val_b = vals.element_size() * (vals[0].numel() if len(vals) else
                                           int(np.prod(p.shape[1:], dtype=np.int64)))
            width = row_b + val_b
            mine = torch.cat([rows.view(torch.uint8), vals.reshape(-1).view(torch.uint8)])
            buf = torch.zeros(max(counts) * width, dtype=torch.uint8, device=rows.device)
            buf[:len(mine)] = mine
            bufs = [torch.empty_like(buf) for _ in range(self.world_size)]
            dist.all_gather(bufs, buf)
            rows = torch.cat([b[:c * row_b].view(torch.int64) for b, c in zip(bufs, counts)])
            vals = torch.cat([b[c * row_b:c * width].view(vals.dtype).reshape(
                (c,) + tuple(vals.shape[1:])) for b, c in zip(bufs, counts)]) / self.world_size
            p.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), vals, p.shape,
                                             check_invariants=False).coalesce()

    # ------------------------------------------------------------ agreement
    def step_values(self, bad: bool, loss: Tensor, reg: float, signum: Optional[int] = None,
                    signals: Sequence[int] = ()) -> Tuple[bool, float, float, Optional[int]]:
        """(any rank's loss non-finite, the global batch's loss, its regulariser
        value, the first of ``signals`` any rank has received) from this rank's
        weighted ``loss`` and ``reg`` and its pending ``signum``: one all-reduce."""
        if not self.active:
            return bad, float(loss.detach()), reg, signum
        t = torch.tensor([float(bad), float(loss.detach()), float(reg),
                          *[float(signum == s) for s in signals]], dtype=torch.float64,
                         device=loss.device)
        dist.all_reduce(t)
        t = t.cpu().tolist()
        got = next((s for s, n in zip(signals, t[3:]) if n > 0), None)
        return t[0] > 0, t[1] / self.world_size, t[2] / self.world_size, got

    def agree_signal(self, signum: Optional[int]) -> Optional[int]:
        """The signal any rank received (the largest number), None if none did."""
        if not self.active:
            return signum
        t = torch.tensor([signum or 0], dtype=torch.int64, device=self._device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t) or None

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (pickled)."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._device())
        return box[0]

    def from_main(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """``fn(*args, **kwargs)`` run on rank 0 alone, its result on every rank.

        When it raises, rank 0 re-raises and the other ranks raise
        :class:`MainRankFailed` at once instead of waiting for a timeout."""
        if not self.active:
            return fn(*args, **kwargs)
        out, error = None, None
        if self.is_main:
            try:
                out = fn(*args, **kwargs)
            except Exception as e:
                self.broadcast((None, f"{type(e).__name__}: {e}"))
                raise
        out, error = self.broadcast((out, error))
        if error is not None:
            raise MainRankFailed(error)
        return out

    def on_main(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """``fn(*args, **kwargs)`` on rank 0 (e.g. a write), None elsewhere; no collective."""
        return fn(*args, **kwargs) if self.is_main else None

    def all_gather(self, obj: Any) -> List[Any]:
        """Every rank's ``obj``, in rank order."""
        if not self.active:
            return [obj]
        out: List[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def _device(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def from_env() -> bool:
    """True when torchrun's variables describe more than a single process."""
    return all(v in os.environ for v in ENV_VARS)


def current() -> Context:
    """The process group this process is in (one process when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Context()
    return Context(rank=dist.get_rank(), world_size=dist.get_world_size(),
                   local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def backend() -> str:
    """gloo on CPU; with CUDA, NCCL for CUDA tensors and gloo for CPU ones."""
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


@contextlib.contextmanager
def session() -> Iterator[Context]:
    """Join torchrun's process group for the duration of the block.

    Without torchrun's variables: one process, nothing is started.  The
    group is destroyed in ``finally``, after a failure too, so no process
    aborts at exit with a group still open.
    """
    if not from_env() or dist.is_initialized():
        yield current()
        return
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend(), timeout=datetime.timedelta(seconds=timeout_s()))
    try:
        yield current()
    finally:
        dist.destroy_process_group()


def _raised_in_torch_distributed(exc: BaseException) -> bool:
    """gloo reports a dead peer as a plain RuntimeError; it comes from a collective."""
    tb = exc.__traceback__
    while tb is not None:
        if f"torch{os.sep}distributed{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def failure_message(exc: BaseException) -> Optional[str]:
    """One line for a failed collective or rendezvous (a peer died, a timeout);
    None for any other exception."""
    if isinstance(exc, MainRankFailed):
        return f"rank 0 failed ({exc}); this rank stops too"
    if not isinstance(exc, dist.DistError) and not _raised_in_torch_distributed(exc):
        return None
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    rank = os.environ.get("RANK", "?")
    world = os.environ.get("WORLD_SIZE", "?")
    return (f"distributed training failed on rank {rank} of {world}: another process "
            f"stopped or did not answer within {timeout_s():g} s "
            f"(HGRAPH_DIST_TIMEOUT) [{type(exc).__name__}: {first}]")
