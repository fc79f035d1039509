"""Items files (hgraph.data.items): reading, validation and the round trip."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from hgraph.data.items import Items, read_items, read_node_texts, write_items
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError


def _tax() -> Taxonomy:
    """animal <- mammal <- {dog, cat}; animal <- bird; keys n1..n6, names are words."""
    child = ["n2", "n3", "n4", "n5", "n6"]
    parent = ["n1", "n1", "n2", "n2", "n3"]
    names = {"n1": "animal", "n2": "mammal", "n3": "bird", "n4": "dog", "n5": "cat",
             "n6": "parrot"}
    return Taxonomy.from_edges(child, parent, names=names)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return p


def _error(path: Path, tax: Taxonomy) -> HGraphInputError:
    with pytest.raises(HGraphInputError) as ei:
        read_items(path, tax)
    return ei.value


# ------------------------------------------------------------------ reading
def test_read_by_key_and_by_name(tmp_path):
    tax = _tax()
    p = _write(tmp_path, "i.csv",
               "text,category\nrex barks,n4\ntom purrs,cat\npolly talks,parrot\n")
    items = read_items(p, tax)
    assert len(items) == 3 and items.source == str(p)
    assert items.texts == ["rex barks", "tom purrs", "polly talks"]
    assert items.category.dtype == np.int64
    assert [tax.names[i] for i in items.category] == ["dog", "cat", "parrot"]
    assert items.split is None


def test_key_wins_over_name(tmp_path):
    # node "b" is named "a": the label "a" is the key of node "a", not the name of "b"
    tax = Taxonomy.from_edges(["b", "c"], ["a", "a"], names={"b": "a", "c": "see"})
    p = _write(tmp_path, "i.csv", "text,category\nx,a\ny,see\n")
    items = read_items(p, tax)
    assert [tax.keys[i] for i in items.category] == ["a", "c"]


def test_multi_category_item_shares_its_id(tmp_path):
    tax = _tax()
    p = _write(tmp_path, "i.csv", "text,category\nrex,dog\ntom,cat\nrex,mammal\npolly,bird\n"
                                  "polly,parrot\nrex,animal\n")
    items = read_items(p, tax)
    ids = items.item_ids()
    assert ids.dtype == np.int64 and ids.shape == (len(items),)
    assert ids.tolist() == [0, 1, 0, 2, 2, 0]
    # same id <=> same text
    for a in range(len(items)):
        for b in range(len(items)):
            assert (ids[a] == ids[b]) == (items.texts[a] == items.texts[b])
    assert sorted(tax.names[c] for c, i in zip(items.category, ids) if i == 0) == \
        ["animal", "dog", "mammal"]


def test_quoted_text_with_comma_quote_and_newline(tmp_path):
    tax = _tax()
    p = _write(tmp_path, "i.csv",
               'text,category\n"Hello, world",dog\n"say ""hi""",cat\n"two\nlines",bird\n'
               "plain,unicorn\n")
    err = _error(p, tax)  # the quoted newline makes 'plain' start on line 6
    assert err.line == 6 and "'unicorn'" in str(err)
    p.write_text('text,category\n"Hello, world",dog\n"say ""hi""",cat\n"two\nlines",bird\n')
    items = read_items(p, tax)
    assert items.texts == ["Hello, world", 'say "hi"', "two\nlines"]
    assert [tax.names[i] for i in items.category] == ["dog", "cat", "bird"]


def test_split_column_any_order_and_case(tmp_path):
    tax = _tax()
    p = _write(tmp_path, "i.csv",
               "Split,Category,TEXT\ntrain,dog,rex\nVal,cat,tom\n TEST ,bird,tweety\n")
    items = read_items(p, tax)
    assert items.split.dtype == object and items.split.tolist() == ["train", "val", "test"]
    assert items.texts == ["rex", "tom", "tweety"]


