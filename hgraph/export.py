"""Write learned embeddings in common formats and read them back.

:func:`save_embeddings` writes, into a run directory:

==========================  ================================================
``embeddings.npy``          (N, D) points, float32 or float64 (the points'
                            dtype; other dtypes are stored as float32).  The
                            source of truth: :func:`load_embeddings` reads it
                            and the round trip is bit-exact.
``vectors.tsv``             TensorBoard projector vectors, no header.
``metadata.tsv``            TensorBoard projector labels, header
                            ``id<TAB>name<TAB>level``.  Tabs, carriage
                            returns and newlines inside names become spaces.
``embeddings.csv``          ``id,name,level,x0,...,x{D-1}`` (names quoted as
                            needed, so any name round-trips).
``embeddings.w2v``          word2vec text format (``N D`` header, then
                            ``word v1 ... vD``), readable by gensim's
                            ``KeyedVectors.load_word2vec_format(path,
                            binary=False)``.  Whitespace in names becomes
                            ``_``; an empty or repeated word gets ``__<id>``
                            appended so every row stays a distinct key.
``embedding_meta.json``     manifold kind, curvature, dim, dtype, num_nodes,
                            file names, how many names were altered.
==========================  ================================================

Text files print floats with enough digits (9 for float32, 17 for float64)
to reproduce the stored value exactly.  Each file is written to a temporary
name and renamed into place, so an interrupted save leaves no half-written
file under the final name.

Coordinates are those of the manifold: (N, d) ball coordinates for Poincaré,
(N, d + 1) hyperboloid coordinates (time first) for Lorentz.  To view Lorentz
embeddings in the projector as a disk, convert them first with
:func:`hgraph.manifolds.lorentz_to_poincare`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch

from hgraph import manifolds as M
from hgraph.errors import HGraphInputError
from hgraph.files import atomic_open

FILES = {
    "npy": "embeddings.npy",
    "vectors_tsv": "vectors.tsv",
    "metadata_tsv": "metadata.tsv",
    "csv": "embeddings.csv",
    "w2v": "embeddings.w2v",
    "meta": "embedding_meta.json",
}
FORMAT_VERSION = 1
_WS = re.compile(r"\s+")


@dataclass(eq=False)
class Embeddings:
    """Embeddings read back from a run directory.

    Attributes:
        points: (N, D) tensor, dtype as saved.
        names: (N,) node names; ``names[i]`` is node ``i``.
        levels: (N,) int64 depth below the root.
        ids: (N,) int64 node ids (``0..N-1`` as written).
        manifold: geoopt manifold rebuilt at the stored curvature.
        kind: ``'poincare' | 'lorentz' | 'euclidean'``.
        curvature: positive c (curvature -c), 0 for Euclidean.
        path: the run directory.
    """

    points: torch.Tensor
    names: List[str]
    levels: np.ndarray
    ids: np.ndarray
    manifold: object
    kind: str
    curvature: float
    path: Optional[Path] = None
    _name_index: Optional[Dict[str, int]] = field(default=None, repr=False)
    #: search indexes built over the points, by faiss choice (see hgraph.retrieval.search_index)
    _search: Dict[object, object] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def dim(self) -> int:
        """Coordinates per point (d + 1 on the hyperboloid)."""
        return int(self.points.shape[1])

    @property
    def intrinsic_dim(self) -> int:
        return self.dim - 1 if self.kind == "lorentz" else self.dim

    def id_of(self, node: Union[int, str]) -> int:
        """Row of ``node``: an id (int) or a name.  A string that is not a name
        but parses as an integer is taken as an id.  Raises
        :class:`HGraphInputError` for an unknown node."""
        if self._name_index is None:
            self._name_index = {}
            for i, n in enumerate(self.names):
                self._name_index.setdefault(n, i)
        if isinstance(node, (int, np.integer)) and not isinstance(node, bool):
            i = int(node)
        elif isinstance(node, str) and node in self._name_index:
            return self._name_index[node]
        elif isinstance(node, str) and re.fullmatch(r"-?\d+", node.strip()):
            i = int(node)
        else:
            raise HGraphInputError(f"unknown node {node!r}",
                                   file=None if self.path is None else str(self.path),
                                   fix="give a node name from metadata.tsv or an id 0..N-1")
        if not 0 <= i < len(self):
            raise HGraphInputError(f"unknown node {node!r}: ids are 0..{len(self) - 1}",
                                   file=None if self.path is None else str(self.path))
        return i


# ------------------------------------------------------------------ writing
def _as_numpy(points) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        t = points.detach().cpu()
        if t.dtype not in (torch.float32, torch.float64):
            t = t.to(torch.float32)
        return t.numpy()
    a = np.asarray(points)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32)
    return a


def _fmt(dtype) -> str:
    return "%.9g" if dtype == np.float32 else "%.17g"


def _write_text(path: Path, text_fn) -> None:
    with atomic_open(path, "w", newline="\n") as f:
        text_fn(f)


def _csv_field(name: str) -> str:
    """RFC 4180 quoting: quote when the field holds a comma, quote, CR or LF
    (or leading/trailing space), doubling inner quotes."""
    if any(ch in name for ch in ',"\r\n') or name != name.strip():
        return '"' + name.replace('"', '""') + '"'
    return name


def _tsv_name(name: str) -> str:
    return name.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def w2v_words(names: List[str]) -> List[str]:
    """The word2vec keys used for ``names``: whitespace -> ``_``; an empty or
    repeated result gets ``__<id>`` appended."""
    seen = set()
    out = []
    for i, n in enumerate(names):
        w = _WS.sub("_", n)
        if not w or w in seen:
            w = f"{w}__{i}"
        seen.add(w)
        out.append(w)
    return out


def save_embeddings(run_dir: Union[str, Path], points, tax, manifold) -> Dict[str, Path]:
    """Write ``points`` (one row per node of ``tax``) in all export formats.

    Args:
        run_dir: directory (created if missing).
        points: (N, D) tensor or array; row ``i`` is node ``i`` of ``tax``.
        tax: :class:`hgraph.data.taxonomy.Taxonomy` (names and levels).
        manifold: the geoopt manifold the points live on.

    Returns: ``{"npy", "vectors_tsv", "metadata_tsv", "csv", "w2v", "meta"}``
    -> path of each file written.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    x = _as_numpy(points)
    if x.ndim != 2:
        raise ValueError(f"points must be (N, D), got shape {x.shape}")
    n, d = x.shape
    if n != tax.num_nodes:
        raise ValueError(f"points has {n} rows but the taxonomy has {tax.num_nodes} nodes")
    names = [str(s) for s in tax.names]
    levels = np.asarray(tax.level, dtype=np.int64)
    ids = np.arange(n, dtype=np.int64)
    fmt = _fmt(x.dtype)
    kind = M.kind(manifold)
    paths = {k: run_dir / v for k, v in FILES.items()}

    with atomic_open(paths["npy"], "wb") as f:
        np.save(f, x, allow_pickle=False)
    # format every number once (one % per row): rows joined by tabs, reused below
    row_fmt = "\t".join([fmt] * d)
    rows = [row_fmt % tuple(r) for r in x.tolist()]
    _write_text(paths["vectors_tsv"], lambda f: f.writelines(r + "\n" for r in rows))
    tsv_names = [_tsv_name(s) for s in names]

    def meta_tsv(f):
        f.write("id\tname\tlevel\n")
        f.writelines(f"{i}\t{s}\t{lv}\n" for i, s, lv in zip(ids.tolist(), tsv_names, levels.tolist()))
    _write_text(paths["metadata_tsv"], meta_tsv)

    def csv_(f):
        f.write(",".join(["id", "name", "level"] + [f"x{j}" for j in range(d)]) + "\n")
        f.writelines(f"{i},{_csv_field(s)},{lv},{r.replace(chr(9), ',')}\n"
                     for i, s, lv, r in zip(ids.tolist(), names, levels.tolist(), rows))
    _write_text(paths["csv"], csv_)

    words = w2v_words(names)

    def w2v(f):
        f.write(f"{n} {d}\n")
        f.writelines(f"{w} {r.replace(chr(9), ' ')}\n" for w, r in zip(words, rows))
    _write_text(paths["w2v"], w2v)

    meta = {
        "format_version": FORMAT_VERSION,
        "manifold": kind,
        "curvature": M.curvature_of(manifold),
        "dim": int(d),
        "intrinsic_dim": int(d - 1 if kind == "lorentz" else d),
        "dtype": str(x.dtype),
        "num_nodes": int(n),
        "files": {k: v for k, v in FILES.items() if k != "meta"},
        "names_altered_in_tsv": int(sum(a != b for a, b in zip(names, tsv_names))),
        "names_altered_in_w2v": int(sum(a != b for a, b in zip(names, words))),
        "taxonomy_source": str(getattr(tax, "source", "")),
    }
    _write_text(paths["meta"], lambda f: f.write(json.dumps(meta, indent=2, sort_keys=True) + "\n"))
    return paths


