"""Checkpoint -> resume continues exactly; the CLI refuses what it cannot resume;
SIGINT/SIGTERM write a checkpoint and exit 130/143; SIGKILL + resume gives the
uninterrupted run's metrics and weights bit for bit (CPU, same seed).
"""
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hgraph import manifolds as M
from hgraph.cli import main, parse_config
from hgraph.nn import EncoderSpec, build_encoder
from hgraph.data.datasets import load_dataset
from hgraph.pipeline import make_embedders, prepare
from hgraph.losses import GraphRegularizer
from hgraph.train import (TrainData, TrainingInterrupted, load_optimizer_state, make_optimizer,
                          train)

ROOT = Path(__file__).resolve().parent.parent

TREE = ["--gen-root-children", "5", "--gen-min-children", "2", "--gen-max-children", "4",
        "--feature-dim", "8", "--batch-size", "16", "--eval-every", "2", "--burnin", "3"]


@pytest.mark.parametrize("encoder", ["shallow", "ramen", "hgcn"])
def test_resume_from_checkpoint_equals_uninterrupted(encoder, checkpoint_at):
    cfg, _ = parse_config([*TREE, "--encoder", encoder])
    tax = load_dataset(cfg.data)
    dev = torch.device("cpu")
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    prep = prepare(cfg, tax, dev, dtype)

    def build():
        torch.manual_seed(0)
        spec = EncoderSpec(cfg.model, M.make_manifold(cfg.model.manifold), tax.num_nodes,
                           int(prep.x.shape[1]))
        m = build_encoder(spec).to(dtype=dtype)
        emb, ea = make_embedders(m, prep, cfg, dev)
        return m, TrainData(tax.num_nodes, prep.positives, prep.sampler, emb, ea,
                            val_pos=prep.splits.val, val_neg=prep.val_neg)

    tc = replace(cfg.train, epochs=8, checkpoint_every=1)
    checkpoint, load = checkpoint_at(5)
    m1, d1 = build()
    r1 = train(m1, d1, tc, device=dev, seed=0, progress=False, checkpoint=checkpoint)
    m2, d2 = build()
    r2 = train(m2, d2, tc, device=dev, seed=0, progress=False, resume=load())
    l1 = [h["loss"] for h in r1.history]
    l2 = [h["loss"] for h in r2.history]
    assert l1[:5] == l2[:5]                      # the history up to the checkpoint is restored
    assert l2[5:] == l1[5:]                      # and the continuation is bit-exact
    assert r2.epochs_run == r1.epochs_run == 8
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_optimizer_state_round_trip_keeps_step_types():
    """torch's Adam.__setstate__ turns int steps into float32 tensors on load; geoopt's
    bias corrections ``beta ** step`` then round differently (the old resume drift)."""
    cfg, build = _setup("hgcn")
    m, d = build()
    opt = make_optimizer(m, cfg.train, 0.01)
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    saved = opt.state_dict()
    m2, _ = build()
    opt2 = make_optimizer(m2, cfg.train, 0.01)
    load_optimizer_state(opt2, saved)
    steps = [st["step"] for st in opt2.state_dict()["state"].values()]
    assert steps and all(type(s) is int and s == 1 for s in steps)


