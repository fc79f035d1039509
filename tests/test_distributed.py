"""Data-parallel training (hgraph.distributed): the same result at any world size.

Ranks are forked from the test process (it has imported torch and
torch-geometric already, which would cost each fresh process ~10 s on two
cores) and run ``hgraph.cli.main`` with torchrun's environment variables, so
they take the command line's path: process group from the environment, gloo,
DDP, rank 0 alone writing the run folder.  One torch thread per rank.  All
tests are in one xdist group (``--dist loadgroup``), so they run one after
another on one worker.

Tolerance of the invariance: float64; one process and two differ only in the
order of floating-point sums (each rank sums its slice, the ranks' gradients
are then added), about 1e-16 relative per step, so after a few epochs on a
small tree the losses agree to ~1e-15 and the metrics to 1e-9 relative.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from hgraph import distributed as D

pytestmark = pytest.mark.xdist_group("distributed")

#: the small generated tree of the golden runs (~30 nodes), features of dimension 8
TREE = ["--gen-root-children", "4", "--gen-min-children", "2", "--gen-max-children", "4",
        "--gen-leaf-prob", "0.1", "0.3", "--feature-dim", "8"]
COMMON = ["--dtype", "float64", "--no-progress", "--no-plots", "--no-save-embeddings",
          "--seed", "0", "--recon-sample", "0"]
#: batch sizes that split unevenly over two ranks (25 -> 12 + 13; the last batch of an
#: epoch is shorter), so the slice weights are exercised
RUNS = {
    "shallow": ["--encoder", "shallow", "--dim", "5", "--epochs", "6", "--batch-size", "25",
                "--negatives", "10", "--burnin", "2", "--eval-every", "3", "--lr", "0.05",
                "--manifold", "poincare"],     # the loop (the fused trainer is one process)
    "ramen": ["--encoder", "ramen", "--dim", "4", "--hidden", "8", "--epochs", "6",
              "--batch-size", "7", "--reg-lambda", "1.0", "--reg-warmup", "2",
              "--eval-every", "3", "--inductive-frac", "0.1", "--lr", "0.01"],
    "hgcn_full": ["--encoder", "hgcn", "--dim", "4", "--hidden", "8", "--epochs", "6",
                  "--full-batch", "--hide-supervision", "--eval-every", "3", "--lr", "0.05"],
}
VOLATILE = ("time", "per_s", "_10k_s", "memory", "peak", "_mb")
RTOL = 1e-9
JOIN_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, argv, log: str, env) -> None:
    """One rank: torchrun's variables, then the command line's ``main``."""
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1", **env})
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", closefd=False)       # not the test runner's capture objects
    sys.stderr = open(2, "w", closefd=False)
    for s in (signal.SIGINT, signal.SIGTERM):      # whatever the test runner installed
        signal.signal(s, signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL)
    code = 1
    try:
        torch.set_num_threads(1)
        from hgraph.cli import main
        code = main(list(argv))
    except BaseException:               # noqa: BLE001 - reported in the log, exit status 1
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Ranks:
    """``world`` forked ranks of one command; ``logs[r]`` holds rank r's output."""

    def __init__(self, argv, tmp: Path, world: int = 2, env=None, tag: str = "run"):
        import hgraph.cli  # noqa: F401 - imported once here, not in every fork
        import hgraph.pipeline  # noqa: F401
        ctx = multiprocessing.get_context("fork")
        port = _free_port()
        self.logs = [tmp / f"{tag}_rank{r}.log" for r in range(world)]
        self.procs = [ctx.Process(target=_rank_main,
                                  args=(r, world, port, argv, str(self.logs[r]), env or {}))
                      for r in range(world)]
        for p in self.procs:
            p.start()

    def log(self, r: int) -> str:
        return self.logs[r].read_text() if self.logs[r].exists() else ""

    def join(self, timeout: float = JOIN_S):
        t0 = time.monotonic()
        try:
            for p in self.procs:
                p.join(max(1.0, timeout - (time.monotonic() - t0)))
            hung = [r for r, p in enumerate(self.procs) if p.is_alive()]
            assert not hung, f"ranks {hung} still running after {timeout} s:\n{self.log(0)}"
        finally:
            self.kill()
        return [p.exitcode for p in self.procs]

    def kill(self):
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(10)


