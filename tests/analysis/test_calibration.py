"""Calibration curves: P@1 against the handicap γ from hand-built group minima."""
import numpy as np
import pytest

from hgraph.analysis.calibration import (calibration_rows, calibration_table, gamma_grid,
                                         p1_against_gamma, plot_calibration)
from hgraph.analysis.runs import read_run
from hgraph.errors import HGraphInputError

# two items of seen categories, two of zero-shot ones; every nearest seen category is at 1.0.
# A seen item is right while its seen category wins (γ < d_unseen - 1), a zero-shot item once
# the unseen one does: seen items right below γ 0.505 and 0.205, zero-shot ones from 0.105, 0.405
ARRAYS = {"slice": np.array(["head", "tail", "zero", "zero"]),
          "test_d_seen": np.ones(4),
          "test_d_unseen": np.array([1.505, 1.205, 1.105, 1.405]),
          "test_hit_seen": np.array([True, True, False, False]),
          "test_hit_unseen": np.array([False, False, True, True])}
METRICS = {"cal_gamma": 0.2, "cal_val_p1_seen_0": 0.6, "cal_val_p1_seen": 0.55,
           "cal_val_p1_unseen_0": 0.3, "cal_val_p1_unseen": 0.35, "p1_seen": 0.5,
           "cal_p1_seen": 0.45, "p1_zero": 0.25, "cal_p1_zero": 0.3, "p1": 0.4, "cal_p1": 0.41}


def test_curve_by_hand():
    minima = {k[5:]: v for k, v in ARRAYS.items() if k.startswith("test_")}
    c = p1_against_gamma(minima, ARRAYS["slice"], np.array([0.0, 0.15, 0.3, 0.45, 0.6]))
    assert c["seen"] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.0])
    assert c["zero"] == pytest.approx([0.0, 0.5, 0.5, 1.0, 1.0])
    assert c["h"] == pytest.approx([0.0, 2 / 3, 0.5, 2 / 3, 0.0])


def test_grid():
    g = gamma_grid(0.05)
    assert len(g) == 301 and g[0] == 0 and g[-1] == pytest.approx(0.3)
    assert gamma_grid(0.2)[-1] == pytest.approx(0.6)


def test_rows_table_and_figure(tmp_path, write_run):
    run = read_run(write_run(tmp_path / "ds" / "cal", {}, {0: ARRAYS}, {0: METRICS}))
    (r,) = calibration_rows(run)
    # the harmonic mean peaks (2/3) first at the grid point just past 0.105 (grid step 0.002)
    assert r["best_h"] == pytest.approx(2 / 3) and r["best_gamma"] == pytest.approx(0.106)
    assert r["curve"]["seen"][0] == 1.0 and r["curve"]["zero"][0] == 0.0
    table = calibration_table([r]).splitlines()
    assert table[0].startswith("| seed | γ (chosen on validation) |")
    assert table[2] == ("| 0 | 0.2000 | 0.600 → 0.550 | 0.300 → 0.350 | 0.500 → 0.450 "
                        "| 0.250 → 0.300 | 0.400 → 0.410 | 0.667 (0.106) |")
    png = plot_calibration(run, [r])
    assert png == run.path / "calibration.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(run.path.glob(".*.tmp"))


def test_uncalibrated_run_is_refused(tmp_path, write_run):
    plain = {k: v for k, v in METRICS.items() if not k.startswith("cal_")}
    run = read_run(write_run(tmp_path / "plain", {}, {0: ARRAYS}, {0: plain}))
    with pytest.raises(HGraphInputError, match="calibrate: true"):
        calibration_rows(run)
    no_minima = {"slice": ARRAYS["slice"]}
    run = read_run(write_run(tmp_path / "old", {}, {0: no_minima}, {0: METRICS}))
    with pytest.raises(HGraphInputError, match="test_d_seen"):
        calibration_rows(run)
