"""Run folders of every config version stay readable: the committed ones under
``results/`` (written before the ``sampling`` / ``reg`` sections existed), and
version-1 dicts upgraded with their meaning kept."""
import json
from pathlib import Path

import pytest

from hgraph.config import CONFIG_VERSION, from_dict, upgrade
from hgraph.errors import HGraphInputError
from hgraph.results import read_run_config

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted(p.parent for p in (ROOT / "results").rglob("config.json"))


def test_there_are_committed_run_folders_of_version_1():
    assert len(COMMITTED) >= 10
    versions = {json.loads((d / "config.json").read_text()).get("version", 1) for d in COMMITTED}
    assert 1 in versions


@pytest.mark.parametrize("run_dir", COMMITTED, ids=lambda d: str(d.relative_to(ROOT)))
def test_committed_run_folder_config_reads(run_dir):
    raw = json.loads((run_dir / "config.json").read_text())
    cfg = read_run_config(run_dir)
    if raw.get("version", 1) == 1:
        train = raw["train"]
        assert cfg.sampling.fanouts == tuple(train["fanouts"])
        assert cfg.sampling.full_batch == train["full_batch"]
        assert cfg.reg.reg_kinds == tuple(train["reg_kinds"])
        # renamed in version 2: the same divisor of the burn-in rate
        assert cfg.train.burnin_lr_divisor == train["burnin_factor"]
        # version 1 applied the regulariser to ramen only
        want = train["reg_lambda"] if raw["model"]["encoder"] == "ramen" else 0.0
        assert cfg.reg.reg_lambda == want
    # the upgraded config writes back as the current version and reads again unchanged
    again = from_dict(json.loads(cfg.to_json()), presets=False)
    assert again == cfg and json.loads(cfg.to_json())["version"] == CONFIG_VERSION


def test_compare_labels_committed_ramen_runs_with_their_lambda():
    import importlib.util
    spec = importlib.util.spec_from_file_location("compare", ROOT / "pipelines" / "compare.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    ramen = [d for d in COMMITTED if (d / "metrics.json").exists()
             and json.loads((d / "config.json").read_text())["model"]["encoder"] == "ramen"]
    assert ramen
    for d in ramen[:3]:
        run = compare.load_run(d)
        lam = json.loads((d / "config.json").read_text())["train"]["reg_lambda"]
        label = compare.label_of(run)
        assert label.startswith("ramen/") and (f"/λ={lam:g}" in label) == (lam > 0)


def test_upgrade_moves_v1_keys_and_keeps_meaning():
    v1 = {"model": {"encoder": "hgcn"},
          "train": {"epochs": 3, "fanouts": [5, 5], "full_batch": False, "reg_lambda": 1.0,
                    "reg_warmup": 2, "hard_negatives": True}}
    d = upgrade(v1)
    assert d["sampling"] == {"fanouts": [5, 5], "full_batch": False}
    assert d["reg"] == {"reg_lambda": 0.0, "reg_warmup": 2, "hard_negatives": True}
    assert d["train"] == {"epochs": 3} and v1["train"]["reg_lambda"] == 1.0   # input untouched
    v1["model"]["encoder"] = "ramen"
    assert upgrade(v1)["reg"]["reg_lambda"] == 1.0
    cur = {"version": CONFIG_VERSION, "model": {"encoder": "hgcn"}, "reg": {"reg_lambda": 2.0}}
    assert upgrade(cur)["reg"]["reg_lambda"] == 2.0
    with pytest.raises(HGraphInputError, match="version"):
        upgrade({"version": CONFIG_VERSION + 1})


def test_upgrade_renames_burnin_factor():
    v1 = {"train": {"burnin_factor": 20.0, "fanouts": [5]}}
    d = upgrade(v1)
    assert d["train"] == {"burnin_lr_divisor": 20.0} and "burnin_factor" in v1["train"]
    # burnin_factor alone marks version 1 (a config.json of version 1 always has it)
    assert upgrade({"train": {"burnin_factor": 5.0}})["train"] == {"burnin_lr_divisor": 5.0}
    assert from_dict({"train": {"burnin_factor": 5.0}}).train.burnin_lr_divisor == 5.0
    # a version-1 value below 1 is rejected with the conversion, not run silently
    with pytest.raises(HGraphInputError, match="burnin_lr_divisor must be >= 1"):
        from_dict({"train": {"burnin_factor": 0.01}})
    # the current version knows only the new name
    with pytest.raises(HGraphInputError, match="unknown key train.burnin_factor"):
        from_dict({"version": CONFIG_VERSION, "train": {"burnin_factor": 5.0}})
    # a current-version reg section is kept when only the rename marks version 1
    d = upgrade({"model": {"encoder": "hgcn"}, "train": {"burnin_factor": 5.0},
                 "reg": {"reg_lambda": 0.5}})
    assert d["reg"]["reg_lambda"] == 0.5


def test_regulariser_defaults_off_except_in_the_ramen_preset():
    assert from_dict({"model": {"encoder": "ramen"}}).reg.reg_lambda == 1.0
    for enc in ("shallow", "hgcn", "features"):
        assert from_dict({"model": {"encoder": enc}}).reg.reg_lambda == 0.0
    # any encoder can be given the regulariser
    assert from_dict({"model": {"encoder": "hgcn"}, "reg": {"reg_lambda": 0.5}}).reg.reg_lambda \
        == 0.5


def test_unreadable_run_folder_config_is_one_line_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(HGraphInputError, match="config.json"):
        read_run_config(tmp_path)
    with pytest.raises(HGraphInputError, match="no config.json"):
        read_run_config(tmp_path / "missing")


