"""Readers, writers and the bad-input corpus of hgraph.data.io."""
from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from hgraph.data.io import (FORMATS, detect_format, read_features, read_taxonomy,
                            write_curvlearn, write_edges)
from hgraph.data.taxonomy import Taxonomy, transitive_closure
from hgraph.errors import HGraphInputError

HERE = Path(__file__).parent
BAD = HERE / "bad"
GOOD = HERE / "good"

# file -> (reader kwargs, expected line or None, words the message must contain)
# Feature files are read against good/curvlearn_small.csv.
BAD_CASES = {
    "empty.csv": ({}, 1, ["empty"]),
    "whitespace_only.csv": ({}, 1, ["empty"]),
    "header_only.csv": ({}, 1, ["header only"]),
    "header_only_closure.csv": ({}, 1, ["header only"]),
    "wrong_delimiter_semicolon.csv": ({}, 1, ["';'-separated", "found 1"]),
    "wrong_column_count.csv": ({}, 4, ["expected 3", "found 2"]),
    "four_columns.csv": ({}, 1, ["cannot detect", "4"]),
    "non_utf8_bytes.csv": ({}, 3, ["UTF-8", "0xe9"]),
    "conflicting_parents.csv": ({}, 6, ["id 17", "parents 1 (line 4) and 3 (line 6)",
                                        "two nodes"]),
    "missing_parent.csv": ({}, 4, ["missing parent", "55", "never declared"]),
    "self_loop.csv": ({}, 3, ["self-loop", "2"]),
    "self_loop_after_blank_lines_crlf.csv": ({}, 5, ["self-loop", "3"]),
    "two_cycle.csv": ({}, 4, ["cycle", "x -> y -> x"]),
    "long_cycle.csv": ({}, 3, ["cycle", "c -> d -> e -> f -> c"]),
    "shipped_cycle.csv": ({}, 3, ["cycle", "4 -> 3 -> 5 -> 4"]),
    "closure_cycle.csv": ({}, 2, ["cycle", "b -> a -> c -> b"]),
    "level_mismatch.csv": ({}, 4, ["level 2", "depth 3"]),
    "non_integer_id.csv": ({}, 3, ["integer", "'x3'"]),
    "non_integer_level.csv": ({}, 2, ["integer", "'one'"]),
    "curvlearn_missing_parent.csv": ({}, 5, ["missing parent", "77"]),
    "curvlearn_level_mismatch.csv": ({}, 5, ["level 2", "depth 3"]),
    "curvlearn_duplicate_id.csv": ({}, 5, ["id 3", "two nodes"]),
    "curvlearn_bad_path.csv": ({}, 3, ["'0-x'", "path"]),
    "curvlearn_path_disagrees_with_ids.csv": ({}, 4, ["'0-0-0'", "parent_cate '0-1'"]),
    "edges_two_parents_tree.csv": ({"tree": True}, 5, ["id d", "parents b (line 4) and c"]),
    "features_nan.csv": ({}, 4, ["nan", "NaN"]),
    "features_inf.csv": ({}, 4, ["inf"]),
    "features_unknown_id.csv": ({}, 4, ["unknown id", "'99'"]),
    "features_dim_mismatch.csv": ({}, 5, ["dimension", "3 values", "has 2"]),
    "features_missing_rows.csv": ({}, None, ["missing", "'4', '5', '6'"]),
    "features_duplicate_id.csv": ({}, 8, ["two feature rows", "line 3"]),
    "features_non_numeric.csv": ({}, 3, ["number", "'abc'"]),
    "edges_unknown_header.csv": ({}, 1, ["unrecognised header", "'term'", "'broader_term'",
                                         "accepted names", "parent_id"]),
}


def _small() -> Taxonomy:
    return read_taxonomy(GOOD / "curvlearn_small.csv")


def _read_any(path: Path, **kw):
    if path.name.startswith("features"):
        return read_features(path, _small())
    return read_taxonomy(path, **kw)


