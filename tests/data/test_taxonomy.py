"""Invariants of hgraph.data.taxonomy.Taxonomy, and the CurvLearn tree it must load."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hgraph.data.io import read_taxonomy
from hgraph.data.taxonomy import VIRTUAL_ROOT, Taxonomy, transitive_closure
from hgraph.errors import HGraphInputError

REPO = Path(__file__).resolve().parents[2]
SHIPPED = Path(os.environ.get("HGRAPH_CURVLEARN_TREE",
                              REPO.parent / "shared" / "data" / "curvlearn" / "cate_tree.csv"))


def _diamond() -> Taxonomy:
    # top <- left, right <- bottom <- leaf ; plus a side branch top <- side
    child = ["left", "right", "bottom", "bottom", "leaf", "side"]
    parent = ["top", "top", "left", "right", "bottom", "top"]
    return Taxonomy.from_edges(child, parent, lines=[2, 3, 4, 5, 6, 7])


def _brute_closure(tax: Taxonomy) -> set:
    out = set()
    for u in range(tax.num_nodes):
        stack = list(tax.parents(u))
        seen = set()
        while stack:
            v = int(stack.pop())
            if v not in seen:
                seen.add(v)
                stack.extend(tax.parents(v).tolist())
        out |= {(u, v) for v in seen}
    return out


def test_diamond_levels_and_closure():
    tax = _diamond()
    idx = tax.index
    assert tax.names[tax.root] == "top" and not tax.virtual_root
    assert not tax.is_tree
    lv = {tax.names[i]: int(tax.level[i]) for i in range(tax.num_nodes)}
    assert lv == {"top": 0, "left": 1, "right": 1, "side": 1, "bottom": 2, "leaf": 3}
    c = tax.closure
    pairs = {(int(u), int(v)) for u, v in tax.closure_pairs()}
    assert pairs == _brute_closure(tax)
    assert c[idx("leaf"), idx("top")] and c[idx("leaf"), idx("left")] and c[idx("leaf"), idx("right")]
    assert not c[idx("top"), idx("leaf")] and not c[idx("side"), idx("left")]
    assert c.diagonal().sum() == 0  # proper ancestors only
    # a closure pair (u, v) always has level[u] > level[v]
    lvl = tax.level
    assert np.all(lvl[tax.closure_pairs()[:, 0]] > lvl[tax.closure_pairs()[:, 1]])


def test_duplicate_edges_are_merged():
    tax = Taxonomy.from_edges(["b", "b", "c"], ["a", "a", "b"])
    assert tax.num_edges == 2 and tax.is_tree


def test_virtual_root_for_several_roots():
    tax = Taxonomy.from_edges(["b", "d", "e"], ["a", "c", "c"])
    assert tax.virtual_root
    assert tax.names[tax.root] == VIRTUAL_ROOT and tax.keys[tax.root] == VIRTUAL_ROOT
    assert sorted(tax.names[c] for c in tax.children(tax.root)) == ["a", "c"]
    assert tax.level[tax.index("e")] == 2 and tax.level[tax.root] == 0
    assert tax.closure[tax.index("e"), tax.root]


def test_isolated_nodes_hang_below_the_root():
    tax = Taxonomy.from_edges(["b"], ["a"], nodes=["a", "b", "z"])
    assert tax.virtual_root and tax.level[tax.index("z")] == 1


def test_cycles_are_named_with_their_line():
    with pytest.raises(HGraphInputError) as ei:
        Taxonomy.from_edges(["b", "c", "d", "e"], ["a", "d", "e", "c"],
                            source="t.csv", lines=[2, 3, 4, 5])
    msg = str(ei.value)
    assert "cycle" in msg and msg.startswith("t.csv:")
    cyc = msg.split("cycle in the parent relation: ")[1].split(" (")[0].split(" -> ")
    assert cyc[0] == cyc[-1] and set(cyc) == {"c", "d", "e"}
    with pytest.raises(HGraphInputError, match="cycle.*x -> y -> x|cycle.*y -> x -> y"):
        Taxonomy.from_edges(["x", "y"], ["y", "x"], source="t.csv")


def test_self_loop_and_tree_conflict():
    with pytest.raises(HGraphInputError, match="t.csv:3: self-loop"):
        Taxonomy.from_edges(["b", "c"], ["a", "c"], source="t.csv", lines=[2, 3])
    with pytest.raises(HGraphInputError, match="t.csv:4: node 'c' has two parents"):
        Taxonomy.from_edges(["b", "c", "c"], ["a", "a", "b"], tree=True, source="t.csv",
                            lines=[2, 3, 4])
    # the same input is a fine DAG
    assert Taxonomy.from_edges(["b", "c", "c"], ["a", "a", "b"]).num_edges == 3


def test_check_levels():
    tax = _diamond()
    good = tax.level.copy()
    tax.check_levels(good)
    given = np.full(tax.num_nodes, -1)
    tax.check_levels(given)  # unknown levels are not checked
    given[tax.index("leaf")] = 2
    with pytest.raises(HGraphInputError, match="level 2 but depth 3"):
        tax.check_levels(given, lines=np.arange(tax.num_nodes) + 10)


def test_closure_matches_brute_force_on_random_dags():
    rng = np.random.default_rng(0)
    for n in (2, 10, 60):
        child, parent = [], []
        for i in range(1, n):
            for p in set(rng.integers(0, i, size=int(rng.integers(1, 4))).tolist()):
                child.append(i)
                parent.append(p)
        tax = Taxonomy.from_edges(child, parent)
        got = {(int(u), int(v)) for u, v in tax.closure_pairs()}
        assert got == _brute_closure(tax)
        assert (transitive_closure(tax.edges, tax.num_nodes) != tax.closure).nnz == 0


def test_shipped_curvlearn_tree():
    if not SHIPPED.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHIPPED} is missing; CI must have shared/ beside the repo")
        pytest.skip(f"{SHIPPED} not present")
    tax = read_taxonomy(SHIPPED)
    assert tax.meta["format"] == "curvlearn-shipped"
    assert tax.num_nodes == 80_859 and tax.num_edges == 80_858 and tax.is_tree
    assert tax.keys[tax.root] == "80815" and tax.names[tax.root] == "0"
    assert np.bincount(tax.level).tolist() == [1, 100, 1_091, 11_074, 68_593]
    assert tax.out_degree[tax.root] == 100
    # names are paths whose depth is the level
    depth = np.fromiter((n.count("-") for n in tax.names), dtype=np.int64, count=tax.num_nodes)
    assert np.array_equal(depth, tax.level)
    assert len(set(tax.names)) == tax.num_nodes