def _argv(name: str, out: Path, run: str, *extra):
    return [*TREE, *COMMON, *RUNS[name], "--out", str(out), "--name", run, *extra]


def _one_process(argv):
    from hgraph.cli import parse_config
    from hgraph.pipeline import run
    cfg, _ = parse_config(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(cfg).run_dir
    finally:
        torch.set_num_threads(threads)


def _two_processes(argv, tmp: Path, tag: str = "run", env=None):
    ranks = Ranks(argv, tmp, env=env, tag=tag)
    codes = ranks.join()
    assert codes == [0, 0], (codes, ranks.log(0)[-3000:], ranks.log(1)[-3000:])
    return ranks


def _metrics(run_dir: Path):
    m = json.loads((run_dir / "metrics.json").read_text())
    rows = [{k: v for k, v in row.items() if not any(s in k for s in VOLATILE)}
            for row in m["per_seed"]]
    hist = json.loads((run_dir / "history.json").read_text())
    return rows, hist, m["run"]


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=RTOL,
                                                                 abs_tol=1e-12)
    return a == b


def _assert_close_runs(one: Path, two: Path):
    m1, h1, _ = _metrics(one)
    m2, h2, _ = _metrics(two)
    assert sorted(m1[0]) == sorted(m2[0])
    diff = {k: (m1[0][k], m2[0][k]) for k in m1[0] if not _close(m1[0][k], m2[0][k])}
    assert not diff, diff
    assert len(h1[0]) == len(h2[0])
    for r1, r2 in zip(h1[0], h2[0]):
        for k in ("loss", "reg", "val_ap"):
            assert _close(r1.get(k), r2.get(k)), (k, r1, r2)
    w1 = torch.load(one / "model_seed0.pt", weights_only=True)
    w2 = torch.load(two / "model_seed0.pt", weights_only=True)
    assert w1.keys() == w2.keys()
    for k in w1:
        assert torch.allclose(w1[k], w2[k], rtol=1e-9, atol=1e-12), k


# ---------------------------------------------------------------- slices of a batch
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_cover_the_batch_and_weights_give_the_global_mean(world):
    """For every batch size: the slices are disjoint and cover the rows, sizes differ
    by at most one, and (1/W) sum_r weight_r * mean(slice_r) is the global mean —
    what DDP's average of the ranks' gradients relies on."""
    rng = np.random.default_rng(0)
    for n in range(0, 12):
        x = rng.normal(size=n)
        shards = [D.shard(n, r, world) for r in range(world)]
        taken = [s for s in shards if s.weight > 0]
        rows = np.concatenate([np.arange(n)[s.rows] for s in taken]) if taken else []
        assert list(rows) == list(range(n))
        sizes = [s.stop - s.start for s in taken]
        assert not sizes or max(sizes) - min(sizes) <= 1
        for s in shards:           # a rank without rows still holds one, at weight 0
            assert (s.stop - s.start == 1 and s.weight == 0.0) or s in taken or n == 0
        if n:
            avg = sum(s.weight * x[s.rows].mean() for s in shards) / world
            assert avg == pytest.approx(x.mean(), rel=1e-12, abs=1e-15)


def test_one_process_context_is_the_identity():
    ctx = D.Context()
    assert not ctx.active and ctx.is_main
    assert ctx.shard(5) == D.Shard(0, 5, 1.0)
    samples = {"ancestor": np.zeros((3, 3), dtype=np.int64)}
    same, weights = ctx.shard_samples(samples)
    assert same is samples and weights == {"ancestor": 1.0}
    model = torch.nn.Linear(2, 2)
    model.sparse_parameters = lambda: []
    assert ctx.wrap(model, torch.device("cpu")) is model
    loss = torch.tensor(0.25, dtype=torch.float64)
    assert ctx.step_values(False, loss, 0.5, 2) == (False, 0.25, 0.5, 2)
    assert ctx.broadcast({"a": 1}) == {"a": 1} and ctx.all_gather(3) == [3]
    assert ctx.agree_signal(None) is None and ctx.agree_signal(2) == 2


