"""The cosine baseline's P@1 by hand, and per category context on a tiny data set."""
import math

import numpy as np

from hgraph.analysis.context_features import context_feature_lines, context_features, cosine_p1
from hgraph.analysis.runs import item_settings


def test_cosine_p1_by_hand():
    # nodes 0-2 are candidates, node 3 is not (it would be item 3's best match)
    x_nodes = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32)
    x_items = np.array([[2, 0.1],      # -> 0: hit
                        [0.1, 1],      # -> 1, truth 2: miss
                        [1, 0.9],      # -> 2: hit
                        [-1, 0]],      # -> 1 (node 3 is no candidate), truth 1: hit
                       dtype=np.float32)
    truth = [np.array([0]), np.array([2]), np.array([2]), np.array([1])]
    cand = np.array([0, 1, 2])
    got = cosine_p1(x_nodes, x_items, np.arange(4), truth, cand,
                    np.array(["zero", "zero", "head", "tail"], dtype=object))
    assert got == {"p1": 0.75, "p1_seen": 1.0, "p1_zero": 0.5, "n": 4}
    # chunking does not change the result; items are picked by id
    got2 = cosine_p1(x_nodes, x_items, np.array([3, 1]), [truth[3], truth[1]], cand,
                     np.array(["tail", "zero"]), chunk=1)
    assert got2 == {"p1": 0.5, "p1_seen": 1.0, "p1_zero": 0.0, "n": 2}


def test_one_row_per_context(toy_tree, make_data):
    """a1's and b1's items point half-way between the two codes under context 0 and
    at their own code under context 1: P@1 0 -> 1."""
    n = toy_tree.index
    rows = [("p", "a1"), ("q", "a1"), ("u", "b1"), ("v", "b1")]
    x_items = np.array([[1, 0.01], [1, 0.01], [0.01, 1], [0.01, 1]], dtype=np.float32)

    def load(config):
        assert config.data.dataset == "toy" and config.items.zero_shot_frac == 0.3
        x = np.full((toy_tree.num_nodes, 2), -1.0, dtype=np.float32)
        if config.items.category_context == 0:     # both codes the wrong way round
            x[n("a1")], x[n("b1")] = (0, 1), (1, 0)
        else:
            x[n("a1")], x[n("b1")] = (1, 0), (0, 1)
        # one test item per category (2 items, test_frac 0.5); both train one
        return make_data(toy_tree, rows, x_nodes=x, x_items=x_items, test_frac=0.5)

    cfg = item_settings({"dataset": "toy", "category_context": 3, "zero_shot_frac": 0.3})
    got = context_features(cfg, seed=1, contexts=[0, 1], load=load)
    assert [r["category_context"] for r in got] == [0, 1]
    assert [(r["p1"], r["p1_seen"], r["n"]) for r in got] == [(0.0, 0.0, 2), (1.0, 1.0, 2)]
    assert all(math.isnan(r["p1_zero"]) for r in got)      # every test item is "tail"
    lines = context_feature_lines(got).splitlines()
    assert lines == ["category_context 0: P@1 0.0000, seen 0.0000, zero-shot nan",
                     "category_context 1: P@1 1.0000, seen 1.0000, zero-shot nan"]
