"""pipelines/ablate.py: grids parse, run into one folder each, and tabulate mean ± std."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from hgraph.cli import parse_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ablate():
    spec = importlib.util.spec_from_file_location("ablate", ROOT / "pipelines" / "ablate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_variant_of_every_grid_parses(ablate, tmp_path):
    for grid, g in ablate.GRIDS.items():
        labels = [v[0] for v in g["variants"]]
        assert len(set(labels)) == len(labels), grid
        names = {ablate.run_name(grid, lab) for lab in labels}
        assert len(names) == len(labels), f"{grid}: two variants share a folder name"
        for label, flags in g["variants"]:
            cfg, _ = parse_config(ablate.variant_args(grid, label, flags, [0, 1, 2], tmp_path, []))
            assert cfg.seeds == (0, 1, 2)


def test_grid_values_reach_the_config(ablate, tmp_path):
    def cfg_of(grid, label):
        flags = dict(ablate.GRIDS[grid]["variants"])[label]
        return parse_config(ablate.variant_args(grid, label, flags, [0], tmp_path, []))[0]
    assert cfg_of("lambda", "lambda=10").reg.reg_lambda == 10.0
    assert cfg_of("lambda", "lambda=0").reg.reg_lambda == 0.0
    assert cfg_of("regularizer", "huse").reg.reg_kinds == ("huse",)
    assert cfg_of("manifold", "lorentz learned c").model.learn_curvature
    assert cfg_of("hgcn-fanouts", "fanouts 5,5").sampling.fanouts == (5, 5)
    assert not cfg_of("hgcn-fanouts", "fanouts 5,5").sampling.full_batch
    # the graph regulariser on HGCN: an ablation now that it belongs to training
    hreg = cfg_of("hgcn-reg", "lambda=1")
    assert hreg.model.encoder == "hgcn" and hreg.reg.reg_lambda == 1.0
    assert cfg_of("hgcn-reg", "lambda=0").reg.reg_lambda == 0.0
    assert cfg_of("headline", "mlp-no-reg").model.encoder == "ramen"
    assert cfg_of("headline", "features").model.manifold == "euclidean"


def test_tiny_grid_runs_once_and_tabulates(ablate, tmp_path, monkeypatch, capsys):
    tiny = ["--gen-root-children", "4", "--gen-min-children", "2", "--gen-max-children", "3",
            "--gen-leaf-prob", "0.1", "0.3", "--feature-dim", "8", "--inductive-frac", "0.1",
            "--no-plots", "--no-progress"]
    monkeypatch.setitem(ablate.GRIDS, "tiny", {
        "title": "tiny", "base": tiny, "note": "a test grid",
        "variants": [("features", ["--encoder", "features"]),
                     ("mlp", ["--encoder", "ramen", "--reg-lambda", "0", "--epochs", "2"])]})
    out = tmp_path / "abl"
    assert ablate.main(["--grid", "tiny", "--out", str(out), "--seeds", "0", "1"]) == 0
    md = (out / "tiny.md").read_text()
    assert "| features | 2 |" in md and "| mlp | 2 |" in md and "±" in md
    assert "python pipelines/run.py" in md
    csv = (out / "tiny.csv").read_text().splitlines()
    header = csv[0].split(",")
    assert header[:2] == ["variant", "seeds"] and len(csv) == 3
    assert {"lp_roc_auc", "lp_roc_auc_std", "val_ap", "inductive_mrr", "infer_10k_s"} <= set(header)
    m = json.loads((out / "tiny" / "tiny__mlp" / "metrics.json").read_text())
    assert [s["seed"] for s in m["per_seed"]] == [0, 1]
    # a second call keeps the finished runs (no new folder, same metrics)
    before = sorted(p.name for p in (out / "tiny").iterdir())
    assert ablate.main(["--grid", "tiny", "--out", str(out), "--seeds", "0", "1"]) == 0
    assert sorted(p.name for p in (out / "tiny").iterdir()) == before
    assert "finished run" in capsys.readouterr().err
    assert ablate.main(["--grid", "tiny", "--out", str(out), "--only", "nope"]) == 2


def test_table_only_without_runs_is_a_clear_error(ablate, tmp_path, capsys):
    assert ablate.main(["--grid", "lambda", "--out", str(tmp_path), "--table-only"]) == 2
    assert "no finished run" in capsys.readouterr().err
