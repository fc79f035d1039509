"""Small and faulty inputs of an item run, through the command line: each exits 0 with a
right result, or 2 with one ``error:`` line and no output folder.

The committed HPO slice (155 terms, 640 synonyms); runs of one epoch, so each takes
seconds.  Cases that refuse the input stop before the sentence encoder is loaded.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from hgraph import cli

ROOT = Path(__file__).resolve().parent.parent
S = ROOT / "data" / "samples"
EDGES, TEXT, ITEMS = S / "hpo_slice_edges.csv", S / "hpo_slice_text.csv", S / "hpo_slice_items.csv"
FAST = ["--epochs", "1", "--no-progress", "--cost-items", "10", "--threads", "1"]


def _run(tmp_path, *args, edges=EDGES, node_text=TEXT, items=ITEMS):
    argv = ["--task", "items", "--dataset", f"csv:{edges}", "--items", str(items),
            "--out", str(tmp_path / "out"), *FAST, *args]
    if node_text is not None:
        argv += ["--node-text", str(node_text)]
    return cli.main(argv)


def _refused(tmp_path, capsys, code, *words):
    """Exit 2, one line on stderr that starts with 'error:' and holds ``words``, nothing written."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (tmp_path / "out").exists()
    return lines[0]


def _metrics(tmp_path):
    """The run's metrics.json, read as strict JSON (a bare NaN fails)."""
    (path,) = (tmp_path / "out").glob("*/metrics.json")

    def strict(c):
        raise AssertionError(f"bare {c} in {path}")
    return json.loads(path.read_text(), parse_constant=strict), path.parent


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------ refused in one line
def test_one_item_is_refused_before_anything_is_written(tmp_path, capsys):
    one = _write(tmp_path, "one.csv", "text,category\nAbnormality of the nose,HP:0000366\n")
    line = _refused(tmp_path, capsys, _run(tmp_path, items=one),
                    f"{one}: too few items for train/validation/test splits: 1 item (1 row); "
                    "need at least 2")
    assert "Traceback" not in line


def test_a_split_without_test_items_is_refused(tmp_path, capsys):
    both_train = _write(tmp_path, "train.csv", "text,category,split\nnose bleed,HP:0000421,train\n"
                                               "stuffy nose,HP:0001742,train\n")
    _refused(tmp_path, capsys, _run(tmp_path, items=both_train),
             "too few items for train/validation/test splits: 2 items (2 rows) leave seed 0 "
             "no test item")


def test_a_subtree_of_one_category_is_refused(tmp_path, capsys):
    _refused(tmp_path, capsys, _run(tmp_path, "--subtree", "HP:0000448"),
             "below HP:0000448: 1 candidate category: ranking needs at least 2")


@pytest.mark.parametrize("case,content,where", [
    ("duplicate", "id,text\nHP:0000366,Nose\nHP:0000366,Nose again\n", ":3: duplicate id"),
    ("comma", "id,text\nHP:0000366,Nose, abnormal\n", ":2: expected 2 fields (id,text), found 3"),
    ("empty", 'id,text\nHP:0000366,""\n', ":2: empty text for node 'HP:0000366'"),
    ("unknown", "id,text\nHP:9999999,Nothing\n", ":2: node 'HP:9999999' is not in the taxonomy"),
])
def test_node_text_faults_are_refused_with_file_and_line(tmp_path, capsys, case, content, where):
    bad = _write(tmp_path, f"{case}.csv", content)
    _refused(tmp_path, capsys, _run(tmp_path, node_text=bad), f"error: {bad}{where}")


def test_nodes_without_text_are_refused_with_a_count(tmp_path, capsys):
    lines = TEXT.read_text().splitlines()
    short = _write(tmp_path, "short.csv", "\n".join(lines[:-50]) + "\n")   # 50 terms left out
    _refused(tmp_path, capsys, _run(tmp_path, node_text=short),
             f"error: {short}: 50 of 155 nodes have no text: ", "add a row id,text")