def test_json_files_hold_null_for_nan_and_inf_at_any_depth(tmp_path):
    """metrics.json is strict JSON: NaN / inf (Python or numpy floats, in nested dicts,
    lists, tuples and arrays) are written as null, and the readers take null where NaN was."""
    import numpy as np
    from hgraph.results import aggregate, atomic_write_json, fmt
    obj = {"mean_std": {"p1_zero": {"mean": float("nan"), "std": np.float64("nan"), "n": 2},
                        "p1": {"mean": np.float32(0.5), "std": 0.0, "n": np.int64(2)}},
           "per_seed": [{"seed": 0, "p1_zero": float("nan"), "ece": float("inf")},
                        {"seed": 1, "p1_zero": 0.25, "ece": -np.inf, "ok": np.bool_(True)}],
           "arrays": np.array([1.0, np.nan, np.inf]), "pair": (np.float16("nan"), 1),
           "path": tmp_path}
    atomic_write_json(tmp_path / "metrics.json", obj)
    text = (tmp_path / "metrics.json").read_text()

    def strict(c):
        raise ValueError(f"bare {c} in the file")
    m = json.loads(text, parse_constant=strict)
    assert m["mean_std"]["p1_zero"] == {"mean": None, "std": None, "n": 2}
    assert m["mean_std"]["p1"] == {"mean": 0.5, "std": 0.0, "n": 2}
    assert m["per_seed"][0] == {"seed": 0, "p1_zero": None, "ece": None}
    assert m["per_seed"][1]["ece"] is None and m["per_seed"][1]["ok"] is True
    assert m["arrays"] == [1.0, None, None] and m["pair"] == [None, 1]
    assert m["path"] == str(tmp_path)
    # readers: a seed's null is left out of the mean; a null mean prints as a dash
    agg = aggregate(m["per_seed"])
    assert agg["p1_zero"] == {"mean": 0.25, "std": 0.0, "n": 1} and "ece" not in agg
    assert fmt(m["mean_std"]["p1_zero"]["mean"], m["mean_std"]["p1_zero"]["std"]) == "–"
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists()


def test_report_commands_read_null_metrics(tmp_path, capsys):
    """An item run folder whose metrics.json has null (not NaN) means: the item table and
    compare.py print a dash for them."""
    import importlib.util
    from hgraph.results import atomic_write_json
    from hgraph.tasks.items import item_config
    from hgraph.tasks.items_report import table
    run = tmp_path / "run"
    run.mkdir()
    cfg = item_config(dataset="csv:x.csv", seeds=[0, 1])
    (run / "config.json").write_text(cfg.to_json() + "\n")
    (run / "command.txt").write_text("python pipelines/run.py --task items\n")
    nan = float("nan")
    atomic_write_json(run / "metrics.json", {
        "mean_std": {"p1": {"mean": 0.5, "std": 0.1, "n": 2},
                     "p1_zero": {"mean": nan, "std": nan, "n": 2},
                     "p1_seen": {"mean": 0.5, "std": nan, "n": 2},
                     "best_epoch": {"mean": 1.0, "std": 0.0, "n": 2},
                     "epochs_run": {"mean": 2.0, "std": 0.0, "n": 2}},
        "per_seed": [{"seed": 0, "p1": 0.4, "p1_zero": nan}, {"seed": 1, "p1": 0.6, "p1_zero": nan}],
        "run": {"seeds": [0, 1], "command": "x"}})
    row = table({"r": str(run)}).splitlines()[2]
    assert row.startswith("| r | 2 | 0.500 ± 0.100 |") and "| – |" in row
    spec = importlib.util.spec_from_file_location("compare", ROOT / "pipelines" / "compare.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    assert compare.main([str(run), "--out", str(tmp_path / "t"), "--metrics", "p1", "p1_zero",
                         "p1_seen"]) == 0
    md = (tmp_path / "t.md").read_text()
    assert "| 0.500 ± 0.100 | – | 0.500 |" in md


def test_an_item_run_folder_from_before_the_one_harness_reads_as_a_versioned_config(tmp_path):
    """Item run folders written before the one harness kept flat settings in metrics.json
    and no config.json (results/items/icd10cm/...): they load through the same reader as
    every run folder, as an item run with their settings in the sections."""
    import json
    from hgraph.results import load_run, read_run_config
    d = tmp_path / "ramen"
    d.mkdir()
    flat = {"dataset": "icd10cm:no7th", "encoder": "ramen", "lr": 3e-4, "reg_lambda": 0.1,
            "hard_negatives": 16, "zero_shot_frac": 0.1, "seeds": [0, 1], "out": "results/items",
            "name": "ramen", "progress": True, "val_max": 1000}
    (d / "metrics.json").write_text(json.dumps({
        "mean_std": {"p1": {"mean": 0.43, "std": 0.01, "n": 2}},
        "per_seed": [{"seed": 0, "p1": 0.42}, {"seed": 1, "p1": 0.44}],
        "run": {"config": flat, "command": "python pipelines/items.py ...", "seeds_done": [0, 1]}}))
    cfg = read_run_config(d)
    assert cfg.task == "items" and cfg.model.encoder == "ramen" and cfg.train.lr == 3e-4
    assert cfg.reg.reg_lambda == 0.1 and cfg.items.sibling_negatives == 16
    assert cfg.seeds == (0, 1) and cfg.data.val_frac == 0.1      # the item defaults it had
    r = load_run(d)
    assert r["metrics"]["p1"]["mean"] == 0.43 and r["config"] == cfg
    assert r["command"].startswith("python pipelines/items.py")
