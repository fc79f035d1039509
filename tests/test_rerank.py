"""The learned second stage of the item task: each feature means what it says on
a hand-built taxonomy, the reranked lists keep recall@k and the first stage's
rank outside the list, the trees learn a planted cue, and a run scores test both
ways (rr_* metrics, the report's @rr view)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hgraph.data.taxonomy import Taxonomy, transitive_closure
from hgraph.tasks import rerank as R

#          root
#        /      \
#      a          b
#    /  \        /  \
#  a1    a2    b1    b9 "b, unspecified"
#  |
#  a11
NAMES = {"root": "Everything", "a": "Alpha disorders", "b": "Beta disorders",
         "a1": "Alpha one", "a2": "Other alpha disorders", "b1": "Beta one",
         "b9": "Beta disorder, unspecified", "a11": "Alpha one one"}
EDGES = [("a", "root"), ("b", "root"), ("a1", "a"), ("a2", "a"), ("b1", "b"), ("b9", "b"),
         ("a11", "a1")]


def _data(item_texts):
    # the display names are the node texts (no tax.texts)
    tax = Taxonomy.from_edges([c for c, _ in EDGES], [p for _, p in EDGES], names=NAMES)
    n = tax.num_nodes
    gen = torch.Generator().manual_seed(0)
    return SimpleNamespace(
        tax=tax, cand=np.arange(n), up_hops=transitive_closure(tax.edges, n, hops=True),
        x_nodes=torch.randn(n, 8, generator=gen, dtype=torch.float64),
        x_items=torch.randn(len(item_texts), 8, generator=gen, dtype=torch.float64),
        item_texts=list(item_texts))


def _id(tax, key):
    return list(tax.keys).index(key)


def test_list_features_on_a_hand_built_taxonomy():
    data = _data(["Beta disorder NOS", "alpha one"])
    tax = data.tax
    i = {k: _id(tax, k) for k in NAMES}
    ids = np.array([[i["b"], i["b9"], i["b1"], i["a"]],
                    [i["a1"], i["a"], i["a11"], i["a2"]]])
    score = np.array([[-1.0, -1.5, -2.5, -4.0], [-0.5, -0.7, -0.8, -3.0]])
    train_count = np.zeros(tax.num_nodes, dtype=np.int64)
    train_count[i["b1"]] = 3
    f = R.ListFeatures(data)(np.array([0, 1]), ids, score, train_count)
    assert f.shape == (8, len(R.FEATURES))
    col = {name: f[:, j] for j, name in enumerate(R.FEATURES)}
    np.testing.assert_allclose(col["gap_top1"], [0, 0.5, 1.5, 3.0, 0, 0.2, 0.3, 2.5])
    np.testing.assert_allclose(col["position"], [0, 1, 2, 3] * 2)
    np.testing.assert_allclose(col["gap_next"], [0.5, 1.0, 1.5, 0, 0.2, 0.1, 2.2, 0], atol=1e-6)
    # item 0's top-1 is b: b9 and b1 are its children, a is neither
    np.testing.assert_array_equal(col["parent_of_top1"][:4], [0, 0, 0, 0])
    np.testing.assert_array_equal(col["child_of_top1"][:4], [0, 1, 1, 0])
    np.testing.assert_array_equal(col["sibling_of_top1"][:4], [0, 0, 0, 1])
    # item 1's top-1 is a1: a is its parent, a11 its child, a2 its sibling
    np.testing.assert_array_equal(col["parent_of_top1"][4:], [0, 1, 0, 0])
    np.testing.assert_array_equal(col["child_of_top1"][4:], [0, 0, 1, 0])
    np.testing.assert_array_equal(col["sibling_of_top1"][4:], [0, 0, 0, 1])
    # the list's structure: b has two children in item 0's list; a has a1, a2 (children)
    # and a11 (a grandchild) in item 1's
    np.testing.assert_array_equal(col["children_in_list"], [2, 0, 0, 0, 1, 2, 0, 0])
    np.testing.assert_array_equal(col["descendants_in_list"], [2, 0, 0, 0, 1, 3, 0, 0])
    np.testing.assert_array_equal(col["ancestors_in_list"], [0, 1, 1, 0, 1, 0, 2, 1])
    np.testing.assert_array_equal(col["depth"], [1, 2, 2, 1, 2, 1, 3, 2])
    np.testing.assert_array_equal(col["leaf"], [0, 1, 1, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(col["seen"], [0, 0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(col["log_items"][2], np.log(4))
    # cue words: "NOS" in item 0, "unspecified" in b9, "Other" in a2
    np.testing.assert_array_equal(col["item_nos"], [1] * 4 + [0] * 4)
    np.testing.assert_array_equal(col["nos_unspecified"], [0, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(col["cand_other"], [0, 0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(col["nos_leaf"], [0, 1, 1, 0, 0, 0, 0, 0])
    # text similarity: the raw vectors' cosine, and character n-grams ("alpha one" is
    # nearer "Alpha one" than "Other alpha disorders")
    xi = torch.nn.functional.normalize(data.x_items, dim=-1)
    xn = torch.nn.functional.normalize(data.x_nodes, dim=-1)
    np.testing.assert_allclose(col["cosine"][4], float(xi[1] @ xn[i["a1"]]), rtol=1e-6)
    assert col["tfidf"][4] > col["tfidf"][7] > 0


def test_reranked_lists_keep_recall_and_the_rank_outside():
    ids = np.array([[5, 6, 7], [1, 2, 3]])
    order = np.array([[2, 0, 1], [1, 2, 0]])
    truth = [np.array([7]), np.array([9])]
    top, rank = R.reranked(ids, order, np.array([3, 12]), truth, top=2)
    np.testing.assert_array_equal(top, [[7, 5], [2, 3]])
    np.testing.assert_array_equal(rank, [1, 12])       # 7 moved up; 9 was never in the list
    with pytest.raises(AssertionError):
        R.reranked(ids, order, np.array([3, 2]), truth)  # a listed rank with no truth listed


def test_labels_mark_any_true_category():
    lab = R.labels(np.array([[1, 2, 3], [4, 5, 6]]), [np.array([3, 9]), np.array([7])])
    np.testing.assert_array_equal(lab, [[0, 0, 1], [0, 0, 0]])


def _planted(n, k, rng, cue_strength=1.0):
    """Lists where the truth sits at a random position and carries the cue
    ``nos_unspecified``; the first stage's score is noise."""
    F = len(R.FEATURES)
    X = rng.normal(size=(n * k, F)).astype(np.float32)
    j = R.FEATURES.index("nos_unspecified")
    X[:, j] = 0
    pos = rng.integers(0, k, size=n)
    lab = np.zeros((n, k), dtype=bool)
    lab[np.arange(n), pos] = True
    X[np.arange(n) * k + pos, j] = cue_strength
    return X, lab


