"""Tests for hgraph.data.generate: tree shape against its analytic law, names,
determinism, and the features-only parent-recovery rate."""
import numpy as np
import pytest

from hgraph.data.generate import (CURVLEARN_LEAF_PROB, expected_level_sizes,
                                  generate_tree, hierarchical_features)
from hgraph.data.taxonomy import Taxonomy, transitive_closure


def level_size_moments(root_children, lo, hi, leaf_prob):
    """Mean and variance of n_L for the branching process of generate_tree.

    n_{L+1} = sum_{i <= n_L} B_i K_i with B ~ Bernoulli(1 - q_L), K ~ U{lo..hi}:
    E[n_{L+1}] = E[n_L] mu,  Var[n_{L+1}] = E[n_L] s2 + mu^2 Var[n_L].
    """
    ks = np.arange(lo, hi + 1, dtype=float)
    ek, ek2 = ks.mean(), (ks ** 2).mean()
    mean, var = [1.0, float(root_children)], [0.0, 0.0]
    for q in leaf_prob:
        mu = (1 - q) * ek
        s2 = (1 - q) * ek2 - mu ** 2
        mean.append(mean[-1] * mu)
        var.append(mean[-2] * s2 + mu ** 2 * var[-1])
    return np.array(mean), np.array(var)


@pytest.fixture(scope="module")
def default_tree():
    return generate_tree()


def test_expected_sizes_match_curvlearn_law():
    m = expected_level_sizes()
    np.testing.assert_allclose(m, [1, 100, 91 * 12.5, 91 * 12.5 * 0.807 * 12.5,
                                   91 * 12.5 * 0.807 * 12.5 * 0.496 * 12.5])
    mean, _ = level_size_moments(100, 5, 20, CURVLEARN_LEAF_PROB)
    np.testing.assert_allclose(m, mean)
    # the tree CurvLearn ships lies within 2 sd of the expectation at every level
    _, var = level_size_moments(100, 5, 20, CURVLEARN_LEAF_PROB)
    shipped = np.array([1, 100, 1091, 11074, 68593])
    assert np.all(np.abs(shipped - mean) <= 2 * np.sqrt(var) + 1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_level_sizes_within_4_sd(seed):
    tax = generate_tree(seed=seed)
    counts = np.array(tax.meta["level_counts"])
    mean, var = level_size_moments(100, 5, 20, CURVLEARN_LEAF_PROB)
    assert len(counts) == 5 and counts[0] == 1 and counts[1] == 100
    assert np.all(np.abs(counts - mean) <= 4 * np.sqrt(var) + 1e-9), (counts, mean)
    assert tax.num_nodes == counts.sum()


def test_big_tree_level_sizes_and_leaf_shares_close_to_law():
    tax = generate_tree(root_children=1000, seed=5)       # ~840k nodes
    counts = np.array(tax.meta["level_counts"], dtype=float)
    mean = expected_level_sizes(root_children=1000)
    np.testing.assert_allclose(counts, mean, rtol=0.03)
    share = np.array(tax.meta["leaves_per_level"]) / counts
    np.testing.assert_allclose(share[1:4], CURVLEARN_LEAF_PROB, atol=0.02)
    assert share[4] == 1.0


def test_default_tree_shape(default_tree):
    tax = default_tree
    counts = np.array(tax.meta["level_counts"])
    assert 75_000 < tax.num_nodes < 92_000          # CurvLearn ships 80,858 + root
    # level array filled in by the generator equals BFS depth
    np.testing.assert_array_equal(tax.level, np.repeat(np.arange(5), counts))
    share = np.array(tax.meta["leaves_per_level"]) / counts
    # binomial tolerance: 4 sd of the share at each level
    for lvl, q in enumerate(CURVLEARN_LEAF_PROB, start=1):
        sd = np.sqrt(q * (1 - q) / counts[lvl])
        assert abs(share[lvl] - q) <= 4 * sd
    # leaves counted in meta agree with the graph
    leaf_per_level = np.bincount(tax.level[tax.is_leaf], minlength=5)
    np.testing.assert_array_equal(leaf_per_level, tax.meta["leaves_per_level"])
    assert tax.virtual_root and tax.root == 0 and tax.names[0] == "0"
    assert tax.is_tree


def test_child_counts_uniform(default_tree):
    tax = default_tree
    k = tax.out_degree[(~tax.is_leaf) & (tax.level >= 1)]
    assert k.min() == 5 and k.max() == 20
    freq = np.bincount(k, minlength=21)[5:] / len(k)
    np.testing.assert_allclose(freq, 1 / 16, atol=0.01)
    assert tax.out_degree[tax.root] == 100


def test_ids_edges_and_names_small():
    tax = generate_tree(root_children=6, min_children=2, max_children=4,
                        leaf_prob=(0.2, 0.4), seed=3)
    e = tax.edges
    assert e.dtype == np.int64 and e.shape == (tax.num_nodes - 1, 2)
    np.testing.assert_array_equal(e[:, 0], np.arange(1, tax.num_nodes))
    assert np.all(e[:, 1] < e[:, 0])                 # breadth-first ids
    lv = tax.level.copy()
    del tax.__dict__["level"]                        # recompute by BFS
    np.testing.assert_array_equal(tax.level, lv)
    assert tax.depth <= 3
    assert len(set(tax.names)) == tax.num_nodes
    assert tax.keys == tax.names
    for c, p in e.tolist():
        head, _, idx = tax.names[c].rpartition("-")
        assert head == tax.names[p]
        assert tax.names[c].count("-") == lv[c]
    # children of each node are numbered 1..k
    for u in range(tax.num_nodes):
        kids = tax.children(u)
        nums = sorted(int(tax.names[c].rsplit("-", 1)[1]) for c in kids)
        assert nums == list(range(1, len(kids) + 1))
    # the constructed taxonomy equals the one from_edges would build
    ref = Taxonomy.from_edges([tax.names[c] for c in e[:, 0]],
                              [tax.names[p] for p in e[:, 1]], tree=True)
    assert ref.num_nodes == tax.num_nodes
    assert ref.closure.nnz == tax.closure.nnz


def test_deterministic_and_seed_dependent():
    a = generate_tree(root_children=20, seed=7)
    b = generate_tree(root_children=20, seed=7)
    c = generate_tree(root_children=20, seed=8)
    np.testing.assert_array_equal(a.edges, b.edges)
    assert a.names == b.names and a.meta == b.meta
    assert a.num_nodes != c.num_nodes or not np.array_equal(a.edges, c.edges)


def test_leaf_prob_edge_cases():
    t = generate_tree(root_children=5, leaf_prob=(1.0, 0.0), seed=0)
    assert t.num_nodes == 6 and t.meta["level_counts"] == [1, 5]
    assert t.meta["leaves_per_level"] == [0, 5]
    t = generate_tree(root_children=3, min_children=2, max_children=2, leaf_prob=(0.0, 0.0), seed=0)
    assert t.meta["level_counts"] == [1, 3, 6, 12]
    t = generate_tree(root_children=4, leaf_prob=(), seed=0)
    assert t.meta["level_counts"] == [1, 4]


@pytest.mark.parametrize("kw", [dict(root_children=0), dict(min_children=0),
                                dict(min_children=6, max_children=5),
                                dict(leaf_prob=(0.5, 1.5)), dict(max_nodes=1000)])
def test_bad_arguments(kw):
    with pytest.raises(ValueError):
        generate_tree(**kw)


# ------------------------------------------------------------------ features
def parent_recovery(tax, x, per_level=800, seed=1):
    """Top-1 rate of 'parent = most cosine-similar node one level up'."""
    lv = tax.level
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    parent = np.full(tax.num_nodes, -1)
    parent[tax.edges[:, 0]] = tax.edges[:, 1]
    rng = np.random.default_rng(seed)
    rates, sizes = {}, {}
    for L in range(2, tax.depth + 1):
        nodes = np.flatnonzero(lv == L)
        q = rng.choice(nodes, min(per_level, len(nodes)), replace=False)
        cand = np.flatnonzero(lv == L - 1)
        best = cand[(xn[q] @ xn[cand].T).argmax(1)]
        rates[L] = float((best == parent[q]).mean())
        sizes[L] = len(nodes)
    overall = sum(rates[L] * sizes[L] for L in rates) / sum(sizes.values())
    return overall, rates


def test_features_shape_dtype_deterministic(default_tree):
    x = hierarchical_features(default_tree, dim=16, seed=3)
    assert x.shape == (default_tree.num_nodes, 16) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, hierarchical_features(default_tree, dim=16, seed=3))
    assert not np.array_equal(x, hierarchical_features(default_tree, dim=16, seed=4))