# ------------------------------------------------------------------ runs with a right result
@pytest.mark.xdist_group("minilm")
def test_two_items_with_a_split_column_run(tmp_path, capsys):
    two = _write(tmp_path, "two.csv", "text,category,split\nnose bleed,HP:0000421,train\n"
                                      "stuffy nose,HP:0001742,test\n")
    assert _run(tmp_path, items=two) == 0, capsys.readouterr().err
    m, _ = _metrics(tmp_path)
    seed = m["per_seed"][0]
    assert seed["train_items"] == 1 and seed["test_items"] == 1 and seed["val_items"] == 0
    assert seed["n_test"] == 1 and seed["p1"] in (0.0, 1.0) and 0 < seed["mrr"] <= 1


@pytest.mark.xdist_group("minilm")
@pytest.mark.parametrize("top,nodes", [("HP:0000422", 9), ("HP:0005289", 3)])
def test_a_subtree_with_fewer_categories_than_k_runs(tmp_path, capsys, top, nodes):
    """Fewer candidates than the ten ranked: every candidate is ranked (k = C), and hP@5
    counts out of the C there are.  The node text file need only name the subtree."""
    from hgraph.data.io import read_taxonomy
    tax = read_taxonomy(EDGES)
    root = tax.index(top)
    keep = {tax.keys[u] for u in [root, *tax.closure[:, root].nonzero()[0]]}
    assert len(keep) == nodes
    rows = [r for r in TEXT.read_text().splitlines()[1:] if r.split(",", 1)[0] in keep]
    header = TEXT.read_text().splitlines()[0]          # id,text[,name], as the sample has
    sub_text = _write(tmp_path, "sub_text.csv", header + "\n" + "\n".join(rows) + "\n")
    assert _run(tmp_path, "--subtree", top, node_text=sub_text) == 0, capsys.readouterr().err
    m, run_dir = _metrics(tmp_path)
    assert m["run"]["candidates"] == nodes and m["run"]["nodes"] == nodes
    a = np.load(run_dir / "per_item_seed0.npz", allow_pickle=True)
    assert len(a["rank"]) == m["per_seed"][0]["n_test"] > 0
    assert (a["rank"] >= 1).all() and (a["rank"] <= nodes).all()
    assert ((a["hp5"] >= 0) & (a["hp5"] <= 1)).all()
    assert np.array_equal(a["p5"], (a["rank"] <= 5).astype(float))
    if nodes <= 5:   # all candidates in the top 5, every one of them near the truth
        assert (a["p5"] == 1).all() and (a["hp5"] == 1).all()
    assert m["mean_std"]["p1_zero"]["mean"] is None or 0 <= m["mean_std"]["p1_zero"]["mean"] <= 1


def test_hierarchical_precision_with_fewer_candidates_than_k():
    from hgraph.eval.items import hierarchical_precision, undirected
    # a star: 0 <- 1, 0 <- 2; the three are the only candidates
    adj = undirected(np.array([[1, 0], [2, 0]]), 3)
    top = np.array([[1, 0, 2], [2, 1, 0]])
    assert hierarchical_precision(top, [[1], [0]], 5, adj).tolist() == [1.0, 1.0]
    # two candidates of the three: out of the two
    allowed = np.array([False, True, True])
    two = np.array([[1, 2], [2, 1]])
    assert hierarchical_precision(two, [[1], [2]], 5, adj, allowed).tolist() == [1.0, 1.0]
    # as many candidates as k or more: out of k, as before
    assert hierarchical_precision(top, [[1], [0]], 3, adj).tolist() == [1.0, 1.0]
    assert hierarchical_precision(top[:, :1], [[1], [0]], 2, adj).tolist() == [0.5, 0.5]


# ------------------------------------------------------------------ the no-node-text warning
@pytest.mark.xdist_group("minilm")
def test_a_csv_taxonomy_without_node_text_warns_once(tmp_path, capsys):
    edges = _write(tmp_path, "edges.csv", EDGES.read_text())    # a source not warned about yet
    assert _run(tmp_path, "--seed", "0", "--seed", "1", edges=edges, node_text=None) == 0
    err = capsys.readouterr().err.splitlines()
    warned = [line for line in err if "no node text" in line]
    assert warned == [f"warning: {edges} has no node text: the node keys (e.g. 'HP:0000421') "
                      "are used as texts; pass --node-text FILE (CSV id,text, one row per node) "
                      "to give each category its text"]
    assert not any(line.startswith("error") for line in err)
    # given node text: no warning
    assert _run(tmp_path, "--name", "with_text", edges=edges) == 0
    assert "no node text" not in capsys.readouterr().err
