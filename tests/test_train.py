"""The training loop's guards: non-finite steps are skipped and counted; after
``max_bad_steps`` in a row training stops, restores the last good parameters, and
the CLI says so in one line naming the last good checkpoint (exit 1)."""
import json
from dataclasses import replace

import pytest
import torch

from hgraph import manifolds as M
from hgraph.cli import main, parse_config
from hgraph.losses import LOSSES
from hgraph.nn import EncoderSpec, build_encoder
from hgraph.data.datasets import load_dataset
from hgraph.pipeline import make_embedders, prepare
from hgraph.train import TrainData, TrainingDiverged, train

TREE = ["--gen-root-children", "4", "--gen-min-children", "2", "--gen-max-children", "3",
        "--feature-dim", "8", "--batch-size", "4", "--eval-every", "1", "--burnin", "1"]


def _poisoned(bad, kind="loss"):
    """The ranking loss, made non-finite on the calls (1-based) where ``bad(call)``:
    ``kind="loss"`` a NaN value, ``kind="grad"`` a finite value with NaN gradients."""
    calls = [0]
    ranking = LOSSES["ranking"]

    def loss(manifold, z_u, z_v, z_n, mask):
        calls[0] += 1
        value = ranking(manifold, z_u, z_v, z_n, mask)
        if bad(calls[0]):
            if kind == "loss":
                return value + float("nan")
            return value + torch.sqrt((z_u * 0).sum())   # 0, gradient 0 * inf = NaN
        return value
    loss.calls = calls
    return loss


def _setup(encoder="ramen"):
    cfg, _ = parse_config([*TREE, "--encoder", encoder])
    tax = load_dataset(cfg.data)
    prep = prepare(cfg, tax, torch.device("cpu"), torch.float32)
    torch.manual_seed(0)
    spec = EncoderSpec(cfg.model, M.make_manifold(cfg.model.manifold), tax.num_nodes,
                       int(prep.x.shape[1]))
    model = build_encoder(spec)
    emb, ea = make_embedders(model, prep, cfg, torch.device("cpu"))
    data = TrainData(tax.num_nodes, prep.positives, prep.sampler, emb, ea,
                     val_pos=prep.splits.val, val_neg=prep.val_neg)
    steps = -(-len(prep.positives) // cfg.train.batch_size)
    return cfg, model, data, steps


@pytest.mark.parametrize("kind", ["loss", "grad"])
def test_isolated_bad_steps_are_skipped_and_counted(monkeypatch, kind):
    cfg, model, data, steps = _setup()
    poisoned = _poisoned(lambda i: i % 3 == 0, kind)
    monkeypatch.setitem(LOSSES, cfg.train.loss, poisoned)
    res = train(model, data, replace(cfg.train, epochs=3, max_bad_steps=2), seed=0,
                device=torch.device("cpu"), progress=False)
    assert res.epochs_run == 3 and res.bad_steps == 3 * steps // 3 == poisoned.calls[0] // 3
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in res.history)


@pytest.mark.parametrize("kind", ["loss", "grad"])
def test_bad_steps_in_a_row_stop_and_restore_the_last_good_state(monkeypatch, kind):
    cfg, model, data, steps = _setup()
    assert steps >= 3
    # epoch 3: one good step, then bad ones
    monkeypatch.setitem(LOSSES, cfg.train.loss, _poisoned(lambda i: i > 2 * steps + 1, kind))
    saved = {}

    def checkpoint(epoch, state):
        saved[epoch] = {k: v.clone() for k, v in state["model"].items()}

    with pytest.raises(TrainingDiverged, match="2 non-finite steps in a row at epoch 3"):
        train(model, data, replace(cfg.train, epochs=6, max_bad_steps=2, checkpoint_every=1),
              seed=0, device=torch.device("cpu"), progress=False, checkpoint=checkpoint)
    assert sorted(saved) == [1, 2]                 # nothing written after the bad steps
    for k, v in model.state_dict().items():        # restored: the state after epoch 2
        assert torch.equal(v, saved[2][k])


def test_non_finite_parameters_after_a_finite_step_stop_training():
    """A finite loss and gradient can still overflow the update: the epoch's end checks
    the parameters, so a checkpoint never holds non-finite values."""
    cfg, model, data, steps = _setup("shallow")
    saved = {}

    def checkpoint(epoch, state):
        saved[epoch] = state["model"]["weight"].clone()
        if epoch == 1:                             # as if epoch 2's update overflowed
            model.weight.data[0, 0] = float("inf")

    with pytest.raises(TrainingDiverged, match="non-finite parameters after epoch 2"):
        train(model, data, replace(cfg.train, epochs=4, checkpoint_every=1), seed=0,
              device=torch.device("cpu"), progress=False, checkpoint=checkpoint)
    assert sorted(saved) == [1] and torch.equal(model.weight.detach(), saved[1])


def test_cli_divergence_one_line_exit_1_last_good_checkpoint_kept(tmp_path, monkeypatch, capsys):
    cfg, _, _, steps = _setup("shallow")
    monkeypatch.setitem(LOSSES, "ranking", _poisoned(lambda i: i > 2 * steps))
    out = tmp_path / "out"
    rc = main([*TREE, "--encoder", "shallow", "--loss", "ranking", "--epochs", "8",
               "--checkpoint-every", "1", "--max-bad-steps", "3", "--no-progress",
               "--no-plots", "--no-save-embeddings", "--out", str(out), "--name", "run"])
    err = capsys.readouterr().err.strip().splitlines()
    run_dir = out / "run"
    ckpt = run_dir / "checkpoint_seed0.pt"
    assert rc == 1
    assert err[-1] == (f"error: training diverged (seed 0): 3 non-finite steps in a row at "
                       f"epoch 3; restored the last good parameters (try a lower --lr or "
                       f"float64); last good checkpoint {ckpt} (after epoch 2); {run_dir} "
                       f"stays INCOMPLETE")
    state = torch.load(ckpt, weights_only=False)
    assert state["epoch"] == 2 and len(state["result"].history) == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert (run_dir / "INCOMPLETE").exists() and not (run_dir / "metrics.json").exists()
    assert not (out / "summary.csv").exists()
    # without periodic checkpoints the message says there is none
    rc = main([*TREE, "--encoder", "shallow", "--loss", "ranking", "--epochs", "8",
               "--checkpoint-every", "0", "--max-bad-steps", "3", "--no-progress",
               "--no-plots", "--no-save-embeddings", "--out", str(out), "--name", "run2"])
    assert rc == 1 and "no checkpoint was written" in capsys.readouterr().err


def test_lr_schedule_burnin_then_constant_or_linear():
    from hgraph.config import TrainConfig
    from hgraph.train import lr_at
    c = TrainConfig(lr=0.5, epochs=6, burnin=2, burnin_factor=10.0)
    assert [lr_at(c, e) for e in range(6)] == pytest.approx([0.05, 0.05, 0.5, 0.5, 0.5, 0.5])
    c = TrainConfig(lr=0.5, epochs=6, burnin=2, burnin_factor=10.0, lr_schedule="linear")
    assert [lr_at(c, e) for e in range(6)] == pytest.approx(
        [0.05, 0.05, 0.5, 0.375, 0.25, 0.125])
    c = TrainConfig(lr=1.0, epochs=3, burnin=0, lr_schedule="linear")
    assert [lr_at(c, e) for e in range(3)] == pytest.approx([1.0, 2 / 3, 1 / 3])
