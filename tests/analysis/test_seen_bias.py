"""Seen bias: hand-computed shares from a tiny run folder with known per-item arrays."""
import math

import numpy as np
import pytest

from hgraph.analysis.runs import DataCache, read_run
from hgraph.analysis.seen_bias import seen_bias, seen_bias_rows, seen_bias_table

#: split settings under which every item trains
ALL_TRAIN = {"zero_shot_frac": 0.0, "val_frac": 0.0, "test_frac": 0.0}


def test_shares_by_hand(toy_tree, make_data):
    tax = toy_tree
    n = tax.index
    # every item trains (split fractions 0): a1 and b1 have training items
    data = make_data(tax, [("x on a1", "a1"), ("y on b1", "b1"), ("z on a1", "a1")])
    trained = data.trained(0)
    assert set(np.flatnonzero(trained)) == {n("a1"), n("b1")}
    slices = np.array(["zero", "zero", "zero", "zero", "head"])
    top1 = np.array([n("a1"), n("a2"), n("b1"), n("a"), n("a1")])
    p1 = np.array([0.0, 1.0, 0.0, 0.0, 1.0])
    got = seen_bias(slices, top1, p1, trained, data.cand)
    assert got["candidates_trained"] == pytest.approx(2 / 6)    # 6 candidates: all but r
    assert got["zero_top1_trained"] == pytest.approx(2 / 4)     # a1, b1 of a1, a2, b1, a
    assert got["zero_miss_trained"] == pytest.approx(2 / 3)     # a1, b1 of the misses a1, b1, a
    assert got["zero_p1"] == pytest.approx(1 / 4)


def test_no_zero_shot_items_gives_nan_not_a_warning(toy_tree, make_data):
    data = make_data(toy_tree, [("x", "a1")])
    with np.errstate(all="raise"):
        got = seen_bias(np.array(["head"]), np.array([1]), np.array([1.0]), data.trained(0),
                        data.cand)
    assert math.isnan(got["zero_top1_trained"]) and math.isnan(got["zero_p1"])


def test_trained_follows_the_seeds_split(toy_tree, make_data):
    """With half of the two categories zero-shot, exactly the other one trains."""
    data = make_data(toy_tree, [("x", "a1"), ("y", "b1"), ("z", "b1")], zero_shot_frac=0.5)
    for seed in range(4):
        sp = data.splits(seed)
        assert len(sp.zero_shot) == 1
        assert set(np.flatnonzero(data.trained(seed))) == {toy_tree.index("a1"),
                                                           toy_tree.index("b1")} - set(sp.zero_shot)


def test_rows_and_table_from_a_run_folder(tmp_path, toy_tree, make_data, write_run):
    tax, n = toy_tree, toy_tree.index
    data = make_data(tax, [("x on a1", "a1"), ("y on b1", "b1")])
    arrays = {"slice": np.array(["zero", "zero", "tail"]),
              "top1": np.array([n("b1"), n("a2"), n("a1")]),
              "p1": np.array([0.0, 1.0, 1.0]), "items": np.array([0, 1, 2])}
    # seed 1 finished without its per-item file: skipped
    run = read_run(write_run(tmp_path / "toyset" / "r1", ALL_TRAIN, {0: arrays, 1: None}))
    loads = []
    cache = DataCache(lambda cfg: loads.append(cfg) or data)
    rows = seen_bias_rows([run], cache.for_run)
    assert len(loads) == 1
    assert [(r["dataset"], r["run"], r["seed"]) for r in rows] == [("toyset", "r1", 0)]
    r = rows[0]
    assert (r["candidates_trained"], r["zero_top1_trained"], r["zero_miss_trained"],
            r["zero_p1"]) == pytest.approx((2 / 6, 1 / 2, 1.0, 1 / 2))
    table = seen_bias_table(rows).splitlines()
    assert table[0].startswith("| dataset | run | seed | candidates with training items |")
    assert table[1] == "|---|---|---|---|---|---|---|"
    assert table[2] == "| toyset | r1 | 0 | 0.333 | 0.500 | 1.000 | 0.500 |"


def test_data_cache_loads_once_per_data_settings(tmp_path, toy_tree, make_data, write_run):
    data = make_data(toy_tree, [("x", "a1"), ("y", "b1"), ("z", "b1")])
    loads = []
    cache = DataCache(lambda cfg: loads.append(cfg) or data)
    a = read_run(write_run(tmp_path / "a", ALL_TRAIN))
    b = read_run(write_run(tmp_path / "b", {**ALL_TRAIN, "zero_shot_frac": 0.5}))
    c = read_run(write_run(tmp_path / "c", {**ALL_TRAIN, "dataset": "other"}))
    da, db = cache.for_run(a), cache.for_run(b)
    assert len(loads) == 1 and da.tax is db.tax
    assert da.split_settings["zero_shot_frac"] == 0.0 and db.split_settings["zero_shot_frac"] == 0.5
    assert da.trained(0).sum() == 2 and db.trained(0).sum() == 1
    assert cache.for_run(b) is db
    cache.for_run(c)
    assert len(loads) == 2