def _tree_signature(tax: Taxonomy):
    """Edges and levels by name: equal for the same tree under any id relabelling."""
    names = tax.names
    lv = tax.level
    return (sorted((names[c], names[p]) for c, p in tax.edges.tolist()),
            sorted((names[i], int(lv[i])) for i in range(tax.num_nodes)))


# ------------------------------------------------------------------ corpus
def test_corpus_is_complete():
    files = {p.name for p in BAD.iterdir()}
    assert files == set(BAD_CASES), files ^ set(BAD_CASES)
    assert len(files) >= 15


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_file_is_reported_with_file_line_and_cause(name):
    kw, line, words = BAD_CASES[name]
    with pytest.raises(HGraphInputError) as ei:
        _read_any(BAD / name, **kw)
    err = ei.value
    msg = str(err)
    assert name in msg
    assert err.line == line
    if line is not None:
        assert f"{name}:{line}: " in msg
    for w in words:
        assert w in msg, (w, msg)
    assert "\n" not in msg


def test_reading_writes_nothing(tmp_path):
    copy = tmp_path / "corpus"
    shutil.copytree(HERE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*")}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        small = read_taxonomy(copy / "good" / "curvlearn_small.csv")
        for p in sorted((copy / "bad").iterdir()):
            with pytest.raises(HGraphInputError):
                if p.name.startswith("features"):
                    read_features(p, small)
                else:
                    read_taxonomy(p, **BAD_CASES[p.name][0])
        for p in sorted((copy / "good").iterdir()):
            if p.name.startswith("features"):
                read_features(p, small)
            else:
                read_taxonomy(p)
    finally:
        os.chdir(cwd)
    after = {p: p.stat().st_mtime_ns for p in copy.rglob("*")}
    assert before == after
    assert sorted(tmp_path.iterdir()) == [copy]


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(HGraphInputError, match="nope.csv: file not found"):
        read_taxonomy(tmp_path / "nope.csv")
    with pytest.raises(HGraphInputError, match="directory"):
        read_taxonomy(tmp_path)
    with pytest.raises(HGraphInputError, match="file not found"):
        read_features(tmp_path / "x.npy", _small())


def test_unknown_format_is_rejected():
    with pytest.raises(HGraphInputError, match="unknown taxonomy format 'gml'"):
        read_taxonomy(GOOD / "curvlearn_small.csv", format="gml")
    assert FORMATS[0] == "auto" and set(FORMATS) == {
        "auto", "curvlearn", "curvlearn-shipped", "edges", "closure"}


def test_explicit_format_names_expected_columns():
    with pytest.raises(HGraphInputError) as ei:
        read_taxonomy(BAD / "wrong_delimiter_semicolon.csv", format="curvlearn-shipped")
    assert "expected 3 comma-separated columns, found 1; the file looks ';'-separated" in str(ei.value)
    with pytest.raises(HGraphInputError, match="expected 2 comma-separated columns, found 3"):
        read_taxonomy(GOOD / "closure_small.csv", format="edges")


def test_utf16_file_is_named(tmp_path):
    p = tmp_path / "u16.csv"
    p.write_bytes("100,1,1\n".encode("utf-16"))
    with pytest.raises(HGraphInputError, match="UTF-16"):
        read_taxonomy(p)


# ------------------------------------------------------------ good files
@pytest.mark.parametrize("name,fmt", [
    ("shipped_bom.csv", "curvlearn-shipped"),
    ("shipped_crlf_blank_lines.csv", "curvlearn-shipped"),
    ("curvlearn_small.csv", "curvlearn"),
    ("edges_header.tsv", "edges"),
    ("closure_small.csv", "closure"),
    ("closure_noheader.tsv", "closure"),
])
def test_detect_format(name, fmt):
    assert detect_format(GOOD / name) == fmt
    assert read_taxonomy(GOOD / name).meta["format"] == fmt


def test_detect_headerless_edges_vs_closure(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("b,a\nc,b\nd,c\n")  # a chain: not transitively closed
    assert detect_format(p) == "edges"
    p.write_text("b,a\nc,b\nc,a\n")  # closed, with a 2-step path
    assert detect_format(p) == "closure"
    p.write_text("1,2,1.0\n1,3,1.0\n")  # integer ids with a float weight
    assert detect_format(p) == "closure"
    p.write_text("dog,animal,1\n")  # string ids with a weight
    assert detect_format(p) == "closure"
    p.write_text("1,x3,2\n")  # a typo in a shipped file is not a closure
    assert detect_format(p) == "curvlearn-shipped"
    with pytest.raises(HGraphInputError, match="e.csv:1: column 2 .* integer, found 'x3'"):
        read_taxonomy(p)


def test_bom_and_crlf_load_like_plain_file():
    plain = read_taxonomy(GOOD / "curvlearn_small.csv")
    for name in ("shipped_bom.csv", "shipped_crlf_blank_lines.csv"):
        tax = read_taxonomy(GOOD / name)
        assert _tree_signature(tax) == _tree_signature(plain)
        assert sorted(tax.keys) == sorted(plain.keys)


def test_curvlearn_small_contents():
    tax = read_taxonomy(GOOD / "curvlearn_small.csv")
    assert tax.num_nodes == 7 and tax.is_tree
    assert tax.keys[tax.root] == "100" and tax.names[tax.root] == "0"
    assert tax.virtual_root
    i = tax.index("6")
    assert tax.names[i] == "0-0-1-0" and tax.level[i] == 3
    assert tax.keys[int(tax.parents(i)[0])] == "4"
    assert np.bincount(tax.level).tolist() == [1, 2, 3, 1]


def test_shipped_names_are_paths_by_child_id(tmp_path):
    p = tmp_path / "s.csv"
    # children of the root 9 in file order 30, 10, 20 -> indices by id: 10->0, 20->1, 30->2
    p.write_text("9,30,1\n9,10,1\n9,20,1\n20,5,2\n20,2,2\n")
    tax = read_taxonomy(p)
    name = {k: tax.names[i] for i, k in enumerate(tax.keys)}
    assert name == {"9": "0", "10": "0-0", "20": "0-1", "30": "0-2", "2": "0-1-0", "5": "0-1-1"}


def test_edges_tsv_with_header_is_a_dag():
    tax = read_taxonomy(GOOD / "edges_header.tsv")
    assert tax.num_nodes == 6 and not tax.is_tree
    dog = tax.index("dog")
    assert sorted(tax.names[p] for p in tax.parents(dog)) == ["mammal", "pet"]
    assert tax.names[tax.root] == "animal" and tax.level[dog] == 2
    with pytest.raises(HGraphInputError, match="id dog appears with parents mammal"):
        read_taxonomy(GOOD / "edges_header.tsv", tree=True)


def test_edges_string_header_detection(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("kid,mum\n1,0\n2,0\n")  # unknown words, but the rows below are integers
    assert sorted(read_taxonomy(p, format="edges").keys) == ["0", "1", "2"]
    p.write_text("x,y\ny,z\n")  # no header: string keys throughout
    assert sorted(read_taxonomy(p, format="edges").keys) == ["x", "y", "z"]


def test_several_roots_get_a_virtual_root(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("child,parent\nb,a\nd,c\n")
    tax = read_taxonomy(p)
    assert tax.virtual_root and tax.names[tax.root] == "<root>"
    assert tax.level[tax.index("b")] == 2


def test_closure_recovers_dag_and_keeps_given_pairs():
    tax = read_taxonomy(GOOD / "closure_small.csv")
    n = tax.names
    edges = sorted((n[c], n[p]) for c, p in tax.edges.tolist())
    assert edges == sorted([("mammal", "animal"), ("bird", "animal"), ("dog", "mammal"),
                            ("dog", "pet"), ("pet", "animal"), ("parrot", "bird"),
                            ("parrot", "pet"), ("puppy", "dog")])
    assert tax.meta["closure_given"] is True and tax.meta["closure_is_transitive"] is True
    given = tax.closure
    assert given.dtype == bool and given.shape == (7, 7)
    assert given.nnz == 13  # 14 pairs minus the reflexive (animal, animal)
    assert given[tax.index("puppy"), tax.index("pet")]
    # the given pairs are the closure of the recovered DAG
    assert (transitive_closure(tax.edges, tax.num_nodes) != given).nnz == 0


def test_closure_read_as_edges_keeps_redundant_edges():
    as_closure = read_taxonomy(GOOD / "closure_noheader.tsv")
    as_edges = read_taxonomy(GOOD / "closure_noheader.tsv", format="edges")
    assert as_closure.num_edges == 3 and as_edges.num_edges == 5
    assert (as_closure.closure != as_edges.closure).nnz == 0


def test_non_transitive_closure_is_flagged(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("id1,id2\nb,a\nc,b\n")
    tax = read_taxonomy(p)
    assert tax.meta["closure_is_transitive"] is False
    assert tax.closure.nnz == 2 and tax.num_edges == 2


def _random_tree(n: int, seed: int) -> Taxonomy:
    rng = np.random.default_rng(seed)
    parent = [int(rng.integers(0, i)) for i in range(1, n)]
    keys = rng.permutation(10 * n)[:n]  # random integer ids
    return Taxonomy.from_edges([int(keys[i]) for i in range(1, n)],
                               [int(keys[p]) for p in parent])


def _random_dag(n: int, seed: int) -> Taxonomy:
    rng = np.random.default_rng(seed)
    child, parent = [], []
    for i in range(1, n):
        for p in set(rng.integers(0, i, size=int(rng.integers(1, 3))).tolist()):
            child.append(f"n{i}")
            parent.append(f"n{p}")
    return Taxonomy.from_edges(child, parent)


def test_closure_round_trip_random_dag(tmp_path):
    dag = _random_dag(300, 0)
    pairs = dag.closure_pairs()
    p = tmp_path / "c.tsv"
    with open(p, "w") as f:
        for u, v in np.random.default_rng(1).permutation(pairs).tolist():
            f.write(f"{dag.names[u]}\t{dag.names[v]}\n")
    tax = read_taxonomy(p)
    assert tax.meta["format"] == "closure"
    red = sorted((tax.names[c], tax.names[q]) for c, q in tax.edges.tolist())
    # the recovered edges are the transitive reduction of the original DAG
    ref = transitive_closure(dag.edges, dag.num_nodes)
    implied = (ref @ ref.astype(np.int32)) > 0
    orig = sorted((dag.names[c], dag.names[q]) for c, q in dag.edges.tolist()
                  if not implied[c, q])
    assert red == orig
    assert tax.closure.nnz == len(pairs)


# ---------------------------------------------------------------- writers
@pytest.mark.parametrize("seed", [0, 1])
def test_write_curvlearn_round_trip(tmp_path, seed):
    tree = _random_tree(500, seed)
    p = tmp_path / "tree.csv"
    write_curvlearn(tree, p)
    assert p.read_text().splitlines()[0] == "cate,cate_id,parent_cate,parent_cate_id,level"
    back = read_taxonomy(p)
    assert back.meta["format"] == "curvlearn"
    # ids are kept; names become CurvLearn paths; the structure is the same
    kb = dict(zip(back.keys, range(back.num_nodes)))
    assert sorted((tree.keys[c], tree.keys[q]) for c, q in tree.edges.tolist()) == \
        sorted((back.keys[c], back.keys[q]) for c, q in back.edges.tolist())
    assert all(back.level[kb[k]] == tree.level[i] for i, k in enumerate(tree.keys))
    # a second round trip keeps the names too
    p2 = tmp_path / "tree2.csv"
    write_curvlearn(back, p2)
    again = read_taxonomy(p2)
    assert _tree_signature(again) == _tree_signature(back)
    assert p2.read_text() == p.read_text()


def test_write_curvlearn_keeps_shipped_names(tmp_path):
    shipped = read_taxonomy(GOOD / "shipped_bom.csv")
    write_curvlearn(shipped, tmp_path / "c.csv")
    back = read_taxonomy(tmp_path / "c.csv")
    assert _tree_signature(back) == _tree_signature(shipped)
    assert (tmp_path / "c.csv").read_text() == (GOOD / "curvlearn_small.csv").read_text()


@pytest.mark.parametrize("sep", [",", "\t"])
def test_write_edges_round_trip(tmp_path, sep):
    for tax in (read_taxonomy(GOOD / "curvlearn_small.csv"), _random_dag(200, 3),
                read_taxonomy(GOOD / "edges_header.tsv")):
        p = tmp_path / "e.txt"
        write_edges(tax, p, sep=sep)
        back = read_taxonomy(p, format="edges")
        assert _tree_signature(back) == _tree_signature(tax)
        assert sorted(os.listdir(tmp_path)) == ["e.txt"]  # no temporary left behind


def test_write_edges_leaves_out_virtual_root(tmp_path):
    tax = Taxonomy.from_edges(["b", "d"], ["a", "c"])
    assert tax.virtual_root
    write_edges(tax, tmp_path / "e.csv")
    assert (tmp_path / "e.csv").read_text() == "child,parent\nb,a\nd,c\n"
    back = read_taxonomy(tmp_path / "e.csv")
    assert back.virtual_root and _tree_signature(back) == _tree_signature(tax)


def test_write_curvlearn_rejects_a_dag(tmp_path):
    with pytest.raises(HGraphInputError, match="needs a tree"):
        write_curvlearn(read_taxonomy(GOOD / "edges_header.tsv"), tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


# --------------------------------------------------------------- features
def test_features_csv_in_id_order():
    tax = _small()
    x = read_features(GOOD / "features_small.csv", tax)
    assert x.dtype == np.float32 and x.shape == (7, 2)
    assert np.allclose(x[tax.index("6")], [1.1, 1.2])
    assert np.all(x[tax.root] == 0)  # the virtual root may be left out


def test_features_by_name_tsv(tmp_path):
    tax = read_taxonomy(GOOD / "edges_header.tsv")
    p = tmp_path / "f.tsv"
    rows = [f"{n}\t{i}\t{-i}" for i, n in enumerate(tax.names)][::-1]
    p.write_text("\n".join(rows) + "\n")
    x = read_features(p, tax)
    assert np.array_equal(x[:, 0], np.arange(tax.num_nodes, dtype=np.float32))


def test_features_keys_win_over_names(tmp_path):
    # the shipped scheme names the root "0", and "0" is also an ordinary id
    p = tmp_path / "t.csv"
    p.write_text("9,0,1\n9,1,1\n")
    tax = read_taxonomy(p)
    f = tmp_path / "f.csv"
    f.write_text("0,5\n1,6\n")
    x = read_features(f, tax)
    assert x[tax.keys.index("0"), 0] == 5 and x[tax.root, 0] == 0


def test_features_npy_and_npz(tmp_path):
    tax = _small()
    n = tax.num_nodes
    x = np.arange(2 * n, dtype=np.float64).reshape(n, 2)
    np.save(tmp_path / "x.npy", x)
    assert np.array_equal(read_features(tmp_path / "x.npy", tax), x.astype(np.float32))
    np.save(tmp_path / "short.npy", x[:-1])  # virtual root (last id) left out
    assert np.all(read_features(tmp_path / "short.npy", tax)[tax.root] == 0)
    np.save(tmp_path / "bad.npy", x[:-2])
    with pytest.raises(HGraphInputError, match="5 rows, but the taxonomy has 7"):
        read_features(tmp_path / "bad.npy", tax)
    order = np.random.default_rng(0).permutation(n)
    np.savez(tmp_path / "x.npz", ids=np.asarray(tax.keys)[order], x=x[order])
    assert np.array_equal(read_features(tmp_path / "x.npz", tax), x.astype(np.float32))
    bad = x.copy()
    bad[3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", ids=np.asarray(tax.keys), x=bad)
    with pytest.raises(HGraphInputError, match="entry 3: feature 2 is nan"):
        read_features(tmp_path / "nan.npz", tax)
    np.savez(tmp_path / "unk.npz", ids=np.asarray(["1", "zzz"]), x=x[:2])
    with pytest.raises(HGraphInputError, match=r"unknown id 'zzz' \(entry 1\)"):
        read_features(tmp_path / "unk.npz", tax)
    np.savez(tmp_path / "noids.npz", x=x)
    with pytest.raises(HGraphInputError, match="'ids' and 'x'"):
        read_features(tmp_path / "noids.npz", tax)


# ------------------------------------------------------- header column order
# a 4-node tree: r <- a, r <- b, a <- c (child <- parent)
_TREE4 = [("a", "r"), ("b", "r"), ("c", "a")]


def _parent_map(tax: Taxonomy):
    """(root name, {name: sorted parent names}) over all nodes."""
    return tax.names[tax.root], {tax.names[i]: sorted(tax.names[p] for p in tax.parents(i))
                                 for i in range(tax.num_nodes)}


@pytest.mark.parametrize("header,order", [
    ("child,parent", "cp"), ("parent,child", "pc"), ("Parent,Child", "pc"),
    ("CHILD,PARENT", "cp"), ("id,parent", "cp"), ("parent,id", "pc"),
    ("node,parent", "cp"), ("child_id,parent_id", "cp"), ("parent_id,child_id", "pc"),
    ("id,parent_id", "cp"), ("parent_id,id", "pc"), ("Parent ID,Node", "pc"),
    ("source,target", "cp"), ("target,source", "pc"),
])
@pytest.mark.parametrize("sep", [",", "\t"])
def test_edges_header_column_order_is_honoured(tmp_path, header, order, sep):
    rows = [(c, p) if order == "cp" else (p, c) for c, p in _TREE4]
    p = tmp_path / "t.txt"
    p.write_text(header.replace(",", sep) + "\n" + "".join(f"{a}{sep}{b}\n" for a, b in rows))
    ref = Taxonomy.from_edges([c for c, _ in _TREE4], [q for _, q in _TREE4])
    for fmt in ("auto", "edges"):
        tax = read_taxonomy(p, format=fmt)
        assert tax.meta["format"] == "edges"
        assert tax.num_nodes == 4 and not tax.virtual_root and tax.is_tree
        assert _parent_map(tax) == _parent_map(ref) == (
            "r", {"r": [], "a": ["r"], "b": ["r"], "c": ["a"]})


def test_parent_child_and_child_parent_give_the_same_taxonomy(tmp_path):
    pc, cp = tmp_path / "pc.csv", tmp_path / "cp.csv"
    pc.write_text("parent,child\n" + "".join(f"{q},{c}\n" for c, q in _TREE4))
    cp.write_text("child,parent\n" + "".join(f"{c},{q}\n" for c, q in _TREE4))
    a, b = read_taxonomy(pc), read_taxonomy(cp)
    assert _parent_map(a) == _parent_map(b)
    assert a.names[a.root] == "r" and len(a.edges) == len(b.edges) == 3


def test_integer_id_parent_id_header(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("id,parent_id\n1,0\n2,0\n3,1\n")
    q = tmp_path / "r.csv"
    q.write_text("parent_id,id\n0,1\n0,2\n1,3\n")
    for path in (p, q):
        tax = read_taxonomy(path)
        assert tax.meta["format"] == "edges" and tax.keys[tax.root] == "0"
        assert {k: tax.keys[int(tax.parents(i)[0])] for i, k in enumerate(tax.keys)
                if i != tax.root} == {"1": "0", "2": "0", "3": "1"}


@pytest.mark.parametrize("header,swap", [
    ("id1,id2,weight", False), ("id2,id1,weight", True), ("hypernym,hyponym,weight", True),
    ("descendant,ancestor,weight", False), ("ancestor,descendant,weight", True),
    ("child,parent,weight", False), ("parent,child,w", True), ("weight,ancestor,descendant", None),
])
def test_closure_header_column_order_is_honoured(tmp_path, header, swap):
    ref = read_taxonomy(GOOD / "closure_small.csv")
    rows = (GOOD / "closure_small.csv").read_text().splitlines()[1:]
    out = []
    for r in rows:
        c, q, w = r.split(",")
        out.append(f"{w},{q},{c}" if swap is None else f"{q},{c},{w}" if swap else r)
    p = tmp_path / "c.csv"
    p.write_text(header + "\n" + "\n".join(out) + "\n")
    tax = read_taxonomy(p)
    assert tax.meta["format"] == "closure"
    assert _parent_map(tax) == _parent_map(ref)
    assert tax.closure.nnz == ref.closure.nnz == 13


@pytest.mark.parametrize("header", ["ancestor,descendant", "descendant,ancestor",
                                    "Hypernym,Hyponym"])
def test_two_column_closure_header_either_order(tmp_path, header):
    first = header.split(",")[0].lower()
    rev = first in ("ancestor", "hypernym")
    pairs = [("b", "a"), ("c", "b"), ("c", "a")]
    p = tmp_path / "c.csv"
    p.write_text(header + "\n" + "".join(f"{q},{c}\n" if rev else f"{c},{q}\n"
                                         for c, q in pairs))
    tax = read_taxonomy(p)
    assert tax.meta["format"] == "closure"
    assert _parent_map(tax) == ("a", {"a": [], "b": ["a"], "c": ["b"]})


def test_shipped_header_in_another_order(tmp_path):
    rows = [r.split(",") for r in (GOOD / "shipped_bom.csv").read_text(encoding="utf-8-sig")
            .splitlines()]
    p = tmp_path / "s.csv"
    p.write_text("child_level,child_id,parent_id\n"
                 + "".join(f"{lv},{c},{q}\n" for q, c, lv in rows))
    tax = read_taxonomy(p, format="curvlearn-shipped")
    assert _tree_signature(tax) == _tree_signature(read_taxonomy(GOOD / "shipped_bom.csv"))


def test_curvlearn_header_in_another_order(tmp_path):
    df = __import__("pandas").read_csv(GOOD / "curvlearn_small.csv", dtype=str)
    p = tmp_path / "c.csv"
    df[["level", "parent_cate_id", "cate", "parent_cate", "cate_id"]].to_csv(p, index=False)
    tax = read_taxonomy(p)
    assert tax.meta["format"] == "curvlearn"
    assert _tree_signature(tax) == _tree_signature(_small())


@pytest.mark.parametrize("text,fmt,words", [
    ("foo,bar\n1,0\n2,0\n", "auto", ["'foo', 'bar'", "child: child"]),
    ("foo,bar\n1,0\n2,0\n", "edges", ["'foo', 'bar'", "parent: parent"]),
    ("child,mum2\nb,a\nc,b\n", "auto", ["'mum2'"]),
    ("parent,mum2\nb,a\n", "edges", ["'mum2'"]),
    ("id,name\n1,0\n", "edges", ["two columns name the child", "no column names the parent"]),
    ("id1,id2,size\nb,a,1\n", "closure", ["'size'", "weight: weight"]),
    ("id1,level\nb,a\n", "closure", ["'level'"]),
    ("pid,cid,lvl\n100,1,1\n", "auto", ["'pid', 'cid', 'lvl'", "child_level: child_level"]),
    ("a,b,c,d,e\n0-0,1,0,100,1\n", "auto", ["'a', 'b'", "cate_id: cate_id"]),
])
def test_unknown_header_is_one_line_error(tmp_path, text, fmt, words):
    p = tmp_path / "hdr.csv"
    p.write_text(text)
    with pytest.raises(HGraphInputError) as ei:
        read_taxonomy(p, format=fmt)
    msg = str(ei.value)
    assert ei.value.line == 1 and msg.startswith(f"{p}:1: unrecognised header ")
    assert "\n" not in msg and "accepted names" in msg
    for w in words:
        assert w in msg, (w, msg)


def test_column_words_used_as_keys_are_data(tmp_path):
    p = tmp_path / "e.csv"
    # 'parent' is a key on line 2, so line 1 is data, not a header
    p.write_text("parent,root\nchild,parent\n")
    tax = read_taxonomy(p, format="edges")
    assert _parent_map(tax) == ("root", {"root": [], "parent": ["root"], "child": ["parent"]})


# ----------------------------------------------------------------------- gzip
def _gz(src: Path, dst: Path) -> Path:
    dst.write_bytes(gzip.compress(src.read_bytes()))
    return dst


@pytest.mark.parametrize("name", sorted(p.name for p in GOOD.iterdir()
                                        if not p.name.startswith("features")))
def test_gzipped_taxonomy_reads_like_plain(tmp_path, name):
    plain = read_taxonomy(GOOD / name)
    gz = read_taxonomy(_gz(GOOD / name, tmp_path / (name + ".gz")))
    assert detect_format(tmp_path / (name + ".gz")) == plain.meta["format"]
    assert gz.names == plain.names and gz.keys == plain.keys and gz.root == plain.root
    assert np.array_equal(gz.edges, plain.edges)
    assert gz.meta["format"] == plain.meta["format"]
    assert gz.source == str(tmp_path / (name + ".gz"))


def test_gzipped_features_read_like_plain(tmp_path):
    tax = _small()
    x = read_features(_gz(GOOD / "features_small.csv", tmp_path / "f.csv.GZ"), tax)
    assert np.array_equal(x, read_features(GOOD / "features_small.csv", tax))


def test_gzipped_bad_file_names_the_same_line(tmp_path):
    p = _gz(BAD / "self_loop_after_blank_lines_crlf.csv", tmp_path / "loop.csv.gz")
    with pytest.raises(HGraphInputError, match=r"loop.csv.gz:5: self-loop"):
        read_taxonomy(p)


@pytest.mark.parametrize("kind", ["not_gzip", "truncated", "bad_crc"])
def test_corrupt_gzip_is_one_line_error(tmp_path, kind):
    good = gzip.compress((GOOD / "edges_header.tsv").read_bytes())
    data = {"not_gzip": b"child,parent\nb,a\n",
            "truncated": good[: len(good) // 2],
            "bad_crc": good[:-8] + bytes(8)}[kind]
    p = tmp_path / "broken.tsv.gz"
    p.write_bytes(data)
    for read in (read_taxonomy, lambda q: read_features(q, _small())):
        with pytest.raises(HGraphInputError) as ei:
            read(p)
        msg = str(ei.value)
        assert msg.startswith(f"{p}: not a valid gzip file")
        assert "\n" not in msg
    assert sorted(os.listdir(tmp_path)) == ["broken.tsv.gz"]


def test_gzip_without_suffix_gets_a_hint(tmp_path):
    p = _gz(GOOD / "edges_header.tsv", tmp_path / "e.tsv")
    with pytest.raises(HGraphInputError, match="looks gzip-compressed"):
        read_taxonomy(p)
