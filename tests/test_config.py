"""Config tree, YAML loading and the generated CLI."""
import json

import pytest

from hgraph.cli import build_parser, main, parse_config
from hgraph.config import ENCODER_PRESETS, RunConfig, from_dict
from hgraph.errors import HGraphInputError


def test_defaults_roundtrip_json_sorted():
    cfg = RunConfig()
    d = json.loads(cfg.to_json())
    assert list(d) == sorted(d)
    assert from_dict(d, presets=False) == cfg


def test_cli_flags_override_yaml(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("model:\n  dim: 5\n  encoder: shallow\ntrain:\n  epochs: 7\nseeds: [1, 2]\n")
    cfg, _ = parse_config(["--config", str(y), "--dim", "3", "--fanouts", "5", "5"])
    assert cfg.model.dim == 3 and cfg.train.epochs == 7 and cfg.seeds == (1, 2)
    assert cfg.sampling.fanouts == (5, 5)
    cfg2, _ = parse_config(["--seed", "4", "--seed", "5", "--no-progress"])
    assert cfg2.seeds == (4, 5) and cfg2.progress is False


@pytest.mark.parametrize("text,word", [
    ("model:\n  dimm: 5\n", "unknown key model.dimm"),
    ("model:\n  dim: five\n", "model.dim"),
    ("train:\n  epochs: -3\n", "train.epochs"),
    ("model:\n  dim: -2\n", "model.dim"),
    ("bogus: 1\n", "unknown key 'bogus'"),
    ("model: [1, 2]\n", "mapping"),
    ("model:\n  dim: 5\n   bad indent: x\n", "invalid YAML"),
])
def test_bad_yaml_is_one_line_error(tmp_path, text, word):
    y = tmp_path / "bad.yaml"
    y.write_text(text)
    with pytest.raises(HGraphInputError) as e:
        parse_config(["--config", str(y)])
    msg = str(e.value)
    assert word in msg and str(y) in msg and "\n" not in msg


def test_cli_exit_2_and_nothing_written(tmp_path, capsys):
    y = tmp_path / "bad.yaml"
    y.write_text("train:\n  epochs: 0\n")
    out = tmp_path / "results"
    assert main(["--config", str(y), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()


def test_cli_choices_come_from_registries():
    from hgraph.losses import LOSSES
    from hgraph.manifolds import MANIFOLDS
    from hgraph.nn import ENCODERS
    from hgraph.tasks.item_models import ITEM_ENCODERS
    p = build_parser()
    acts = {a.dest: a for a in p._actions}
    # node encoders and item models (--task picks; the run checks its own registry)
    assert set(acts["model.encoder"].choices) == set(ENCODERS) | set(ITEM_ENCODERS)
    assert set(acts["model.manifold"].choices) == set(MANIFOLDS)
    assert set(acts["train.loss"].choices) == set(LOSSES)
    with pytest.raises(SystemExit):
        p.parse_args(["--encoder", "nope"])


def test_encoder_presets_fill_only_unset_fields():
    from hgraph.config import ENCODER_PRESETS
    cfg, _ = parse_config(["--encoder", "hgcn"])
    for k, v in ENCODER_PRESETS["hgcn"]["train"].items():
        assert getattr(cfg.train, k) == v
    cfg2, _ = parse_config(["--encoder", "hgcn", "--lr", "0.5", "--positives", "closure"])
    assert cfg2.train.lr == 0.5 and cfg2.train.positives == "closure"
    # shallow has its own training preset and trains in float64 unless told otherwise
    cfg3, _ = parse_config(["--val-frac", "0"])
    assert cfg3.train != RunConfig().train and cfg3.dtype == "float64"
    for k, v in ENCODER_PRESETS["shallow"]["train"].items():
        assert getattr(cfg3.train, k) == v
    cfg4, _ = parse_config(["--dtype", "float32"])
    assert cfg4.dtype == "float32"


def test_feature_presets_apply_to_their_encoder_and_features_only():
    """ramen on text features starts at the text geometry (residual, dim 384, slow
    Adam, selection on validation parent MRR); the user's flags still win; ramen on
    other features and other encoders on text keep their own presets."""
    from hgraph.config import ENCODER_PRESETS, FEATURE_PRESETS
    want = FEATURE_PRESETS[("ramen", "text")]
    cfg, _ = parse_config(["--encoder", "ramen", "--features", "text"])
    for sec in ("model", "train"):
        for k, v in want[sec].items():
            assert getattr(getattr(cfg, sec), k) == v, (sec, k)
    assert cfg.reg.reg_lambda == ENCODER_PRESETS["ramen"]["reg"]["reg_lambda"]
    assert cfg.train.batch_size == ENCODER_PRESETS["ramen"]["train"]["batch_size"]
    mine, _ = parse_config(["--encoder", "ramen", "--features", "text", "--lr", "0.2",
                            "--dim", "16", "--no-residual", "--val-metric", "ap"])
    assert (mine.train.lr, mine.model.dim, mine.model.residual, mine.train.val_metric) == \
        (0.2, 16, False, "ap")
    plain, _ = parse_config(["--encoder", "ramen"])
    assert not plain.model.residual and plain.model.dim == 10
    assert plain.train.lr == ENCODER_PRESETS["ramen"]["train"]["lr"] and plain.train.val_metric == "ap"
    # the dataset's default features count: hpo and icd10cm come with text
    for ds in ("hpo", "icd10cm:no7th"):
        dflt, _ = parse_config(["--encoder", "ramen", "--dataset", ds])
        assert dflt.model.residual and dflt.train.val_metric == "mrr"
    tfidf, _ = parse_config(["--encoder", "ramen", "--dataset", "wordnet-nouns"])
    assert not tfidf.model.residual
    hgcn, _ = parse_config(["--encoder", "hgcn", "--features", "text"])
    assert hgcn.train.lr == ENCODER_PRESETS["hgcn"]["train"]["lr"] and hgcn.model.dim == 10
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--val-metric", "auc"])


def test_burnin_lr_divisor_flag_and_conversion_hint():
    cfg, _ = parse_config(["--burnin-lr-divisor", "100"])
    assert cfg.train.burnin_lr_divisor == 100.0
    with pytest.raises(SystemExit):              # the old name is gone from the CLI
        build_parser().parse_args(["--burnin-factor", "10"])
    # poincare-embeddings' -burnin_multiplier 0.01 given as a divisor: burn-in 100x faster
    with pytest.raises(HGraphInputError) as e:
        parse_config(["--burnin-lr-divisor", "0.01"])
    msg = str(e.value)
    assert "train.burnin_lr_divisor must be >= 1" in msg and "faster than training" in msg
    assert "-burnin_multiplier" in msg and "0.01 -> 100" in msg and "\n" not in msg
    assert from_dict({"train": {"burnin_lr_divisor": 1}}).train.burnin_lr_divisor == 1.0


def test_lr_unit_and_loss_patience_flags():
    cfg, _ = parse_config(["--encoder", "ramen"])      # no preset sets them: the defaults
    assert (cfg.train.lr_unit, cfg.train.loss_patience, cfg.train.loss_min_delta) == \
        ("batch", 0, 1e-4)
    cfg, _ = parse_config(["--lr-unit", "pair", "--loss-patience", "5",
                           "--loss-min-delta", "0.01"])
    assert (cfg.train.lr_unit, cfg.train.loss_patience, cfg.train.loss_min_delta) == \
        ("pair", 5, 0.01)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--lr-unit", "epoch"])


@pytest.mark.parametrize("train,word", [
    ({"loss_patience": -1}, "train.loss_patience must be >= 0"),
    ({"loss_min_delta": -0.1}, "train.loss_min_delta must be in [0, 1)"),
    ({"loss_min_delta": 1.0}, "train.loss_min_delta must be in [0, 1)"),
    ({"burnin_lr_divisor": 0.5}, "train.burnin_lr_divisor must be >= 1"),
])
def test_early_stopping_and_burnin_values_checked(train, word):
    with pytest.raises(HGraphInputError) as e:
        from_dict({"train": train})
    assert word in str(e.value) and "\n" not in str(e.value)
    assert from_dict({"train": {"loss_patience": 0, "loss_min_delta": 0.0}}).train.loss_patience \
        == 0


def test_shallow_preset_selects_on_the_training_closure_and_the_user_can_change_it(tmp_path):
    """The shallow preset keeps selecting (and dropping its rate, and stopping) on the
    training closure's MAP whether or not edges are held out (selecting on validation AP
    never met the plateau rule on the default tree: results/shallow_heldout); the user's
    --val-metric always wins, and the summary row names the selection."""
    for splits in ([], ["--val-frac", "0", "--test-frac", "0"], ["--val-frac", "0.2"]):
        assert parse_config(["--encoder", "shallow", *splits])[0].train.val_metric == "recon"
        for metric in ("recon", "mrr", "ap"):
            mine, _ = parse_config(["--encoder", "shallow", *splits, "--val-metric", metric])
            assert mine.train.val_metric == metric, (metric, splits)
    from pathlib import Path
    from hgraph.results import summary_row
    cfg, _ = parse_config(["--encoder", "shallow", "--val-metric", "ap"])
    row = summary_row(cfg, Path("r"), {}, (), "cpu", "abc")
    assert row["selected_on"] == "ap" and row["task"] == "nodes"


def test_shallow_preset_converges_by_default_and_flags_override_it():
    """The shallow preset: a hyperboloid table trained by the fused trainer from nested
    cones at a rate per pair, no burn-in, selection, rate drops and early stopping on the
    training closure's MAP (without validation edges: --val-frac 0); every field still
    yields to a flag or YAML value."""
    cfg, _ = parse_config(["--val-frac", "0", "--test-frac", "0"])
    assert cfg.model.encoder == "shallow" and cfg.dtype == "float64"
    want = ENCODER_PRESETS["shallow"]["train"]
    assert (cfg.model.init, cfg.model.manifold, cfg.train.trainer, cfg.train.lr_unit) == \
        ("cone", "lorentz", "fused", "pair")
    assert {k: getattr(cfg.train, k) for k in want} == want
    assert cfg.train.burnin == 0 and cfg.train.val_metric == "recon" and cfg.train.patience > 0
    # a rate per pair survives a change of batch size: only the batch changes
    cfg64, _ = parse_config(["--batch-size", "64"])
    assert (cfg64.train.lr, cfg64.train.lr_unit, cfg64.train.batch_size) == \
        (cfg.train.lr, "pair", 64)
    old, _ = parse_config(["--init", "uniform", "--optimizer", "radam", "--lr", "0.05",
                           "--lr-unit", "batch", "--burnin", "2", "--patience", "0",
                           "--val-metric", "ap", "--epochs", "20", "--batch-size", "1024"])
    assert (old.model.init, old.train.optimizer, old.train.lr, old.train.lr_unit,
            old.train.burnin, old.train.patience, old.train.val_metric, old.train.epochs) == \
        ("uniform", "radam", 0.05, "batch", 2, 0, "ap", 20)
    assert from_dict({"train": {"optimizer": "radam"}}).train.optimizer == "radam"
    # other encoders keep their own set-ups
    hgcn, _ = parse_config(["--encoder", "hgcn"])
    assert (hgcn.model.init, hgcn.train.optimizer, hgcn.train.lr_unit,
            hgcn.train.val_metric) == ("uniform", "radam", "batch", "ap")