def test_resume_refuses_foreign_or_finished_folders(tmp_path, capsys):
    assert main(["--resume", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main(["--resume", str(tmp_path), "--dim", "3"]) == 2
    cfg, _ = parse_config([*TREE, "--epochs", "1", "--no-progress", "--no-plots",
                           "--no-save-embeddings", "--out", str(tmp_path / "r")])
    from hgraph.pipeline import run
    res = run(cfg)
    assert main(["--resume", str(res.run_dir)]) == 2
    assert "finished" in capsys.readouterr().err


def test_training_independent_of_earlier_torchscript_use(monkeypatch):
    """geoopt's TorchScript executors, once optimised by earlier calls in the process,
    used to change the last bits of training (and so a resumed run's continuation)."""
    cfg, build = _setup("hgcn")
    tc = replace(cfg.train, epochs=2, checkpoint_every=0)

    def fit():
        m, d = build()
        r = train(m, d, tc, device=torch.device("cpu"), seed=0, progress=False)
        return [h["loss"] for h in r.history]

    first = fit()
    with monkeypatch.context() as mp:      # warm the executors as unrelated code would
        mp.setattr(M, "reproducible_execution", contextlib.nullcontext)
        fit()
        fit()
    assert fit() == first


# ------------------------------------------------------------------ signals
def _setup(encoder):
    """A tiny tree and a builder of (model, TrainData) with fixed initial weights
    (hgcn: neighbour-sampled mini-batches, which draw from torch's generator)."""
    sampled = ["--no-full-batch", "--fanouts", "2", "2"] if encoder == "hgcn" else []
    cfg, _ = parse_config([*TREE, "--encoder", encoder, *sampled])
    tax = load_dataset(cfg.data)
    dev = torch.device("cpu")
    prep = prepare(cfg, tax, dev, torch.float32)

    def build():
        torch.manual_seed(0)
        spec = EncoderSpec(cfg.model, M.make_manifold(cfg.model.manifold), tax.num_nodes,
                           int(prep.x.shape[1]))
        m = build_encoder(spec)
        emb, ea = make_embedders(m, prep, cfg, dev)
        reg = None
        if encoder == "ramen":       # its regulariser draws from the training generator too
            reg = GraphRegularizer(prep.splits.train, tax.num_nodes, kinds=cfg.reg.reg_kinds,
                                   margin=cfg.reg.reg_margin, hard_negatives=True,
                                   level=tax.level, allowed=prep.splits.train_mask, seed=0)
        return m, TrainData(tax.num_nodes, prep.positives, prep.sampler, emb, ea,
                            val_pos=prep.splits.val, val_neg=prep.val_neg, regularizer=reg,
                            reg_lambda=cfg.reg.reg_lambda, reg_warmup=cfg.reg.reg_warmup)
    return cfg, build


def _signal_at_call(embedder, n, signum):
    """The embedder, sending ``signum`` to this process during its n-th call."""
    calls = [0]

    def wrapped(model, ids, **kw):
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signum)
        return embedder(model, ids, **kw)
    wrapped.hides_pairs = getattr(embedder, "hides_pairs", False)
    return wrapped


main_thread_only = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                      reason="signal handlers need the main thread")


