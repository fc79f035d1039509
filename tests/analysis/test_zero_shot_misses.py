"""Zero-shot misses: each kind of miss on a hand-built tree, shares and median cosine by hand."""
import math

import numpy as np
import pytest

from hgraph.analysis.runs import read_run
from hgraph.analysis.zero_shot_misses import (KINDS, miss_kind, parent_sets, zero_shot_miss_rows,
                                              zero_shot_miss_table, zero_shot_misses)


def test_every_kind(toy_tree):
    n, par = toy_tree.index, parent_sets(toy_tree)
    assert par[n("a11")] == {n("a1")} and par[n("r")] == set()
    kind = lambda top, true: miss_kind(n(top), n(true), par)  # noqa: E731
    assert kind("a", "a1") == "parent"
    assert kind("a11", "a1") == "child"
    assert kind("a2", "a1") == "sibling"
    assert kind("r", "a1") == "grandparent"
    assert kind("a11", "a") == "grandchild"
    assert kind("b1", "a1") == "further" and kind("b", "a1") == "further"
    assert kind("a11", "b1") == "further"


def _case(tree, make_data):
    """Seven zero-shot misses (one per kind, parent twice), one zero-shot hit, one
    seen miss (ignored); 2-d text vectors with known cosines to the truth."""
    n = tree.index
    s = 2 ** -0.5
    x = np.zeros((tree.num_nodes, 2), dtype=np.float32)
    for name, v in {"a1": (1, 0), "a": (2, 0), "a11": (0, 3), "a2": (1, 1), "r": (-1, 0),
                    "b1": (1, -1), "b": (0, 1)}.items():
        x[n(name)] = v
    # (text, true category) rows: item 6 has two categories, the first one (a2) counts
    rows = [("i0", "a1"), ("i1", "a1"), ("i2", "a1"), ("i3", "a1"), ("i4", "a"), ("i5", "a1"),
            ("i6", "a2"), ("i6", "a1"), ("i7", "a1"), ("i8", "a1")]
    data = make_data(tree, rows, x_nodes=x)
    per_item = {  # item id, slice, top-1; the cosine of top-1 and truth in the comment
        "items": np.arange(9),
        "slice": np.array(["zero"] * 8 + ["head"]),
        "top1": np.array([n(c) for c in ("a",      # parent, cos 1
                                         "a11",    # child, 0
                                         "a2",     # sibling, s
                                         "r",      # grandparent, -1
                                         "a11",    # grandchild (of a), 0
                                         "b1",     # further, s
                                         "a",      # parent (of a2), s
                                         "a1",     # hit: not a miss
                                         "b")])}   # seen item: ignored
    expected = {"zero": 8, "misses": 7, "parent": 2 / 7, "child": 1 / 7, "sibling": 1 / 7,
                "grandparent": 1 / 7, "grandchild": 1 / 7, "further": 1 / 7,
                "median_cosine": s}     # of -1, 0, 0, s, s, s, 1
    return data, per_item, expected


def test_shares_and_cosine_by_hand(toy_tree, make_data):
    data, a, expected = _case(toy_tree, make_data)
    got = zero_shot_misses(a["items"], a["slice"], a["top1"], data.truth, parent_sets(toy_tree),
                           data.x_nodes)
    assert got == pytest.approx(expected, abs=1e-6)
    assert sum(got[k] for k in KINDS) == pytest.approx(1.0)


def test_no_miss(toy_tree, make_data):
    data, a, _ = _case(toy_tree, make_data)
    hit = a["slice"] == "zero"
    hit[:7] = False
    got = zero_shot_misses(a["items"][hit], a["slice"][hit], a["top1"][hit], data.truth,
                           parent_sets(toy_tree), data.x_nodes)
    assert got["zero"] == 1 and got["misses"] == 0 and got["parent"] == 0.0
    assert math.isnan(got["median_cosine"])


def test_rows_and_table_from_run_folders(tmp_path, toy_tree, make_data, write_run):
    data, a, expected = _case(toy_tree, make_data)
    runs = [read_run(write_run(tmp_path / name, {}, {0: a, 3: a})) for name in ("r1", "r2")]
    rows = zero_shot_miss_rows(runs, lambda run: data)
    assert [(r["run"], r["seed"]) for r in rows] == [("r1", 0), ("r1", 3), ("r2", 0), ("r2", 3)]
    assert rows[0]["misses"] == 7 and rows[3]["parent"] == pytest.approx(2 / 7)
    table = zero_shot_miss_table(rows).splitlines()
    assert table[0] == ("| run | seed | zero-shot items | misses | parent | child | sibling | "
                        "grandparent | grandchild | further | median cosine top-1 / truth |")
    assert table[1] == "|---" * 11 + "|"
    assert table[2] == "| r1 | 0 | 8 | 7 | 0.286 | 0.143 | 0.143 | 0.143 | 0.143 | 0.143 | 0.707 |"
