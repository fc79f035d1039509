"""Leak-freedom of hgraph.data.splits, checked as properties over seeds, on a
tree and on DAGs (one hand-made with diamonds, one random)."""
import networkx as nx
import numpy as np
import pytest

from hgraph.data.generate import generate_tree
from hgraph.data.splits import EdgeSplit, NodeSplit, edge_split, inductive_split
from hgraph.data.taxonomy import Taxonomy

SEEDS = [0, 1, 2, 3, 4]


# ------------------------------------------------------------------ fixtures
def small_tree(seed=0):
    return generate_tree(root_children=8, min_children=2, max_children=5,
                         leaf_prob=(0.1, 0.3, 0.5), seed=seed)


def diamond_dag():
    """Real (non-virtual) root 0; several diamonds and a node with 3 parents.

        0
       / \\
      1   2
     / \\ / \\
    3   4   5        4 has parents 1, 2
     \\ / \\ /
      6   7          6: 3, 4; 7: 4, 5
      |  /|
      8 / 9          8: 6, 7, 2 (skips levels); 9: 7
    """
    edges = [(1, 0), (2, 0), (3, 1), (4, 1), (4, 2), (5, 2), (6, 3), (6, 4),
             (7, 4), (7, 5), (8, 6), (8, 7), (8, 2), (9, 7), (10, 9), (11, 9), (11, 5)]
    return Taxonomy(names=[f"n{i}" for i in range(12)],
                    edges=np.array(edges, dtype=np.int64), root=0)


def random_dag(seed=0):
    """A generated tree plus extra parents one level up (stays acyclic)."""
    tax = small_tree(seed)
    rng = np.random.default_rng(100 + seed)
    lv = tax.level
    extra = []
    for u in np.flatnonzero(lv >= 2):
        if rng.random() < 0.3:
            cand = np.flatnonzero(lv == lv[u] - 1)
            cand = cand[cand != tax.parents(u)[0]]
            if len(cand):
                extra.append((u, rng.choice(cand)))
    edges = np.concatenate([tax.edges, np.array(extra, dtype=np.int64).reshape(-1, 2)])
    return Taxonomy(names=list(tax.names), edges=edges, root=tax.root, virtual_root=True)


GRAPHS = {"tree": small_tree, "diamond": lambda s: diamond_dag(), "dag": random_dag}


def row_set(a):
    return set(map(tuple, np.asarray(a).reshape(-1, 2).tolist()))


def csr_pairs(m):
    c = m.tocoo()
    return set(zip(c.row.tolist(), c.col.tolist()))


def reach_pairs(edges, n):
    """(u, v) with v reachable from u along child->parent edges, by networkx."""
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(map(tuple, np.asarray(edges).reshape(-1, 2).tolist()))
    return {(u, v) for u in range(n) for v in nx.descendants(g, u)}, g


