"""pipelines/analyse.py: one subcommand per analysis, --out pages, bad input in one line."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import hgraph.analysis.runs as runs_mod

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("analyse", ROOT / "pipelines" / "analyse.py")
analyse = importlib.util.module_from_spec(spec)
spec.loader.exec_module(analyse)

CAL_ARRAYS = {"slice": np.array(["head", "zero"]), "test_d_seen": np.ones(2),
              "test_d_unseen": np.array([1.5, 1.1]), "test_hit_seen": np.array([True, False]),
              "test_hit_unseen": np.array([False, True])}
CAL_METRICS = {k: 0.5 for k in ("cal_gamma", "cal_val_p1_seen_0", "cal_val_p1_seen",
                                "cal_val_p1_unseen_0", "cal_val_p1_unseen", "p1_seen",
                                "cal_p1_seen", "p1_zero", "cal_p1_zero", "p1", "cal_p1")}


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_help_names_every_analysis(capsys):
    with pytest.raises(SystemExit) as e:
        analyse.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("seen-bias", "zero-shot-misses", "calibration", "context-features"):
        assert name in out
    with pytest.raises(SystemExit):
        analyse.main(["zero-shot-misses", "--help"])
    out = capsys.readouterr().out
    assert "per_item_seed<s>.npz" in out and "--out FILE.md" in out


@pytest.mark.parametrize("argv", [[], ["no-such-analysis"], ["seen-bias"],
                                  ["context-features", "x", "--seed", "-1"],
                                  ["calibration", "x", "--threads", "0"]])
def test_bad_command_lines(argv, capsys):
    with pytest.raises(SystemExit) as e:
        analyse.main(argv)
    assert e.value.code == 2
    _one_error_line(capsys.readouterr().err)


def test_bad_run_folder(tmp_path, capsys):
    assert analyse.main(["seen-bias", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in _one_error_line(capsys.readouterr().err)
    assert analyse.main(["calibration", str(tmp_path)]) == 2
    assert "no metrics.json" in _one_error_line(capsys.readouterr().err)


def test_calibration_writes_page_and_figure(tmp_path, write_run, capsys):
    run = write_run(tmp_path / "ds" / "cal", {}, {0: CAL_ARRAYS}, {0: CAL_METRICS})
    out = tmp_path / "tables" / "cal.md"
    assert analyse.main(["calibration", str(run), "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    text = out.read_text().splitlines()
    assert text[0] == (f"Command: `python pipelines/analyse.py calibration {run} --out {out}` "
                       "(one thread).")
    assert f"### {run}" in text and any(t.startswith("| 0 | 0.5000 |") for t in text)
    assert (run / "calibration.png").stat().st_size > 1000
    assert torch.get_num_threads() == 1
    (run / "calibration.png").unlink()
    assert analyse.main(["calibration", str(run), "--no-plot"]) == 0
    assert "| seed | γ" in capsys.readouterr().out and not (run / "calibration.png").exists()


def test_seen_bias_over_a_folder_of_runs(tmp_path, write_run, toy_tree, make_data, capsys,
                                         monkeypatch):
    n = toy_tree.index
    data = make_data(toy_tree, [("x", "a1")])
    loads = []
    monkeypatch.setattr(runs_mod, "load_run_data", lambda cfg: loads.append(cfg) or data)
    arrays = {"slice": np.array(["zero", "zero"]), "top1": np.array([n("a1"), n("b")]),
              "p1": np.array([0.0, 0.0])}
    for name in ("r2", "r1"):
        write_run(tmp_path / "toyset" / name, {"val_frac": 0.0, "test_frac": 0.0}, {0: arrays})
    assert analyse.main(["seen-bias", str(tmp_path / "toyset"), "--threads", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2:] == ["| toyset | r1 | 0 | 0.167 | 0.500 | 0.500 | 0.000 |",
                       "| toyset | r2 | 0 | 0.167 | 0.500 | 0.500 | 0.000 |"]
    assert len(loads) == 1 and torch.get_num_threads() == 2