@main_thread_only
@pytest.mark.parametrize("encoder", ["shallow", "ramen", "hgcn"])
def test_signal_mid_epoch_checkpoint_resumes_exactly(encoder):
    cfg, build = _setup(encoder)
    tc = replace(cfg.train, epochs=5, checkpoint_every=0)
    m1, d1 = build()
    r1 = train(m1, d1, tc, device=torch.device("cpu"), seed=0, progress=False)
    steps = -(-len(d1.positives) // tc.batch_size)
    m2, d2 = build()
    d2.embedder = _signal_at_call(d2.embedder, 2 * steps + 3, signal.SIGINT)  # epoch 3, step 3
    saved = {}

    def checkpoint(epoch, state):
        buf = io.BytesIO()
        torch.save({"epoch": epoch, **state}, buf)
        saved["state"] = buf.getvalue()

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as ei:
        train(m2, d2, tc, device=torch.device("cpu"), seed=0, progress=False,
              checkpoint=checkpoint)
    assert signal.getsignal(signal.SIGINT) is before          # previous handler restored
    e = ei.value
    assert (e.signum, e.epoch, e.step, e.checkpointed) == (signal.SIGINT, 2, 3, True)
    assert "SIGINT after epoch 2 + 3 steps" in str(e)
    state = torch.load(io.BytesIO(saved["state"]), weights_only=False)
    assert state["epoch"] == 2 and state["step"] == 3 and len(state["result"].history) == 2
    m3, d3 = build()
    r3 = train(m3, d3, tc, device=torch.device("cpu"), seed=0, progress=False, resume=state)
    assert [h["loss"] for h in r3.history] == [h["loss"] for h in r1.history]
    for a, b in zip(m1.state_dict().values(), m3.state_dict().values()):
        assert torch.equal(a, b)


@main_thread_only
def test_signal_handlers_main_thread_only_and_restored():
    cfg, build = _setup("shallow")
    tc = replace(cfg.train, epochs=1, checkpoint_every=0)
    seen = {}

    def fit(key):
        m, d = build()
        train(m, d, tc, device=torch.device("cpu"), seed=0, progress=False,
              on_epoch=lambda e, rec: seen.setdefault(key, signal.getsignal(signal.SIGTERM)))

    before = signal.getsignal(signal.SIGTERM)
    fit("main")
    t = threading.Thread(target=fit, args=("thread",))
    t.start()
    t.join()
    assert seen["main"] is not before and getattr(seen["main"], "__name__", "") == "_handle"
    assert seen["thread"] is before                           # no handler from a thread
    assert signal.getsignal(signal.SIGTERM) is before


def _cli_run(out, *extra):
    return [sys.executable, str(ROOT / "pipelines" / "run.py"), *TREE, "--epochs", "30",
            "--checkpoint-every", "1", "--no-progress", "--no-plots", "--no-save-embeddings",
            "--out", str(out), "--name", "run", *extra]


def _start_and_signal(cmd, ready, signum, timeout=300):
    """Start ``cmd`` (one torch thread); once ``ready()`` send ``signum``;
    returns (returncode, stderr)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    try:
        while not ready():
            assert p.poll() is None, f"run ended before the signal: {p.communicate()[1]}"
            assert time.monotonic() - t0 < timeout, "not ready in time"
            time.sleep(0.01)
        p.send_signal(signum)
        _, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
    return p.returncode, err


def _one_thread():
    """Subprocesses run with OMP_NUM_THREADS=1; the in-process reference does too."""
    class Ctx:
        def __enter__(self):
            self.n = torch.get_num_threads()
            torch.set_num_threads(1)

        def __exit__(self, *exc):
            torch.set_num_threads(self.n)
    return Ctx()


def _comparable(run_dir: Path):
    """Per-seed metrics without timings and memory, history without times, weights."""
    per_seed = json.loads((run_dir / "metrics.json").read_text())["per_seed"]
    metrics = [{k: v for k, v in m.items() if not k.endswith(("_s", "_mb"))} for m in per_seed]
    history = [[{k: v for k, v in h.items() if k != "time_s"} for h in hs]
               for hs in json.loads((run_dir / "history.json").read_text())]
    weights = torch.load(run_dir / "model_seed0.pt", weights_only=True)
    return metrics, history, weights


def _assert_same_run(a: Path, b: Path):
    ma, ha, wa = _comparable(a)
    mb, hb, wb = _comparable(b)
    first = next((i for i, (x, y) in enumerate(zip(ha[0], hb[0])) if x != y), None)
    assert first is None, (first, ha[0][first], hb[0][first])
    assert ma == mb                       # exact: every metric to the last bit
    assert ha == hb
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_killed_then_interrupted_run_resumes_to_the_uninterrupted_metrics(tmp_path, capsys):
    """SIGKILL once the first checkpoint exists; resume in a fresh process; SIGTERM
    there once it has written its next checkpoint (exit 143, one line naming the
    checkpoint and the resume command, folder INCOMPLETE, no summary row); resume
    again.  Metrics, history and weights equal an uninterrupted run's bit for bit.

    The reference runs in this process, after whatever the suite ran before, the
    interrupted pieces in fresh processes, so the comparison covers both.  HGCN with
    neighbour sampling (torch's generator) and no validation split (the evaluated
    weights are the last epoch's, not a best epoch restored from before the kill)."""
    args = ["--encoder", "hgcn", "--no-full-batch", "--fanouts", "2", "2", "--val-frac", "0",
            "--checkpoint-every", "3"]
    out = tmp_path / "out"
    run_dir = out / "run"
    ckpt = run_dir / "checkpoint_seed0.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def epoch_of(path):
        return torch.load(path, weights_only=False)["epoch"]

    rc, err = _start_and_signal(_cli_run(out, *args), lambda: ckpt.exists(), signal.SIGKILL)
    assert rc == -signal.SIGKILL, err
    killed_at = epoch_of(ckpt)
    assert 3 <= killed_at < 30 and not (run_dir / "metrics.json").exists()
    first = ckpt.stat().st_mtime_ns
    rc, err = _start_and_signal([sys.executable, str(ROOT / "pipelines" / "run.py"),
                                 "--resume", str(run_dir)],
                                lambda: ckpt.stat().st_mtime_ns != first, signal.SIGTERM)
    assert rc == 143, err
    assert f"resuming after epoch {killed_at}\n" in err and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted (SIGTERM after epoch ") and \
        line.endswith(f", seed 0): checkpoint {ckpt}; continue with: "
                      f"python pipelines/run.py --resume {run_dir}"), line
    assert killed_at < epoch_of(ckpt) < 30
    assert (run_dir / "INCOMPLETE").exists() and not (run_dir / "metrics.json").exists()
    assert not (out / "summary.csv").exists() and not list(run_dir.glob("*.tmp"))
    from hgraph.pipeline import run
    with _one_thread():
        assert main(["--resume", str(run_dir)]) == 0
        capsys.readouterr()
        cfg, _ = parse_config(_cli_run(tmp_path / "ref", *args)[2:])
        ref = run(cfg).run_dir
    assert not (run_dir / "INCOMPLETE").exists()
    assert len((out / "summary.csv").read_text().splitlines()) == 2
    _assert_same_run(ref, run_dir)
