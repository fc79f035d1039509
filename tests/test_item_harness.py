"""The item task on the one harness: options checked before any text is encoded
(one line, exit 2, nothing written), a run interrupted by SIGINT mid-epoch resumes
to the uninterrupted run's metrics, concurrent runs into one folder stay apart,
summary rows, and the run folder loads back."""
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from hgraph.cli import main

ROOT = Path(__file__).resolve().parent.parent
SLICE = ["--task", "items", "--dataset", "csv:data/samples/hpo_slice_edges.csv",
         "--items", "data/samples/hpo_slice_items.csv",
         "--node-text", "data/samples/hpo_slice_text.csv"]
SMALL = ["--epochs", "3", "--negatives", "32", "--hidden", "16", "--cost-items", "5",
         "--threads", "1", "--dtype", "float64", "--no-progress", "--batch-size", "64"]


@pytest.mark.parametrize("bad, says", [
    (["--val-frac", "0.5", "--test-frac", "0.5"], "val_frac + data.test_frac must be < 1"),
    (["--batch-size", "0"], "batch_size"),
    (["--lr", "-0.1"], "train.lr must be > 0"),
    (["--rerank", "5"], "rerank"),
    (["--manifold", "lorentz"], "poincare or euclidean"),
    (["--encoder", "construct"], "unknown encoder 'construct' for the item task"),
    (["--items", "no/such/file.csv"], "no/such/file.csv"),
])
def test_bad_item_options_exit_2_in_one_line_before_encoding(bad, says, tmp_path, capsys,
                                                             monkeypatch):
    import hgraph.tasks.item_data as D

    def no_encoding(*a, **k):        # nothing may be encoded before the options are checked
        raise AssertionError("texts encoded before the options were checked")
    monkeypatch.setattr(D, "encode_texts", no_encoding)
    monkeypatch.setattr(D, "token_states", no_encoding)
    rc = main([*SLICE, *bad, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and says in err[0], err
    assert not (tmp_path / "out").exists()


def test_node_encoder_names_stay_with_their_task(capsys, tmp_path):
    assert main(["--encoder", "knn", "--out", str(tmp_path)]) == 2
    assert "--task items" in capsys.readouterr().err


def _run_items(out, *extra):
    return [sys.executable, str(ROOT / "pipelines" / "run.py"), *SLICE, *SMALL, "--out", str(out),
            *extra]


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signal handlers need the main thread")
@pytest.mark.xdist_group("minilm")
def test_sigint_mid_epoch_then_resume_equals_an_uninterrupted_item_run(tmp_path, monkeypatch,
                                                                       capsys):
    """SIGINT during a step of epoch 2 (seed 0): the step finishes, a checkpoint holds the
    position, exit 130 with the resume command; --resume ends with the uninterrupted
    run's metrics (every deterministic number equal)."""
    from hgraph.tasks.item_batches import ItemBatches
    out = tmp_path / "out"
    args = [*SLICE, *SMALL, "--out", str(out), "--seed", "0", "--seed", "1"]
    loss, calls = ItemBatches.loss, [0]

    def signalling(self, *a, **k):
        calls[0] += 1
        if calls[0] == 12:          # 405 training rows, batch 64: 7 steps an epoch
            os.kill(os.getpid(), signal.SIGINT)
        return loss(self, *a, **k)
    monkeypatch.setattr(ItemBatches, "loss", signalling)
    assert main([*args, "--name", "run"]) == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    run_dir = out / "run"
    assert line.startswith("interrupted (SIGINT after epoch 1 + 5 steps, seed 0)") and \
        line.endswith(f"continue with: python pipelines/run.py --resume {run_dir}"), line
    assert (run_dir / "INCOMPLETE").exists() and not (run_dir / "metrics.json").exists()
    assert torch.load(run_dir / "checkpoint_seed0.pt", weights_only=False)["step"] == 5
    monkeypatch.setattr(ItemBatches, "loss", loss)
    assert main(["--resume", str(run_dir)]) == 0
    assert "resuming after epoch 1 + 5 steps" in capsys.readouterr().err
    assert main([*args, "--name", "ref"]) == 0
    got = json.loads((run_dir / "metrics.json").read_text())["per_seed"]
    want = json.loads((out / "ref" / "metrics.json").read_text())["per_seed"]
    vol = ("time", "per_s", "new_categories_s")
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if not any(s in k for s in vol)} == \
            {k: v for k, v in w.items() if not any(s in k for s in vol)}
    assert not (run_dir / "INCOMPLETE").exists()
    rows = (out / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and ",items," in rows[1]          # header + the two item runs


@pytest.mark.xdist_group("minilm")
def test_two_item_runs_at_once_into_one_folder_give_two_complete_folders(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out"
    cmd = _run_items(out, "--name", "same", "--epochs", "1")
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    dirs = sorted(d.name for d in out.iterdir() if d.is_dir())
    assert dirs == ["same", "same-2"]
    for d in dirs:
        assert not (out / d / "INCOMPLETE").exists()
        m = json.loads((out / d / "metrics.json").read_text())
        assert [ps["seed"] for ps in m["per_seed"]] == [0]
        assert json.loads((out / d / "config.json").read_text())["task"] == "items"
    assert len((out / "summary.csv").read_text().splitlines()) == 3