def test_tsv_bom_crlf_blank_lines_and_gzip(tmp_path):
    tax = _tax()
    body = "text\tcategory\r\n\r\nrex, the dog\tdog\r\n  \r\ntom\tn5\r\n"
    plain = _write(tmp_path, "i.txt", "\ufeff" + body)  # tab found from the header
    gz = tmp_path / "i.tsv.gz"
    gz.write_bytes(gzip.compress(body.encode("utf-8")))
    for p in (plain, gz):
        items = read_items(p, tax)
        assert items.texts == ["rex, the dog", "tom"]
        assert [tax.names[i] for i in items.category] == ["dog", "cat"]
    bad = _write(tmp_path, "i.tsv", body + "x\tunicorn\r\n")
    assert _error(bad, tax).line == 6


def test_corrupt_gzip(tmp_path):
    p = tmp_path / "i.csv.gz"
    p.write_bytes(b"text,category\nrex,dog\n")
    err = _error(p, _tax())
    assert str(err).startswith(f"{p}: not a valid gzip file") and "\n" not in str(err)


# ------------------------------------------------------------------- errors
# file content -> (line, words the one-line message must contain)
BAD = {
    "empty": ("", 1, ["empty"]),
    "whitespace": ("  \n\n\t\n", 1, ["empty"]),
    "no_header": ("rex,dog\ntom,cat\n", 1, ["missing header", "'rex,dog'"]),
    "no_category_column": ("text,label\nrex,dog\n", 1, ["no 'category' column"]),
    "no_text_column": ("\ncategory,split\ndog,train\n", 2, ["no 'text' column"]),
    "unknown_column": ("text,category,splt\nrex,dog,train\n", 1, ["unknown column 'splt'"]),
    "header_only": ("text,category\n\n", 1, ["header only"]),
    "empty_text": ("text,category\nrex,dog\n,cat\n", 3, ["empty text"]),
    "blank_text": ('text,category\nrex,dog\n\n"   ",cat\n', 4, ["empty text"]),
    "empty_category": ("text,category\nrex,dog\ntom, \n", 3, ["empty category"]),
    "unknown_category": ("text,category\nrex,dog\ntom,unicorn\n", 3,
                         ["unknown category 'unicorn'"]),
    "duplicate": ("text,category\nrex,dog\ntom,cat\nrex,dog\n", 4,
                  ["duplicate", "'rex'", "'n4'", "line 2"]),
    "duplicate_key_and_name": ("text,category\r\n\r\nrex,n4\r\ntom,cat\r\nrex,dog\r\n", 5,
                               ["duplicate", "line 3"]),
    "bad_split": ("text,category,split\nrex,dog,train\ntom,cat,dev\n", 3, ["bad split 'dev'"]),
    "empty_split": ("text,category,split\nrex,dog,train\ntom,cat,\n", 3, ["bad split ''"]),
    "unquoted_comma": ("text,category\nrex,dog\nhello, world,cat\n", 3,
                       ["expected 2 fields", "found 3"]),
    "open_quote": ('text,category\nrex,dog\n"tom,cat\npolly,bird\n', 3, ["malformed CSV"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_items_file_is_one_line_with_file_and_line(tmp_path, case):
    content, line, words = BAD[case]
    p = _write(tmp_path, f"{case}.csv", content)
    err = _error(p, _tax())
    msg = str(err)
    assert "\n" not in msg
    assert err.line == line and msg.startswith(f"{p}:{line}: ")
    for w in words:
        assert w in msg, (w, msg)
    assert sorted(os.listdir(tmp_path)) == [f"{case}.csv"]  # reading writes nothing


# ------------------------------------------------------------------ writing
@pytest.mark.parametrize("name", ["items.csv", "items.tsv", "items.csv.gz"])
@pytest.mark.parametrize("with_split", [True, False])
def test_write_read_round_trip(tmp_path, name, with_split):
    tax = _tax()
    texts = ["rex", "tom", "rex", 'a "quoted", text', "two\nlines", "tab\there"]
    cat = np.asarray([3, 4, 1, 0, 5, 2], dtype=np.int64)
    split = np.asarray(["train", "val", "train", "test", "train", "val"], dtype=object)
    items = Items(texts=texts, category=cat, split=split if with_split else None)
    p = tmp_path / name
    write_items(p, items, tax)
    assert sorted(os.listdir(tmp_path)) == [name]  # no temporary left behind
    back = read_items(p, tax)
    assert back.texts == texts
    assert np.array_equal(back.category, cat) and back.category.dtype == np.int64
    if with_split:
        assert back.split.tolist() == split.tolist()
    else:
        assert back.split is None
    assert np.array_equal(back.item_ids(), items.item_ids())
    raw = gzip.decompress(p.read_bytes()).decode() if name.endswith(".gz") else p.read_text()
    sep = "\t" if ".tsv" in name else ","
    assert raw.split("\n")[0] == sep.join(["text", "category"] + (["split"] if with_split else []))
    assert raw.split("\n")[1].split(sep)[1] == tax.keys[3]  # categories are written as keys


def test_write_rejects_invalid_items_and_writes_nothing(tmp_path):
    tax = _tax()
    p = tmp_path / "out.csv"
    for items, words in [
        (Items(["a", "b"], [0, tax.num_nodes], None), "category id 6"),
        (Items(["a", " "], [0, 1], None), "empty text"),
        (Items(["a", "b"], [0, 1], ["train", "dev"]), "bad split 'dev'"),
    ]:
        with pytest.raises(HGraphInputError, match=words):
            write_items(p, items, tax)
    assert os.listdir(tmp_path) == []


def test_items_shapes_are_checked():
    with pytest.raises(ValueError, match="one entry per row"):
        Items(["a", "b"], [0], None)
    empty = Items([], np.zeros(0, dtype=np.int64), None)
    assert len(empty) == 0 and empty.item_ids().shape == (0,)


def test_rows_of_one_item_must_share_a_split(tmp_path):
    """An item in train with one category and test with another would leak."""
    from hgraph.data.items import read_items
    from hgraph.data.taxonomy import Taxonomy
    from hgraph.errors import HGraphInputError
    tax = Taxonomy.from_edges(["a", "b"], ["r", "r"])
    f = tmp_path / "items.csv"
    f.write_text("text,category,split\nx,a,train\ny,a,test\nx,b,test\n")
    with pytest.raises(HGraphInputError) as e:
        read_items(f, tax)
    msg = str(e.value)
    assert "\n" not in msg and f"{f}:4" in msg and "same split" in msg
    f.write_text("text,category,split\nx,a,train\ny,a,test\nx,b,train\n")
    items = read_items(f, tax)
    assert list(items.split) == ["train", "test", "train"]


# ------------------------------------------------------------------ node texts
def _node_text_error(path: Path, tax: Taxonomy, needed=None) -> HGraphInputError:
    with pytest.raises(HGraphInputError) as ei:
        read_node_texts(path, tax, needed)
    return ei.value


_ALL = "n1,animal\nn2,mammal\nn3,bird\nn4,dog\nn5,cat\n"   # all but n6 (parrot)


def test_node_texts_by_key_and_name_quoted_tsv(tmp_path):
    tax = _tax()
    p = _write(tmp_path, "t.csv", 'id,text\n' + _ALL + 'parrot,"a bird, green"\n')
    got = dict(zip(tax.keys, read_node_texts(p, tax)))
    assert got == {"n1": "animal", "n2": "mammal", "n3": "bird", "n4": "dog", "n5": "cat",
                   "n6": "a bird, green"}
    # tab-separated, BOM and CRLF, a header in upper case
    p = _write(tmp_path, "t.tsv", "\ufeffID\tText\r\n" + _ALL.replace(",", "\t").replace(
        "\n", "\r\n") + "n6\tparrot, talks\r\n")
    assert read_node_texts(p, tax)[tax.index("n6")] == "parrot, talks"


def test_node_texts_name_column_gives_display_names(tmp_path):
    tax = _tax()
    rows = "".join(f"{k},{t},{t.title()}\n" for k, t in
                   [r.split(",") for r in (_ALL + "n6,parrot\n").splitlines()])
    p = _write(tmp_path, "t.csv", "id,text,name\n" + rows)
    names = [str(n) for n in tax.names]
    texts = read_node_texts(p, tax, names=names)
    assert texts[tax.index("n4")] == "dog" and names[tax.index("n4")] == "Dog"
    assert read_node_texts(p, tax) == texts                     # names are optional to take
    bad = _write(tmp_path, "b.csv", "id,text,name\nn1,animal,\n")
    err = _node_text_error(bad, tax)
    assert ":2:" in str(err) and "empty name" in str(err)


def test_node_texts_only_the_needed_nodes_must_have_one(tmp_path):
    tax = _tax()          # a subtree's nodes: mammal, dog, cat (the rest keep their names)
    p = _write(tmp_path, "t.csv", "id,text\nn2,a mammal\nn4,a dog\nn5,a cat\n")
    got = read_node_texts(p, tax, needed=[tax.index(k) for k in ("n2", "n4", "n5")])
    assert dict(zip(tax.keys, got)) == {"n1": "animal", "n2": "a mammal", "n3": "bird",
                                        "n4": "a dog", "n5": "a cat", "n6": "parrot"}
    err = _node_text_error(p, tax)
    assert "3 of 6 nodes have no text: 'n3', 'n6', 'n1'" in str(err)   # in node-id order


def test_node_texts_virtual_root_needs_no_text(tmp_path):
    tax = Taxonomy.from_edges(["b", "d"], ["a", "c"])     # two roots: a virtual one above
    assert tax.virtual_root
    p = _write(tmp_path, "t.csv", "id,text\na,A\nb,B\nc,C\nd,D\n")
    got = read_node_texts(p, tax)
    assert dict(zip(tax.keys, got)) == {"a": "A", "b": "B", "c": "C", "d": "D",
                                        tax.keys[tax.root]: tax.names[tax.root]}


NODE_TEXT_BAD = {
    # name: (content, line or None, words in the message)
    "duplicate_id": ("id,text\n" + _ALL + "n6,parrot\nn4,a second dog\n", 8,
                     ["duplicate id 'n4'", "line 5"]),
    "duplicate_via_name": ("id,text\n" + _ALL + "n6,parrot\ndog,a second dog\n", 8,
                           ["duplicate id 'dog'", "'n4'", "line 5"]),
    "unquoted_comma": ("id,text\n" + _ALL + "n6,parrot, green\n", 7,
                       ["expected 2 fields", "found 3", "quote"]),
    "one_field": ("id,text\n" + _ALL + "n6\n", 7, ["expected 2 fields", "found 1"]),
    "empty_text": ("id,text\n" + _ALL + 'n6,"  "\n', 7, ["empty text for node 'n6'"]),
    "empty_id": ("id,text\n" + _ALL + ",parrot\n", 7, ["empty id"]),
    "unknown_id": ("id,text\n" + _ALL + "n6,parrot\nn9,unicorn\n", 8,
                   ["node 'n9' is not in the taxonomy"]),
    "bad_header": ("key,text\n" + _ALL, 1, ["header must be 'id,text'", "'key,text'"]),
    "three_column_header": ("id,text,extra\n" + _ALL, 1, ["header must be 'id,text'"]),
    "header_only": ("id,text\n\n", 1, ["header only"]),
    "open_quote": ('id,text\nn1,"animal\nn2,mammal\n', 2, ["malformed CSV"]),
    "missing": ("id,text\n" + _ALL, None, ["1 of 6 nodes have no text: 'n6'",
                                           "add a row id,text"]),
}


@pytest.mark.parametrize("case", sorted(NODE_TEXT_BAD))
def test_bad_node_text_file_is_one_line_with_file_and_line(tmp_path, case):
    content, line, words = NODE_TEXT_BAD[case]
    p = _write(tmp_path, f"{case}.csv", content)
    err = _node_text_error(p, _tax())
    msg = str(err)
    assert "\n" not in msg and err.file == str(p)
    if line is None:
        assert err.line is None and msg.startswith(f"{p}: ")
    else:
        assert err.line == line and msg.startswith(f"{p}:{line}: ")
    for w in words:
        assert w in msg, (w, msg)
    assert sorted(os.listdir(tmp_path)) == [f"{case}.csv"]  # reading writes nothing


def test_missing_node_texts_are_counted_and_the_first_few_named(tmp_path):
    tax = Taxonomy.from_edges([f"c{i}" for i in range(20)], ["r"] * 20)
    p = _write(tmp_path, "t.csv", "id,text\nr,root\nc3,three\n")
    msg = str(_node_text_error(p, tax))
    assert "19 of 21 nodes have no text: 'c0', 'c1', 'c2', 'c4', 'c5', ..." in msg
