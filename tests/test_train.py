"""The training loop's guards: non-finite steps are skipped and counted; after
``max_bad_steps`` in a row training stops, restores the last good parameters, and
the CLI says so in one line naming the last good checkpoint (exit 1)."""
import io
import json
import os
import signal
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from hgraph import manifolds as M
from hgraph.cli import main, parse_config
from hgraph.losses import LOSSES
from hgraph.nn import EncoderSpec, build_encoder
from hgraph.data.datasets import load_dataset
from hgraph.pipeline import make_embedders, prepare
from hgraph.train import TrainData, TrainingDiverged, TrainingInterrupted, train

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


#: the shallow encoder's former defaults: the loop's tests below were written for them
#: (the shallow preset now trains a hyperboloid table with the fused trainer from nested
#: cones and selects on the training closure's MAP; hgraph.config.ENCODER_PRESETS)
SHALLOW_PINNED = ["--optimizer", "radam", "--lr", "0.05", "--lr-unit", "batch", "--epochs", "20",
                  "--val-metric", "ap", "--patience", "0", "--init", "uniform",
                  "--manifold", "poincare", "--trainer", "loop", "--lr-schedule", "constant"]


def _setup(encoder="ramen"):
    cfg, _ = parse_config([*TREE, "--encoder", encoder,
                           *(SHALLOW_PINNED if encoder == "shallow" else [])])
    tax = load_dataset(cfg.data)
    prep = prepare(cfg, tax, torch.device("cpu"), torch.float32)
    torch.manual_seed(0)
    spec = EncoderSpec(cfg.model, M.make_manifold(cfg.model.manifold), tax.num_nodes,
                       int(prep.x.shape[1]))
    model = build_encoder(spec)
    emb, ea = make_embedders(model, prep, cfg, torch.device("cpu"))
    data = TrainData(tax.num_nodes, prep.positives, prep.sampler, emb, ea,
                     val_pos=prep.splits.val, val_neg=prep.val_neg,
                     train_closure=prep.splits.train_closure)
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
    rc = main([*TREE, "--encoder", "shallow", *SHALLOW_PINNED, "--loss", "ranking", "--epochs", "8",
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
    rc = main([*TREE, "--encoder", "shallow", *SHALLOW_PINNED, "--loss", "ranking", "--epochs", "8",
               "--checkpoint-every", "0", "--max-bad-steps", "3", "--no-progress",
               "--no-plots", "--no-save-embeddings", "--out", str(out), "--name", "run2"])
    assert rc == 1 and "no checkpoint was written" in capsys.readouterr().err


def test_lr_schedule_burnin_then_constant_or_linear():
    from hgraph.config import TrainConfig
    from hgraph.train import lr_at
    c = TrainConfig(lr=0.5, epochs=6, burnin=2, burnin_lr_divisor=10.0)
    assert [lr_at(c, e) for e in range(6)] == pytest.approx([0.05, 0.05, 0.5, 0.5, 0.5, 0.5])
    c = TrainConfig(lr=0.5, epochs=6, burnin=2, burnin_lr_divisor=10.0, lr_schedule="linear")
    assert [lr_at(c, e) for e in range(6)] == pytest.approx(
        [0.05, 0.05, 0.5, 0.375, 0.25, 0.125])
    c = TrainConfig(lr=1.0, epochs=3, burnin=0, lr_schedule="linear")
    assert [lr_at(c, e) for e in range(3)] == pytest.approx([1.0, 2 / 3, 1 / 3])


# ------------------------------------------------------------------ lr_unit
@pytest.mark.parametrize("n_pos", [8, 5])       # a full batch, and a smaller last one
def test_lr_unit_pair_is_lr_times_the_steps_pairs_for_plain_sgd(n_pos):
    """One Riemannian SGD step at ``lr_unit`` pair and rate r moves the table exactly as
    ``lr_unit`` batch at r x (the step's pairs); the recorded loss is the per-pair mean
    in both.  With 5 pairs and batch size 8 the step scales by 5, its own size."""
    r = 0.01
    tables, losses = {}, {}
    for unit, lr in (("pair", r), ("batch", r * n_pos)):
        cfg, model, data, _ = _setup("shallow")
        model.to(torch.float64)
        data.positives = data.positives[:n_pos]
        data.val_pos = None
        w0 = model.weight.detach().clone()
        res = train(model, data, replace(cfg.train, optimizer="rsgd", lr=lr, lr_unit=unit,
                                         epochs=1, burnin=0, batch_size=8, checkpoint_every=0),
                    seed=0, device=torch.device("cpu"), progress=False)
        tables[unit], losses[unit] = model.weight.detach().clone(), res.history[0]["loss"]
        assert not torch.equal(tables[unit], w0)                     # the step moved it
    torch.testing.assert_close(tables["pair"], tables["batch"])
    assert losses["pair"] == losses["batch"]


class _FixedNegatives:
    """Anchor u's negatives are u+1 .. u+k (mod N), none masked: the same whatever the
    batch a pair falls in, and no draw from the loop's RNG (so every batch size sees the
    same permutation of the pairs)."""

    def __init__(self, n: int):
        self.n = n

    def sample(self, anchors, k, rng):
        neg = (np.asarray(anchors, dtype=np.int64)[:, None] + np.arange(1, k + 1)) % self.n
        return neg, np.ones(neg.shape, dtype=bool)


def _epoch_move(unit, lr, batch, dtype):
    """The table's move over one epoch of Riemannian SGD (all pairs, fixed negatives)."""
    cfg, model, data, _ = _setup("shallow")
    model.to(dtype)
    with torch.no_grad():       # rows ~0.5 apart: a step of the rate is a small, smooth move
        g = torch.Generator().manual_seed(0)
        u = 0.3 * torch.randn(model.weight.shape, generator=g, dtype=torch.float64)
        model.weight.copy_(M.expmap0(model.manifold, u).to(dtype))
    data.sampler = _FixedNegatives(model.num_nodes)
    data.val_pos = None
    w0 = model.weight.detach().clone()
    train(model, data, replace(cfg.train, optimizer="rsgd", lr=lr, lr_unit=unit, epochs=1,
                               burnin=0, batch_size=batch, negatives=5, loss_patience=0,
                               checkpoint_every=0),
          seed=0, device=torch.device("cpu"), progress=False)
    return (model.weight.detach() - w0).double()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lr_per_pair_keeps_an_epoch_when_the_batch_size_changes(dtype):
    """At ``lr_unit`` pair an epoch in one step of all P pairs and an epoch in steps of
    P/4 move the table alike: they differ at second order in the rate (the difference
    shrinks ~10x when the rate does, the move itself only ~10x less), while at ``lr_unit``
    batch the smaller batch moves it ~4x as far."""
    _, _, data, _ = _setup("shallow")
    n_pos = len(data.positives)
    small = -(-n_pos // 4)
    rel = {}
    for r in (1e-2, 1e-3):
        big, parts = _epoch_move("pair", r, n_pos, dtype), _epoch_move("pair", r, small, dtype)
        assert float(big.norm()) > 0
        rel[r] = float((big - parts).norm() / big.norm())
    assert rel[1e-2] < 0.1, rel
    if dtype == torch.float64:             # float32 rounding floors the smaller difference
        assert rel[1e-3] < rel[1e-2] / 5, rel
    per_batch = (float(_epoch_move("batch", 1e-3, small, dtype).norm())
                 / float(_epoch_move("batch", 1e-3, n_pos, dtype).norm()))
    assert 2.5 < per_batch < 5, per_batch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_recon_validation_selects_and_stops_without_validation_edges(dtype):
    """``val_metric`` recon: the training closure's MAP is scored every ``eval_every``
    epochs with no validation edges at all, ``patience`` checks without a new best stop
    the run, and the kept table is the best one (its MAP is ``best_val`` again)."""
    from hgraph.train import validation_score
    cfg, model, data, _ = _setup("shallow")
    model.to(dtype)
    data.val_pos, data.val_metric = None, "recon"
    assert data.validates()
    tc = replace(cfg.train, optimizer="rsgd", lr=0.1, lr_unit="pair", burnin=0, epochs=200,
                 eval_every=2, patience=3, checkpoint_every=0)
    res = train(model, data, tc, seed=0, device=torch.device("cpu"), progress=False)
    scored = [(h["epoch"], h["val_recon"]) for h in res.history if "val_recon" in h]
    assert [e for e, _ in scored] == list(range(2, res.epochs_run + 1, 2))
    best_epoch, best = max(scored, key=lambda t: (t[1], -t[0]))    # first of the best
    assert (res.best_epoch, res.best_val) == (best_epoch, best)
    assert res.stopped_early and res.epochs_run == best_epoch + 3 * 2 < 200
    assert "validation RECON" in res.stop_reason
    assert validation_score(model, data) == best and 0 < best <= 1
    # without a closure there is nothing to score: no validation, no stop
    data.train_closure = None
    assert not data.validates() and validation_score(model, data) is None


# ------------------------------------------------------------------ early stopping on the loss
def _expected_stop(losses, burnin, patience, min_delta):
    """Epochs run under the rule: after burn-in, ``patience`` epochs in a row whose loss is
    not below (1 - min_delta) x the best so far."""
    best, bad = float("inf"), 0
    for e, loss in enumerate(losses):
        if e < burnin:
            continue
        if loss < (1 - min_delta) * best:
            best, bad = loss, 0
        else:
            bad += 1
        if bad >= patience:
            return e + 1
    return len(losses)


def _loss_run(tc, **kw):
    """A shallow run without validation pairs (reconstruction of the training closure);
    returns (result, model, parameters after each epoch)."""
    _, model, data, _ = _setup("shallow")
    data.val_pos = None
    after = {}
    res = train(model, data, tc, seed=0, device=torch.device("cpu"), progress=False,
                on_epoch=lambda e, rec: after.setdefault(
                    e + 1, {k: v.clone() for k, v in model.state_dict().items()}), **kw)
    return res, model, after


def test_loss_patience_stops_a_plateau_and_reports_it(tmp_path):
    """Training with and without the stop is the same trajectory; the stop comes at the
    epoch the rule names, is recorded in the result and the last history record."""
    cfg, _, _, _ = _setup("shallow")
    full_tc = replace(cfg.train, epochs=40, burnin=1, checkpoint_every=0)
    full, _, full_after = _loss_run(full_tc)
    assert full.epochs_run == 40 and not full.stopped_early and full.stop_reason is None
    assert all("stopped_early" not in h for h in full.history)
    losses = [h["loss"] for h in full.history]
    want = _expected_stop(losses, burnin=1, patience=3, min_delta=0.02)
    assert 1 + 3 < want < 40                      # this tree's loss plateaus well before 40
    res, model, _ = _loss_run(replace(full_tc, loss_patience=3, loss_min_delta=0.02))
    assert res.epochs_run == want == len(res.history)
    assert res.stopped_early and "training loss" in res.stop_reason
    assert res.stop_reason.startswith(f"after epoch {want}:")
    assert [h["loss"] for h in res.history] == losses[:want]
    assert res.history[-1]["stopped_early"] is True
    assert all("stopped_early" not in h for h in res.history[:-1])
    assert res.best_epoch == want                 # no validation: the last epoch is kept
    for k, v in model.state_dict().items():
        assert torch.equal(v, full_after[want][k])
    from hgraph.viz import plot_curves            # the record still plots
    assert plot_curves(res.history, tmp_path / "curves.png").stat().st_size > 0


def test_loss_patience_counts_only_epochs_after_burnin():
    """A loss that never falls by half: the first epoch after burn-in sets the best, then
    ``loss_patience`` epochs without progress stop the run."""
    cfg, _, _, _ = _setup("shallow")
    tc = replace(cfg.train, epochs=20, burnin=3, lr=1e-6, checkpoint_every=0,
                 loss_patience=2, loss_min_delta=0.5)
    res, _, _ = _loss_run(tc)
    assert res.stopped_early and res.epochs_run == 3 + 1 + 2


def test_loss_patience_zero_runs_every_epoch():
    cfg, _, _, _ = _setup("shallow")
    tc = replace(cfg.train, epochs=12, burnin=1, lr=1e-6, checkpoint_every=0,
                 loss_min_delta=0.5)
    assert tc.loss_patience == 0
    res, _, _ = _loss_run(tc)
    assert res.epochs_run == 12 and not res.stopped_early and res.stop_reason is None
    assert all("stopped_early" not in h for h in res.history)


def test_loss_early_stopping_resumes_to_the_same_stop():
    """A checkpoint taken mid-run holds the counters: resuming stops at the same epoch
    with the same parameters; resuming from the checkpoint of the stop runs nothing."""
    cfg, _, _, _ = _setup("shallow")
    tc = replace(cfg.train, epochs=40, burnin=1, checkpoint_every=1, loss_patience=3,
                 loss_min_delta=0.02)
    saved = {}

    def checkpoint(epoch, state):
        buf = io.BytesIO()
        torch.save({"epoch": epoch, **state}, buf)
        saved[epoch] = buf.getvalue()

    r1, m1, _ = _loss_run(tc, checkpoint=checkpoint)
    assert r1.stopped_early and r1.epochs_run < 40
    assert max(saved) == r1.epochs_run               # the stop writes the final checkpoint
    # mid-run: after some epochs without progress, so the counters matter
    mid = r1.epochs_run - 2
    state = torch.load(io.BytesIO(saved[mid]), weights_only=False)
    assert state["early_stop"]["bad_epochs"] >= 1
    r2, m2, _ = _loss_run(tc, resume=state)
    assert (r2.epochs_run, r2.stopped_early, r2.stop_reason) == \
        (r1.epochs_run, True, r1.stop_reason)
    assert [h["loss"] for h in r2.history] == [h["loss"] for h in r1.history]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    # the checkpoint of the stopping epoch: nothing left to train
    state = torch.load(io.BytesIO(saved[r1.epochs_run]), weights_only=False)
    r3, m3, after = _loss_run(tc, resume=state)
    assert r3.epochs_run == r1.epochs_run and r3.stopped_early and not after
    for a, b in zip(m1.state_dict().values(), m3.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signal handlers need the main thread")
def test_loss_early_stopping_survives_a_signal_mid_epoch():
    """SIGINT inside an epoch after the counters started: the resumed run stops where the
    uninterrupted one did, with the same parameters."""
    cfg, _, _, steps = _setup("shallow")
    tc = replace(cfg.train, epochs=40, burnin=1, checkpoint_every=0, loss_patience=3,
                 loss_min_delta=0.02)
    r1, m1, _ = _loss_run(tc)
    assert r1.stopped_early
    stop_in = r1.epochs_run - 1                      # epochs completed before the signal
    _, m2, d2, _ = _setup("shallow")
    d2.val_pos = None
    inner, calls = d2.embedder, [0]

    def embedder(model, ids, **kw):
        calls[0] += 1
        if calls[0] == stop_in * steps + 2:
            os.kill(os.getpid(), signal.SIGINT)
        return inner(model, ids, **kw)
    embedder.hides_pairs = inner.hides_pairs
    d2.embedder = embedder
    saved = {}

    def checkpoint(epoch, state):
        buf = io.BytesIO()
        torch.save({"epoch": epoch, **state}, buf)
        saved["state"] = buf.getvalue()

    with pytest.raises(TrainingInterrupted):
        train(m2, d2, tc, seed=0, device=torch.device("cpu"), progress=False,
              checkpoint=checkpoint)
    state = torch.load(io.BytesIO(saved["state"]), weights_only=False)
    assert state["epoch"] == stop_in and state["step"] == 2
    assert state["early_stop"]["bad_epochs"] >= 1
    r3, m3, _ = _loss_run(tc, resume=state)
    assert (r3.epochs_run, r3.stop_reason) == (r1.epochs_run, r1.stop_reason)
    assert [h["loss"] for h in r3.history] == [h["loss"] for h in r1.history]
    for a, b in zip(m1.state_dict().values(), m3.state_dict().values()):
        assert torch.equal(a, b)


def test_validation_patience_stop_is_recorded_too():
    """``patience`` on validation AP stops at the epoch it did before and now says so."""
    cfg, model, data, _ = _setup("shallow")
    tc = replace(cfg.train, epochs=30, burnin=1, checkpoint_every=0, eval_every=1)
    full = train(model, data, tc, seed=0, device=torch.device("cpu"), progress=False)
    aps = [h["val_ap"] for h in full.history]
    best, want = -1.0, 30
    for e, ap in enumerate(aps, 1):               # the rule: 1 evaluation without a new best
        if ap > best:
            best, best_e = ap, e
        elif e - best_e >= 1:
            want = e
            break
    assert want < 30
    cfg, model, data, _ = _setup("shallow")
    res = train(model, data, replace(tc, patience=1), seed=0, device=torch.device("cpu"),
                progress=False)
    assert res.epochs_run == want and res.stopped_early
    assert "validation AP" in res.stop_reason and res.history[-1]["stopped_early"] is True
    assert [h["loss"] for h in res.history] == [h["loss"] for h in full.history[:want]]


def test_validation_on_parent_mrr_selects_the_best_mrr_epoch():
    """``val_metric="mrr"``: every evaluation records ``val_mrr`` (the rank of each
    validation edge's parent among training nodes, known true parents filtered), the
    best epoch is the one with the highest of them, and its weights are the ones kept."""
    from hgraph.eval.link import parent_ranking
    cfg, model, base, _ = _setup("ramen")
    sp_ = prepare(cfg, load_dataset(cfg.data), torch.device("cpu"), torch.float32).splits
    data = replace(base, val_metric="mrr", val_filter=sp_.known_edges(),
                   val_candidates=sp_.train_mask)
    tc = replace(cfg.train, epochs=6, checkpoint_every=0, eval_every=1, lr=0.05)
    res = train(model, data, tc, seed=0, device=torch.device("cpu"), progress=False)
    mrrs = [h["val_mrr"] for h in res.history]
    assert all("val_ap" not in h for h in res.history)
    assert all(0.0 < v <= 1.0 for v in mrrs)
    assert len(set(mrrs)) > 1                     # training moves it
    assert res.best_epoch == 1 + mrrs.index(max(mrrs)) and res.best_val == max(mrrs)
    with torch.no_grad():                         # the kept weights score the best value
        z = data.embed_all(model)
    again = parent_ranking(model.manifold, z, sp_.val, sp_.known_edges(),
                           candidates=sp_.train_mask)["mrr"]
    assert again == pytest.approx(max(mrrs), abs=1e-12)


def test_known_edges_hold_train_and_validation_but_not_test():
    cfg, _, _, _ = _setup("ramen")
    sp_ = prepare(cfg, load_dataset(cfg.data), torch.device("cpu"), torch.float32).splits
    k = sp_.known_edges()
    for e in sp_.train[:20].tolist() + sp_.val.tolist():
        assert k[e[0], e[1]]
    for e in sp_.test.tolist():
        assert not k[e[0], e[1]]
    assert k.nnz == len(sp_.train) + len(sp_.val)


def test_validation_mrr_ranks_a_fixed_subset_of_at_most_val_mrr_queries(monkeypatch):
    import numpy as np
    import hgraph.train.pairs as T
    from hgraph.eval.link import parent_ranking
    cfg, model, base, _ = _setup("ramen")
    sp_ = prepare(cfg, load_dataset(cfg.data), torch.device("cpu"), torch.float32).splits
    assert len(sp_.val) > 1
    data = replace(base, val_metric="mrr", val_filter=sp_.known_edges(),
                   val_candidates=sp_.train_mask)
    monkeypatch.setattr(T, "VAL_MRR_QUERIES", 1)
    first, again = T.validation_score(model, data), T.validation_score(model, data)
    assert first == again                           # the same subset every time
    with torch.no_grad():
        z = data.embed_all(model)
    per = [parent_ranking(model.manifold, z, sp_.val[i:i + 1], sp_.known_edges(),
                          candidates=sp_.train_mask)["mrr"] for i in range(len(sp_.val))]
    rows = np.sort(np.random.default_rng(0).choice(len(sp_.val), 1, replace=False))
    assert first == pytest.approx(float(np.mean([per[i] for i in rows])), abs=1e-12)


def test_plateau_schedule_in_the_loop_drops_the_rate_then_stops(monkeypatch):
    """lr_schedule plateau in the loop is the fused trainer's rule (hgraph.train.schedule
    .Plateau): after `patience` validations without progress the rate is divided by 5, three
    times, and the next stall stops the run; the rule travels in checkpoints."""
    import hgraph.train.pairs as P
    cfg, model, data, _ = _setup()
    scores = iter([0.5] + [0.5] * 40)                 # never better: stalls every time
    monkeypatch.setattr(P, "validation_score", lambda m, d: next(scores))
    states = []
    res = train(model, data, replace(cfg.train, epochs=40, lr_schedule="plateau", patience=2,
                                     eval_every=1, checkpoint_every=1, lr=0.01, burnin=0), seed=0,
                device=torch.device("cpu"), progress=False,
                checkpoint=lambda e, st: states.append(st))
    lrs = [h["lr"] for h in res.history]
    assert lrs[:3] == [0.01] * 3 and lrs[3] == pytest.approx(0.002)
    assert sorted(set(round(x, 8) for x in lrs), reverse=True) == \
        [0.01, 0.002, 0.0004, 0.00008]
    assert res.stopped_early and "at the lowest rate" in res.stop_reason
    assert res.epochs_run == 9 and res.best_epoch == 1       # 1 + 2 + 2 + 2 + 2 stalls
    assert states[-1]["plateau"].drops_left == 0