# ------------------------------------------------------------------ edge split
@pytest.mark.parametrize("kind", list(GRAPHS))
@pytest.mark.parametrize("seed", SEEDS)
def test_edge_split_partition_and_fractions(kind, seed):
    tax = GRAPHS[kind](seed)
    vf, tf = (0.2, 0.3) if kind == "diamond" else (0.05, 0.10)
    s = edge_split(tax, val_frac=vf, test_frac=tf, seed=seed)
    assert isinstance(s, EdgeSplit) and s.num_nodes == tax.num_nodes
    e = tax.num_edges
    assert len(s.val) == round(vf * e) and len(s.test) == round(tf * e)
    for a in (s.train, s.val, s.test):
        assert a.dtype == np.int64 and a.ndim == 2 and a.shape[1] == 2
    tr, va, te = row_set(s.train), row_set(s.val), row_set(s.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert tr | va | te == row_set(tax.edges)
    assert len(s.train) + len(s.val) + len(s.test) == e
    assert csr_pairs(s.all_edges) == row_set(tax.edges)
    assert csr_pairs(s.all_closure) == csr_pairs(tax.closure)
    if tax.virtual_root:
        held = np.concatenate([s.val, s.test])
        assert not np.any(held[:, 1] == tax.root)


@pytest.mark.parametrize("kind", list(GRAPHS))
@pytest.mark.parametrize("seed", SEEDS)
def test_edge_split_train_closure_is_leak_free(kind, seed):
    tax = GRAPHS[kind](seed)
    vf, tf = (0.2, 0.3) if kind == "diamond" else (0.1, 0.2)
    s = edge_split(tax, val_frac=vf, test_frac=tf, seed=seed)
    n = tax.num_nodes
    closure = csr_pairs(s.train_closure)
    # exactly the pairs derivable from training edges, by an independent method
    expected, g_train = reach_pairs(s.train, n)
    assert closure == expected
    assert closure <= csr_pairs(tax.closure)
    # a held-out edge, or any (descendant, ancestor) pair that goes through it,
    # appears in the training closure only if training edges derive it another way
    _, g_all = reach_pairs(tax.edges, n)
    for c, p in np.concatenate([s.val, s.test]).tolist():
        assert ((c, p) in closure) == nx.has_path(g_train, c, p)
        below = nx.ancestors(g_all, c) | {c}          # nodes that reach c
        above = nx.descendants(g_all, p) | {p}        # nodes p reaches
        for d in below:
            for a in above:
                if (d, a) in closure:
                    assert nx.has_path(g_train, d, a)
        if tax.is_tree:                                # one path only: nothing derivable
            assert not any((d, a) in closure for d in below for a in above)


def test_edge_split_tree_held_out_edge_cuts_all_pairs():
    tax = small_tree(9)
    s = edge_split(tax, val_frac=0.1, test_frac=0.2, seed=9)
    c2 = tax.closure
    tc = s.train_closure
    for c, p in s.test.tolist():
        # every ancestor a of c at or above p is unreachable from c in training
        anc_p = set(c2[p].indices.tolist()) | {p}
        assert not anc_p & set(tc[c].indices.tolist())


@pytest.mark.parametrize("kind", list(GRAPHS))
def test_edge_split_deterministic(kind):
    tax = GRAPHS[kind](1)
    a = edge_split(tax, 0.2, 0.2, seed=5)
    b = edge_split(tax, 0.2, 0.2, seed=5)
    for x, y in [(a.train, b.train), (a.val, b.val), (a.test, b.test)]:
        np.testing.assert_array_equal(x, y)
    assert (a.train_closure != b.train_closure).nnz == 0
    if kind != "diamond":
        c = edge_split(tax, 0.2, 0.2, seed=6)
        assert row_set(a.test) != row_set(c.test)


def test_edge_split_protects_only_virtual_root():
    tax = diamond_dag()                                # real root: its edges may go
    seen = set()
    for seed in range(30):
        s = edge_split(tax, 0.0, 0.5, seed=seed)
        seen |= row_set(s.test)
    assert (1, 0) in seen and (2, 0) in seen
    # a tree whose root is virtual and has all the edges: nothing can be held out
    star = generate_tree(root_children=10, leaf_prob=(1.0,), seed=0)
    with pytest.raises(ValueError):
        edge_split(star, 0.1, 0.1)


@pytest.mark.parametrize("vf,tf", [(-0.1, 0.1), (0.5, 0.5), (1.0, 0.0)])
def test_edge_split_bad_fractions(vf, tf):
    with pytest.raises(ValueError):
        edge_split(small_tree(), vf, tf)


def test_edge_split_default_tree_sizes():
    tax = generate_tree()
    s = edge_split(tax, seed=0)
    e = tax.num_edges
    assert len(s.val) == round(0.05 * e) and len(s.test) == round(0.10 * e)
    assert s.train_closure.nnz < tax.closure.nnz
    # held-out pairs and everything below them are missing from the training closure
    held = np.concatenate([s.val, s.test])
    assert not s.train_closure[held[:, 0], held[:, 1]].any()


# ------------------------------------------------------------------ inductive
def check_node_split(tax, ns):
    n = tax.num_nodes
    assert isinstance(ns, NodeSplit) and ns.num_nodes == n
    held = np.zeros(n, dtype=bool)
    held[ns.heldout] = True
    np.testing.assert_array_equal(ns.train_mask, ~held)
    assert ns.heldout.dtype == np.int64 and np.all(np.diff(ns.heldout) > 0)
    assert not held[tax.root]
    # no training edge touches a held-out node; heldout_edges are the rest
    assert not held[ns.train_edges].any()
    assert held[ns.heldout_edges].any(axis=1).all()
    assert row_set(ns.train_edges) | row_set(ns.heldout_edges) == row_set(tax.edges)
    assert len(ns.train_edges) + len(ns.heldout_edges) == tax.num_edges
    # training closure: closure of training edges, no held-out node anywhere
    tc = ns.train_closure.tocoo()
    assert not held[tc.row].any() and not held[tc.col].any()
    expected, _ = reach_pairs(ns.train_edges, n) if n < 5000 else (None, None)
    if expected is not None:
        assert csr_pairs(ns.train_closure) == expected
    # held-out ancestors: true ancestors on held-out rows, nothing elsewhere
    ha = ns.heldout_ancestors
    assert ha.shape == (n, n) and ha.dtype == bool
    rows = np.flatnonzero(np.diff(ha.indptr))
    assert held[rows].all()
    for u in ns.heldout[:200].tolist():
        assert set(ha[u].indices.tolist()) == set(tax.closure[u].indices.tolist())
    return held


@pytest.mark.parametrize("kind", list(GRAPHS))
@pytest.mark.parametrize("seed", SEEDS)
def test_inductive_leaves(kind, seed):
    tax = GRAPHS[kind](seed)
    frac = 0.3 if kind == "diamond" else 0.1
    ns = inductive_split(tax, frac=frac, seed=seed, mode="leaves")
    held = check_node_split(tax, ns)
    leaves = np.flatnonzero(tax.is_leaf)
    assert tax.is_leaf[ns.heldout].all()
    assert len(ns.heldout) == round(frac * len(leaves))
    # removing leaves removes nothing else: training closure = full closure minus them
    full = {(u, v) for u, v in csr_pairs(tax.closure) if not held[u]}
    assert csr_pairs(ns.train_closure) == full


@pytest.mark.parametrize("kind", ["tree", "dag"])
@pytest.mark.parametrize("seed", SEEDS)
def test_inductive_subtrees(kind, seed):
    tax = GRAPHS[kind](seed)
    ns = inductive_split(tax, frac=0.2, seed=seed, mode="subtrees")
    held = check_node_split(tax, ns)
    target = round(0.2 * tax.num_nodes)
    assert 0 < len(ns.heldout) <= target
    # every descendant of a held-out node is held out
    desc = tax.closure.T.tocsr()
    for u in ns.heldout.tolist():
        assert held[desc[u].indices].all()
    # each held-out component hangs from a non-held-out parent at level >= 1,
    # i.e. its top node is an internal node of level >= 2
    tops = [u for u in ns.heldout.tolist() if not held[tax.parents(u)].all()]
    lv = tax.level
    assert all(lv[u] >= 2 for u in ns.heldout.tolist())
    if kind == "tree":
        assert all(not tax.is_leaf[u] for u in tops)


def test_inductive_subtrees_default_tree_close_to_frac():
    tax = generate_tree()
    ns = inductive_split(tax, frac=0.1, seed=0, mode="subtrees")
    target = round(0.1 * tax.num_nodes)
    assert 0.98 * target <= len(ns.heldout) <= target
    check_node_split(tax, ns)


def test_inductive_deterministic_and_errors():
    tax = small_tree(2)
    for mode in ("leaves", "subtrees"):
        a = inductive_split(tax, 0.2, seed=3, mode=mode)
        b = inductive_split(tax, 0.2, seed=3, mode=mode)
        np.testing.assert_array_equal(a.heldout, b.heldout)
        np.testing.assert_array_equal(a.train_edges, b.train_edges)
        c = inductive_split(tax, 0.2, seed=4, mode=mode)
        assert not np.array_equal(a.heldout, c.heldout)
    with pytest.raises(ValueError):
        inductive_split(tax, 0.1, mode="nodes")
    with pytest.raises(ValueError):
        inductive_split(tax, 1.0)
    flat = generate_tree(root_children=5, leaf_prob=(1.0,), seed=0)
    with pytest.raises(ValueError):
        inductive_split(flat, 0.1, mode="subtrees")
    assert len(inductive_split(tax, 0.0, mode="subtrees").heldout) == 0