# ------------------------------------------------------------------ reading
def load_embeddings(run_dir: Union[str, Path]) -> Embeddings:
    """Read what :func:`save_embeddings` wrote (points from ``embeddings.npy``,
    names and levels from ``embeddings.csv``, manifold from
    ``embedding_meta.json``).  Raises :class:`HGraphInputError` naming the
    file when one is missing or inconsistent."""
    run_dir = Path(run_dir)
    meta_path = run_dir / FILES["meta"]
    npy_path = run_dir / FILES["npy"]
    csv_path = run_dir / FILES["csv"]
    for p in (meta_path, npy_path, csv_path):
        if not p.is_file():
            raise HGraphInputError("missing embedding file", file=str(p),
                                   fix="point --run at a run directory written by save_embeddings")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        kind = str(meta["manifold"])
        curvature = float(meta["curvature"])
    except (ValueError, KeyError, TypeError) as e:
        raise HGraphInputError(f"unreadable metadata ({e.__class__.__name__}: {e})",
                               file=str(meta_path)) from None
    try:
        x = np.load(npy_path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise HGraphInputError(f"unreadable array ({e})", file=str(npy_path)) from None
    import pandas as pd
    try:
        df = pd.read_csv(csv_path, usecols=["id", "name", "level"],
                         dtype={"id": np.int64, "name": str, "level": np.int64},
                         keep_default_na=False, na_filter=False)
    except (ValueError, KeyError, pd.errors.ParserError) as e:
        raise HGraphInputError(f"unreadable table ({e})", file=str(csv_path)) from None
    if x.ndim != 2 or x.shape[0] != len(df) or x.shape[0] != int(meta.get("num_nodes", x.shape[0])):
        raise HGraphInputError(f"embeddings.npy has shape {x.shape} but embeddings.csv has "
                               f"{len(df)} rows", file=str(npy_path))
    manifold = M.make_manifold(kind, curvature if kind != "euclidean" else 0.0)
    return Embeddings(points=torch.from_numpy(x), names=df["name"].tolist(),
                      levels=df["level"].to_numpy(np.int64), ids=df["id"].to_numpy(np.int64),
                      manifold=manifold, kind=kind, curvature=curvature, path=run_dir)


__all__ = ["Embeddings", "save_embeddings", "load_embeddings", "w2v_words", "FILES"]
