"""End-to-end runs of the pipeline on small generated trees, and the CLI contract."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hgraph.cli import main, parse_config
from hgraph.pipeline import run

ROOT = Path(__file__).resolve().parent.parent
SMALL_TREE = ["--gen-root-children", "4", "--gen-min-children", "2", "--gen-max-children", "4",
              "--gen-leaf-prob", "0.1", "0.3", "--feature-dim", "8"]


def _cfg(tmp_path, *extra):
    cfg, _ = parse_config([*SMALL_TREE, "--out", str(tmp_path / "results"), "--no-progress",
                           "--no-plots", *extra])
    return cfg


@pytest.mark.slow
def test_shallow_reconstruction_reaches_map_09(tmp_path):
    cfg = _cfg(tmp_path, "--encoder", "shallow", "--dim", "5", "--epochs", "60",
               "--val-frac", "0", "--test-frac", "0", "--recon-sample", "0",
               "--batch-size", "64", "--lr", "0.05", "--burnin", "5", "--negatives", "10")
    res = run(cfg)
    assert res.mean("recon_map") >= 0.9, res.metrics
    assert res.mean("recon_mean_rank") < 1.5
    # deeper categories sit farther from the origin
    assert res.mean("spearman_norm_level") > 0.5
    d = res.run_dir
    assert not (d / "INCOMPLETE").exists()
    cfg_json = json.loads((d / "config.json").read_text())
    assert list(cfg_json) == sorted(cfg_json)
    m = json.loads((d / "metrics.json").read_text())
    assert m["per_seed"][0]["seed"] == 0 and "git" in m["run"] and "env" in m["run"]
    assert (tmp_path / "results" / "summary.csv").exists()
    assert "recon_map" in (tmp_path / "results" / "summary.md").read_text()


@pytest.mark.slow
def test_link_prediction_split_and_two_seeds(tmp_path):
    cfg = _cfg(tmp_path, "--encoder", "shallow", "--dim", "5", "--epochs", "20",
               "--val-frac", "0.1", "--test-frac", "0.2", "--seed", "0", "--seed", "1",
               "--batch-size", "64", "--lr", "0.05", "--eval-every", "5")
    res = run(cfg)
    assert res.metrics["lp_roc_auc"]["n"] == 2
    for key in ("lp_roc_auc", "lp_ap", "parent_mrr", "parent_hits@10", "recon_map"):
        assert 0.0 <= res.mean(key) <= 1.0
    # same seed twice -> identical metrics (determinism on CPU)
    res2 = run(_cfg(tmp_path, "--encoder", "shallow", "--dim", "5", "--epochs", "20",
                    "--val-frac", "0.1", "--test-frac", "0.2", "--seed", "0",
                    "--batch-size", "64", "--lr", "0.05", "--eval-every", "5"))
    assert res2.per_seed[0]["lp_ap"] == res.per_seed[0]["lp_ap"]
    assert res2.per_seed[0]["recon_map"] == res.per_seed[0]["recon_map"]


def test_bad_dataset_file_exit_2_nothing_written(tmp_path, capsys):
    bad = tmp_path / "cycle.csv"
    bad.write_text("child,parent\na,b\nb,c\nc,a\n")
    out = tmp_path / "results"
    code = main(["--dataset", f"csv:{bad}", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "cycle" in err and str(bad) in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_unknown_dataset_exit_2(tmp_path, capsys):
    assert main(["--dataset", "nope", "--out", str(tmp_path / "r")]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_script_help_and_bad_input_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "pipelines" / "run.py"), "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--encoder" in r.stdout and "examples:" in r.stdout
    missing = tmp_path / "missing.csv"
    r = subprocess.run([sys.executable, str(ROOT / "pipelines" / "run.py"), "--dataset",
                        f"csv:{missing}", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and str(missing) in r.stderr
    assert not (tmp_path / "r").exists()


MID_TREE = ["--gen-root-children", "6", "--gen-min-children", "2", "--gen-max-children", "5",
            "--feature-dim", "16"]


@pytest.mark.slow
# Thresholds sit below what these runs measured (chance is 0.5): hgcn/poincare 0.97,
# hgcn/lorentz 0.84 (0.77 / 0.69 before HGCN's aggregation became a mean over neighbours),
# ramen/poincare 0.97, ramen/lorentz 0.95.  Lorentz HGCN learning slower than the ball on
# this task is an open item (see results/README.md).
@pytest.mark.parametrize("encoder,manifold,floor", [("hgcn", "poincare", 0.92),
                                                    ("hgcn", "lorentz", 0.78),
                                                    ("ramen", "poincare", 0.9),
                                                    ("ramen", "lorentz", 0.9)])
def test_feature_encoders_learn_link_prediction(tmp_path, encoder, manifold, floor):
    # ~600 nodes: on a 150-node tree HGCN overfits its ~120 training edges within 5 epochs
    tree = ["--gen-root-children", "10", "--gen-min-children", "3", "--gen-max-children", "6",
            "--feature-dim", "16"]
    cfg, _ = parse_config([*tree, "--out", str(tmp_path / "r"), "--no-progress", "--no-plots",
                           "--no-save-embeddings", "--encoder", encoder, "--manifold", manifold,
                           "--epochs", "10", "--batch-size", "64", "--full-batch",
                           "--test-frac", "0.15"])
    res = run(cfg)
    assert res.mean("lp_roc_auc") > floor, res.metrics
    assert res.per_seed[0]["bad_steps"] == 0


def test_inductive_nodes_absent_from_training(tmp_path):
    from hgraph.data.datasets import load_dataset
    from hgraph.pipeline import prepare
    import numpy as np
    import torch
    cfg, _ = parse_config([*MID_TREE, "--inductive-frac", "0.2", "--encoder", "ramen"])
    tax = load_dataset(cfg.data)
    prep = prepare(cfg, tax, torch.device("cpu"), torch.float32)
    held = prep.splits.heldout
    assert len(held) > 0
    in_held = np.zeros(tax.num_nodes, bool)
    in_held[held] = True
    assert not in_held[prep.positives].any()                       # no training pair
    assert not in_held[prep.splits.train].any()                    # no message-passing edge
    ei = prep.pyg.edge_index.numpy()
    assert not in_held[ei].any()
    c = prep.splits.train_closure.tocoo()
    assert not in_held[c.row].any() and not in_held[c.col].any()   # no closure pair
    neg, mask = prep.sampler.sample(prep.positives[:200, 0], 20, np.random.default_rng(0))
    assert not in_held[neg[mask]].any()                            # never a negative either


@pytest.mark.parametrize("encoder", ["hgcn", "shallow"])
def test_graph_regulariser_trains_any_encoder(tmp_path, encoder):
    """The regulariser belongs to training: with --reg-lambda > 0 any encoder gets it
    (its loss is recorded per epoch); without it, none does."""
    common = ["--encoder", encoder, "--epochs", "3", "--reg-warmup", "0", "--dim", "4"]
    res = run(_cfg(tmp_path, *common, "--reg-lambda", "0.5"))
    hist = res.histories[0]
    assert all("reg" in h and h["reg"] > 0 for h in hist)
    assert res.config.reg.reg_lambda == 0.5
    plain = run(_cfg(tmp_path, *common))
    assert plain.config.reg.reg_lambda == 0.0
    assert all("reg" not in h for h in plain.histories[0])
    # the regulariser changes what is learned (the kept weights: a metric can tie, e.g. the
    # shallow preset's nested-cone start ranks this small tree almost right either way)
    a = torch.load(res.run_dir / "model_seed0.pt")
    b = torch.load(plain.run_dir / "model_seed0.pt")
    assert any(not torch.equal(a[k], b[k]) for k in a)