def test_timeout_from_the_environment(monkeypatch):
    monkeypatch.setenv("HGRAPH_DIST_TIMEOUT", "12.5")
    assert D.timeout_s() == 12.5
    monkeypatch.setenv("HGRAPH_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="HGRAPH_DIST_TIMEOUT"):
        D.timeout_s()
    monkeypatch.delenv("HGRAPH_DIST_TIMEOUT")
    assert D.timeout_s() == D.DEFAULT_TIMEOUT_S


# ---------------------------------------------------------------- collectives, two ranks
def _collectives_main(rank: int, port: int, log: str) -> None:
    """Rank ``rank`` of 2: the sparse-gradient average and rank 0's failures; exit 0
    when every check held (the failing check is in the log)."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    sys.stderr = open(2, "w", closefd=False)
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port), "HGRAPH_DIST_TIMEOUT": "60"})
    code = 1
    try:
        torch.set_num_threads(1)
        with D.session() as ctx:
            assert ctx.active and ctx.rank == rank and ctx.world_size == 2
            for dtype in (torch.float32, torch.float64):
                # rank 0 touches rows 1, 4 (twice); rank 1 rows 4, 7; a third table
                # only rank 0 touches (rank 1 has no gradient at all)
                p = torch.nn.Parameter(torch.zeros(9, 3, dtype=dtype))
                q = torch.nn.Parameter(torch.zeros(5, 2, dtype=dtype))
                rows = {0: [1, 4, 4], 1: [4, 7]}
                vals = {r: torch.arange(len(rows[r]) * 3, dtype=dtype).reshape(-1, 3) + 10 * r
                        for r in rows}
                p.grad = torch.sparse_coo_tensor(torch.tensor([rows[rank]]), vals[rank], p.shape)
                q.grad = torch.sparse_coo_tensor(torch.tensor([[2]]), torch.ones(1, 2, dtype=dtype),
                                                 q.shape) if rank == 0 else None
                ctx.sync_sparse([p, q])
                want = sum(torch.sparse_coo_tensor(torch.tensor([rows[r]]), vals[r],
                                                   p.shape).to_dense() for r in rows) / 2
                assert p.grad.is_sparse and p.grad.is_coalesced()
                assert p.grad.indices()[0].tolist() == [1, 4, 7]
                assert torch.equal(p.grad.to_dense(), want)
                assert q.grad.indices()[0].tolist() == [2]
                assert torch.equal(q.grad.to_dense()[2], torch.full((2,), 0.5, dtype=dtype))
            assert ctx.from_main(lambda: rank) == 0          # rank 0's value everywhere

            def fails():
                raise ValueError("disk full")
            try:
                ctx.from_main(fails)
            except ValueError:
                assert rank == 0
            except D.MainRankFailed as e:
                assert rank == 1 and "ValueError: disk full" in str(e)
                assert "rank 0 failed" in D.failure_message(e)
            else:
                raise AssertionError("from_main did not raise")
            assert ctx.all_gather(rank) == [0, 1]
        code = 0
    except BaseException:               # noqa: BLE001 - the log names the failing check
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def test_sparse_gradients_averaged_and_rank0_failures_reach_every_rank(tmp_path):
    """Two gloo ranks: the all-gather average of row-sparse gradients (rows touched
    by one rank, both, or a table with no gradient on one rank; float32 and float64)
    equals the dense average exactly; an exception in a step rank 0 runs alone
    reaches rank 1 as MainRankFailed at once, not after a timeout."""
    mp = multiprocessing.get_context("fork")
    port = _free_port()
    logs = [tmp_path / f"rank{r}.log" for r in range(2)]
    procs = [mp.Process(target=_collectives_main, args=(r, port, str(logs[r])))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(JOIN_S)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0], [log.read_text()[-3000:] for log in logs]


# ---------------------------------------------------------------- two processes
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_two_processes_give_the_one_process_result(name, tmp_path):
    """Same global batch and seed: N = 1 and N = 2 end with the same metrics,
    losses and weights (float64, rel. 1e-9); rank 0 alone wrote the folder and
    the summary records the world size."""
    out = tmp_path / "out"
    one = _one_process(_argv(name, out, "one"))
    ranks = _two_processes(_argv(name, out, "two"), tmp_path)
    two = out / "two"
    _assert_close_runs(one, two)
    assert _metrics(two)[2]["world_size"] == 2 and _metrics(one)[2]["world_size"] == 1
    import pandas as pd
    summary = pd.read_csv(out / "summary.csv")
    assert dict(zip(summary["run_id"], summary["world_size"])) == {"one": 1, "two": 2}
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["one", "two"]
    assert "run folder:" in ranks.log(0) and "run folder:" not in ranks.log(1)


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_with_a_clear_message(tmp_path):
    """SIGKILL rank 1 mid-training: rank 0 stops (no hang) with exit status 1 and
    one line naming the failure, and the folder stays INCOMPLETE."""
    out = tmp_path / "out"
    argv = _argv("shallow", out, "run", "--epochs", "100000", "--checkpoint-every", "1")
    ranks = Ranks(argv, tmp_path, env={"HGRAPH_DIST_TIMEOUT": "20"})
    ckpt = out / "run" / "checkpoint_seed0.pt"
    try:
        t0 = time.monotonic()
        while not ckpt.exists():
            assert all(p.is_alive() for p in ranks.procs), ranks.log(0)[-3000:]
            assert time.monotonic() - t0 < JOIN_S, "no checkpoint in time"
            time.sleep(0.02)
        os.kill(ranks.procs[1].pid, signal.SIGKILL)
        t_kill = time.monotonic()
        ranks.procs[0].join(60)
        assert not ranks.procs[0].is_alive(), "rank 0 hangs after its peer died"
        waited = time.monotonic() - t_kill
    finally:
        ranks.kill()
    assert ranks.procs[0].exitcode == 1, ranks.log(0)[-3000:]
    err = ranks.log(0)
    assert "error: distributed training failed on rank 0 of 2" in err, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert waited < 50
    assert (out / "run" / "INCOMPLETE").exists()


@pytest.mark.slow
def test_two_process_run_interrupted_on_one_rank_resumes_to_the_uninterrupted_result(
        tmp_path):
    """SIGINT to rank 1 alone: both ranks stop at the same step, rank 0 writes the
    checkpoint, both exit 130.  ``--resume`` with two processes then ends where
    an uninterrupted two-process run ends (same reductions: equal to the bit);
    a copy of the folder resumed by one process ends there to 1e-9."""
    out = tmp_path / "out"
    extra = ["--epochs", "40", "--checkpoint-every", "1", "--eval-every", "20"]
    ref = _two_processes(_argv("shallow", out, "ref", *extra), tmp_path, tag="ref")
    assert ref.procs[0].exitcode == 0
    ranks = Ranks(_argv("shallow", out, "cut", *extra), tmp_path, tag="cut")
    run_dir = out / "cut"
    try:
        t0 = time.monotonic()
        while not (run_dir / "checkpoint_seed0.pt").exists():
            assert all(p.is_alive() for p in ranks.procs), ranks.log(0)[-3000:]
            assert time.monotonic() - t0 < JOIN_S, "no checkpoint in time"
            time.sleep(0.01)
        os.kill(ranks.procs[1].pid, signal.SIGINT)
        codes = ranks.join()
    finally:
        ranks.kill()
    assert codes == [130, 130], (codes, ranks.log(0)[-3000:], ranks.log(1)[-3000:])
    assert "--resume" in ranks.log(0) and (run_dir / "INCOMPLETE").exists()
    state = torch.load(run_dir / "checkpoint_seed0.pt", weights_only=False)
    assert state["world_size"] == 2 and len(state["torch_rng_ranks"]) == 2
    assert state["epoch"] < 40
    other = out / "cut_one"                         # a copy, resumed by one process
    shutil.copytree(run_dir, other)
    _two_processes(["--resume", str(run_dir)], tmp_path, tag="resume")
    assert not (run_dir / "INCOMPLETE").exists()
    m_ref, h_ref, _ = _metrics(out / "ref")
    m_cut, h_cut, _ = _metrics(run_dir)
    assert m_ref == m_cut
    strip = [[{k: v for k, v in r.items() if k != "time_s"} for r in h[0]] for h in (h_ref, h_cut)]
    assert strip[0] == strip[1]
    # another world size resumes too: the training does not depend on it
    from hgraph.pipeline import resume
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resume(other)
    finally:
        torch.set_num_threads(threads)
    _assert_close_runs(out / "ref", other)
