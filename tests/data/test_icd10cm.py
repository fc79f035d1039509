"""ICD-10-CM loader (simple_icd_10_cm) and the committed sample slice.

The full taxonomy is built once per module (about 7 s with the package's own
XML parse).  Without the package these tests skip, except under CI=true,
where a missing package fails.
"""
from __future__ import annotations

import csv
import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from hgraph.data.icd10cm import (BLOCK_PREFIX, ROOT_KEY, icd10cm_items, load_icd10cm,
                                 write_slice)
from hgraph.data.io import read_taxonomy
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError

PACKAGE = "simple_icd_10_cm"
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
SAMPLE_TOP = "K00-K14"
SAMPLE_NODES = 252


def _need_package():
    if os.environ.get("CI") == "true":
        return importlib.import_module(PACKAGE)  # CI must have it: fail, never skip
    return pytest.importorskip(PACKAGE)


@pytest.fixture(scope="module")
def full() -> Taxonomy:
    _need_package()
    return load_icd10cm()


@pytest.fixture(scope="module")
def no7th() -> Taxonomy:
    _need_package()
    return load_icd10cm(no7th=True)


@pytest.fixture(scope="module")
def items(full):
    return icd10cm_items(full)


def _read_csv(path: Path):
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


# ----------------------------------------------------------------- full build
def test_full_counts(full):
    n = full.num_nodes
    assert 90_000 <= n <= 100_000
    assert full.is_tree and not full.virtual_root and full.num_edges == n - 1
    assert full.keys[full.root] == ROOT_KEY
    assert 6 <= full.depth <= 7
    m = full.meta
    assert (m["dataset"], m["num_nodes"], m["num_edges"], m["depth"], m["no7th"]) == \
        ("icd10cm", n, n - 1, full.depth, False)
    counts = m["kind_counts"]
    assert counts["root"] == 1 and counts["chapter"] == 22
    assert 250 <= counts["block"] <= 350 and 1_800 <= counts["category"] <= 2_000
    assert sum(counts.values()) == n and len(m["kinds"]) == n
    lv = full.level
    kinds = np.asarray(m["kinds"])
    assert set(lv[kinds == "chapter"]) == {1} and set(lv[kinds == "block"]) == {2}
    assert set(lv[kinds == "category"]) == {3} and lv[kinds == "subcategory"].min() == 4
    assert sorted(full.keys[c] for c in full.children(full.root)) == \
        sorted(str(i) for i in range(1, 23))


def test_texts(full):
    assert full.texts is not None and len(full.texts) == full.num_nodes
    assert all(isinstance(t, str) and t.strip() for t in full.texts)
    assert full.texts[full.index("A00")] == "Cholera"
    assert full.texts[full.index("A00-A09")] == "Intestinal infectious diseases (A00-A09)"
    assert full.names[full.index("K83.09")] == "K83.09"


def test_block_category_same_code(full):
    """B10 is a block holding the single category B10: two nodes, block above."""
    cat, block = full.index("B10"), full.index(BLOCK_PREFIX + "B10")
    assert cat != block
    assert full.names[cat] == full.names[block] == "B10"
    assert full.keys[cat] == "B10" and full.keys[block] == "block:B10"
    assert list(full.parents(cat)) == [block]
    assert full.keys[full.parents(block)[0]] == "1"          # chapter 1
    assert full.texts[block] == "Other human herpesviruses (B10)"
    assert full.texts[cat] == "Other human herpesviruses"
    assert {full.keys[c] for c in full.children(cat)} >= {"B10.0", "B10.8"}
    kinds = full.meta["kinds"]
    assert kinds[block] == "block" and kinds[cat] == "category"
    # every prefixed block is the parent of the category with its code
    doubled = [i for i, k in enumerate(full.keys) if k.startswith(BLOCK_PREFIX)]
    assert 30 <= len(doubled) <= 50
    for b in doubled:
        assert [full.keys[c] for c in full.children(b)] == [full.keys[b][len(BLOCK_PREFIX):]]