def test_reranker_learns_a_planted_cue_and_ignores_lists_without_truth():
    rng = np.random.default_rng(0)
    k = 10
    seen, unseen = _planted(300, k, rng), _planted(200, k, rng)
    # items whose list misses the truth: all-False labels, dropped from the fit
    miss = (rng.normal(size=(50 * k, len(R.FEATURES))).astype(np.float32),
            np.zeros((50, k), dtype=bool))
    rr = R.Reranker(seed=0)
    info = rr.fit([(np.concatenate([seen[0], miss[0]]), np.concatenate([seen[1], miss[1]])),
                   unseen])
    assert info["items_0"] == 300 and info["items_1"] == 200
    X, lab = _planted(100, k, rng)
    order = rr.order(X, k)
    first = np.take_along_axis(lab, order, axis=1)[:, 0]
    assert first.mean() > 0.95                 # chance: 0.1
    assert sorted(order[0].tolist()) == list(range(k))
    with pytest.raises(ValueError, match="nothing to rerank"):
        R.Reranker().fit([miss])


@pytest.mark.xdist_group("minilm")
@pytest.mark.parametrize("encoder", ["features", "ramen"])
def test_reranked_run_scores_test_both_ways(tmp_path, encoder):
    """A run with rerank: k: the rr_* ranks agree with the first stage's outside its
    top k, recall@k is unchanged, and the report's @rr view pairs the two per item."""
    from hgraph.pipeline import run as run_items
    from hgraph.tasks.items import item_config
    from hgraph.tasks.items_report import RR, load_run, paired, table
    cfg = item_config(dataset="csv:data/samples/hpo_slice_edges.csv",
                         items="data/samples/hpo_slice_items.csv",
                         node_text="data/samples/hpo_slice_text.csv", out=str(tmp_path),
                         progress=False, epochs=2, negatives=64, cost_items=20, threads=1,
                         encoder=encoder, rerank=10)
    m = run_items(cfg).per_seed[0]
    assert m["rr_k"] == 10 and m["rr_fit_items_seen"] > 0 and m["rr_fit_items_unseen"] > 0
    assert (m["rr_twin_train_s"] > 0) == (encoder == "ramen")
    a = np.load(next(tmp_path.glob("*/per_item_seed0.npz")))
    outside = a["rank"] > 10
    np.testing.assert_array_equal(a["rr_rank"][outside], a["rank"][outside])
    assert (a["rr_rank"][~outside] <= 10).all()
    assert m["rr_p1"] == pytest.approx(float((a["rr_rank"] == 1).mean()))
    d = str(next(tmp_path.glob("*/metrics.json")).parent)
    v = load_run(d + RR)["mean_std"]
    assert v["p1"]["mean"] == pytest.approx(m["rr_p1"])
    diff = {(r["metric"], r["slice"]): r["diff"] for r in paired(d + RR, d)}
    assert diff[("p1", "all")] == pytest.approx(m["rr_p1"] - m["p1"])
    assert "| rr | 1 |" in table({"rr": d + RR})


def test_rerank_setting_is_checked():
    from hgraph.errors import HGraphInputError
    from hgraph.tasks.items import config_from_dict
    with pytest.raises(HGraphInputError, match="rerank"):
        config_from_dict({"rerank": 5})
    assert config_from_dict({"rerank": 20}).items.rerank == 20
