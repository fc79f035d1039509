"""save_embeddings / load_embeddings: exact round trip, every format readable."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from hgraph import manifolds as M
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError
from hgraph.export import Embeddings, load_embeddings, save_embeddings, w2v_words

# names that stress the text formats: spaces, tab, comma, quote, NA-like, numeric-like
NAMES = ["root", "a b", "tab\there", "comma,name", 'quo"te', "NA", "007", "ünïcode", "a_b", "x"]


def _tax():
    child = NAMES[1:]
    parent = ["root", "root", "a b", "a b", "tab\there", "tab\there", "007", "007", "ünïcode"]
    return Taxonomy.from_edges(child, parent, tree=True)


def _points(kind, dtype, n, d=4, c=0.5):
    m = M.make_manifold(kind, c if kind != "euclidean" else 0.0)
    u = torch.randn(n, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = M.expmap0(m, u).to(dtype)
    return m, x


@pytest.mark.parametrize("kind", ["poincare", "lorentz", "euclidean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_is_exact(tmp_path, kind, dtype):
    tax = _tax()
    m, x = _points(kind, dtype, tax.num_nodes)
    paths = save_embeddings(tmp_path, x, tax, m)
    assert set(paths) == {"npy", "vectors_tsv", "metadata_tsv", "csv", "w2v", "meta"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert not list(tmp_path.glob(".*tmp*"))                 # no temporary files left
    emb = load_embeddings(tmp_path)
    assert isinstance(emb, Embeddings)
    assert emb.points.dtype == dtype
    assert torch.equal(emb.points, x)                        # bit-identical
    assert emb.names == tax.names
    assert np.array_equal(emb.levels, tax.level)
    assert np.array_equal(emb.ids, np.arange(tax.num_nodes))
    assert emb.kind == kind and M.kind(emb.manifold) == kind
    assert emb.curvature == pytest.approx(M.curvature_of(m))
    assert M.curvature_of(emb.manifold) == pytest.approx(M.curvature_of(m))
    assert emb.dim == x.shape[1] and len(emb) == tax.num_nodes
    assert emb.intrinsic_dim == x.shape[1] - (1 if kind == "lorentz" else 0)

    # text formats hold the exact values too
    vec = np.loadtxt(paths["vectors_tsv"], delimiter="\t", dtype=np.float64, ndmin=2)
    assert np.array_equal(vec.astype(x.numpy().dtype), x.numpy())
    with open(paths["csv"], newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "name", "level"] + [f"x{j}" for j in range(x.shape[1])]
    assert [r[1] for r in rows[1:]] == tax.names
    got = np.array([[float(v) for v in r[3:]] for r in rows[1:]]).astype(x.numpy().dtype)
    assert np.array_equal(got, x.numpy())

    meta = json.loads(paths["meta"].read_text())
    assert meta["manifold"] == kind and meta["num_nodes"] == tax.num_nodes
    assert meta["dim"] == x.shape[1] and meta["dtype"] == str(x.numpy().dtype)
    assert meta["intrinsic_dim"] == x.shape[1] - (1 if kind == "lorentz" else 0)


def test_numpy_input_and_package_level_import(tmp_path):
    from hgraph import load_embeddings as pkg_load
    tax = _tax()
    m, x = _points("poincare", torch.float64, tax.num_nodes)
    save_embeddings(tmp_path, x.numpy(), tax, m)
    assert torch.equal(pkg_load(tmp_path).points, x)
    # unsupported dtypes are stored as float32
    save_embeddings(tmp_path / "h", x.to(torch.float16), tax, m)
    assert load_embeddings(tmp_path / "h").points.dtype == torch.float32


def test_tensorboard_metadata(tmp_path):
    tax = _tax()
    m, x = _points("lorentz", torch.float32, tax.num_nodes)
    paths = save_embeddings(tmp_path, x, tax, m)
    lines = paths["metadata_tsv"].read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id\tname\tlevel"
    assert len(lines) == tax.num_nodes + 1
    assert all(len(line.split("\t")) == 3 for line in lines)       # tab in a name became a space
    assert lines[1 + tax.index("tab\there")].split("\t")[1] == "tab here"
    vec_lines = paths["vectors_tsv"].read_text().splitlines()
    assert len(vec_lines) == tax.num_nodes and len(vec_lines[0].split("\t")) == x.shape[1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gensim_reads_word2vec(tmp_path, dtype):
    from gensim.models import KeyedVectors   # gensim is a dev dependency: fail if missing
    tax = _tax()
    m, x = _points("poincare", dtype, tax.num_nodes, d=5)
    paths = save_embeddings(tmp_path, x, tax, m)
    kv = KeyedVectors.load_word2vec_format(str(paths["w2v"]), binary=False)
    words = w2v_words(tax.names)
    assert len(kv) == tax.num_nodes and kv.vector_size == 5
    assert list(kv.index_to_key) == words
    i_ab, i_ab2 = tax.index("a b"), tax.index("a_b")
    assert i_ab < i_ab2
    assert words[i_ab] == "a_b" and words[i_ab2] == f"a_b__{i_ab2}"   # the later "a_b" is de-duplicated
    assert words[tax.index("tab\there")] == "tab_here"
    assert not any(any(ch.isspace() for ch in w) for w in words)
    np.testing.assert_array_equal(kv.vectors, x.numpy().astype(np.float32))
    assert json.loads(paths["meta"].read_text())["names_altered_in_w2v"] == 3


def test_bad_input(tmp_path):
    tax = _tax()
    m, x = _points("poincare", torch.float32, tax.num_nodes)
    with pytest.raises(ValueError):
        save_embeddings(tmp_path, x[:-1], tax, m)
    with pytest.raises(HGraphInputError, match="embedding_meta.json"):
        load_embeddings(tmp_path / "nothing")
    save_embeddings(tmp_path, x, tax, m)
    (tmp_path / "embeddings.npy").unlink()
    with pytest.raises(HGraphInputError, match="embeddings.npy"):
        load_embeddings(tmp_path)


def test_embeddings_id_of(tmp_path):
    tax = _tax()
    m, x = _points("poincare", torch.float32, tax.num_nodes)
    save_embeddings(tmp_path, x, tax, m)
    emb = load_embeddings(tmp_path)
    assert emb.id_of("comma,name") == tax.index("comma,name")
    assert emb.id_of("007") == tax.index("007")          # a name wins over an id
    assert emb.id_of(3) == 3 and emb.id_of("3") == 3
    for bad in ("missing", 10, -1, "99"):
        with pytest.raises(HGraphInputError):
            emb.id_of(bad)