def test_features_only_parent_recovery_is_partial(default_tree):
    x = hierarchical_features(default_tree)
    overall, rates = parent_recovery(default_tree, x)
    # measured on all nodes, seed 0: overall 0.275; levels 2/3/4: 0.84/0.58/0.22
    assert 0.12 < overall < 0.45, rates
    assert rates[2] > rates[3] > rates[4]
    n3 = default_tree.meta["level_counts"][3]
    assert rates[4] > 500 / n3            # >= 500x chance even at the deepest level
    assert rates[4] < 0.5                 # but most deep nodes are misplaced


def test_noise_controls_recovery(default_tree):
    lo, _ = parent_recovery(default_tree, hierarchical_features(default_tree, noise=2.0),
                            per_level=400)
    hi, _ = parent_recovery(default_tree, hierarchical_features(default_tree, noise=0.1),
                            per_level=400)
    assert hi > lo + 0.2


def test_features_dag_average_of_parents():
    # root 0; level 1: 1, 2; level 2: 3 (parents 1 and 2), 4 (parent 1)
    edges = np.array([[1, 0], [2, 0], [3, 1], [3, 2], [4, 1]], dtype=np.int64)
    tax = Taxonomy(names=[str(i) for i in range(5)], edges=edges, root=0)
    # decay ~ 0 makes level-2 steps vanish; no noise, no distractors, no scaling
    x = hierarchical_features(tax, dim=8, noise=0.0, distractor_frac=0.0, seed=0,
                              decay=1e-9, scale_spread=0.0)
    np.testing.assert_allclose(x[3], (x[1] + x[2]) / 2, atol=1e-6)
    np.testing.assert_allclose(x[4], x[1], atol=1e-6)
    np.testing.assert_allclose(x[0], 0.0)
    assert np.linalg.norm(x[1] - x[2]) > 0.1


def test_features_distractor_split():
    tax = generate_tree(root_children=10, seed=0)
    # noise 0, no scaling: the distractor columns are root-independent noise, the
    # signal columns of the root are exactly 0
    x = hierarchical_features(tax, dim=12, noise=0.0, distractor_frac=0.25, seed=0,
                              scale_spread=0.0)
    assert int((x[0] == 0).sum()) == 9
    with pytest.raises(ValueError):
        hierarchical_features(tax, distractor_frac=1.0)