def test_no7th(full, no7th):
    n = no7th.num_nodes
    assert 40_000 <= n <= 55_000
    assert no7th.is_tree and no7th.meta["no7th"] is True and 6 <= no7th.depth <= 7
    assert "extension" not in no7th.meta["kind_counts"]
    assert full.meta["kind_counts"]["extension"] == full.num_nodes - n
    assert set(no7th.keys) <= set(full.keys)
    assert "S00.00XA" in full.keys and "S00.00XA" not in no7th.keys
    assert "C44.1021" in no7th.keys      # a seven-character code listed in the tabular list
    assert len(no7th.texts) == n and all(t.strip() for t in no7th.texts)


# ----------------------------------------------------------------------- items
def test_items(full, items):
    texts, cats = items
    assert cats.dtype == np.int64 and len(texts) == len(cats)
    assert 12_000 <= len(texts) <= 15_000
    assert 6_500 <= len(np.unique(cats)) <= 8_000
    assert cats.min() >= 0 and cats.max() < full.num_nodes and full.root not in cats
    assert all(t and t == t.strip() for t in texts)
    assert len(set(zip(texts, cats.tolist()))) == len(texts)
    k = full.index("K83.09")
    assert "Primary cholangitis" in [t for t, c in zip(texts, cats) if c == k]
    kinds = np.asarray(full.meta["kinds"])
    assert "extension" not in set(kinds[cats])


def test_items_need_icd_keys():
    _need_package()
    tax = Taxonomy.from_edges(["a", "b"], ["r", "r"])
    with pytest.raises(HGraphInputError, match="ICD-10-CM code"):
        icd10cm_items(tax)


def test_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, PACKAGE, None)   # import now raises ImportError
    with pytest.raises(HGraphInputError, match="pip install simple-icd-10-cm"):
        load_icd10cm()


# --------------------------------------------------------------------- samples
def test_sample_files_parse():
    paths = {k: SAMPLES / f"icd10cm_slice_{k}.csv" for k in ("edges", "text", "items")}
    for p in paths.values():
        assert p.stat().st_size < 100_000
    tax = read_taxonomy(paths["edges"])
    assert tax.num_nodes == SAMPLE_NODES and tax.is_tree and not tax.virtual_root
    assert tax.keys[tax.root] == SAMPLE_TOP
    head, rows = _read_csv(paths["text"])
    assert head == ["id", "text"] and sorted(r[0] for r in rows) == sorted(tax.keys)
    assert all(len(r) == 2 and r[1].strip() for r in rows)
    head, rows = _read_csv(paths["items"])
    assert head == ["text", "category"] and len(rows) > 100
    assert all(len(r) == 2 and r[0].strip() for r in rows)
    assert {r[1] for r in rows} <= set(tax.keys)


def test_sample_matches_package(full, items, tmp_path):
    """The committed files are what write_sample writes, byte for byte."""
    out = write_slice(full, *items, SAMPLE_TOP, tmp_path, "icd10cm_slice", max_nodes=400)
    assert out["num_nodes"] == SAMPLE_NODES
    for k in ("edges", "text", "items"):
        assert Path(out[k]).read_bytes() == (SAMPLES / f"icd10cm_slice_{k}.csv").read_bytes()
    # icd10cm_items works on the slice read back from its edges file
    tax = read_taxonomy(out["edges"])
    texts, cats = icd10cm_items(tax)
    assert len(texts) == out["num_items"]


def test_slice_truncates_levels(full, items, tmp_path):
    out = write_slice(full, *items, SAMPLE_TOP, tmp_path, "s", max_nodes=120)
    tax = read_taxonomy(out["edges"])
    assert out["levels"] == 3 and tax.num_nodes == out["num_nodes"] <= 120   # 1 + 13 + 93
    assert tax.keys[tax.root] == SAMPLE_TOP and tax.depth == 2
    with pytest.raises(HGraphInputError, match="more than max_nodes"):
        write_slice(full, *items, "1", tmp_path, "s", max_nodes=5)
