"""What the analyses read: finished item run folders and the data of their runs.

An item run folder holds

* its settings: ``config.json`` (a :class:`~hgraph.config.RunConfig` of any
  config version, ``task: items``) or, in folders written before the one
  harness, ``metrics.json``'s ``run.config`` (flat item settings: ``dataset``,
  ``zero_shot_frac``, ...);
* ``metrics.json``: ``per_seed``, one dict of metrics per seed (with ``seed``);
* ``per_item_seed<s>.npz``: one entry per test item of seed ``s`` (``items``:
  item ids, ``slice``: ``zero``/``tail``/``head``, ``top1``: top-1 category id,
  ``p1`` ..., and with calibration ``test_d_seen`` ...).

:func:`read_run` / :func:`find_runs` read those (bad input: one-line
:class:`~hgraph.errors.HGraphInputError`).  :class:`RunData` is what an
analysis needs of the run's data (taxonomy, items, candidates, text vectors,
split settings); :func:`load_run_data` builds it with the item task's own
loader (:func:`hgraph.tasks.item_data.load_item_data`, imported in that
function only).
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from hgraph.config import RunConfig
from hgraph.data.item_splits import ItemSplits, make_item_splits
from hgraph.data.items import Items
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError
from hgraph.results import INCOMPLETE, read_run_config


def item_settings(flat: Mapping[str, Any], source: str = "<settings>") -> RunConfig:
    """The :class:`~hgraph.config.RunConfig` of flat item settings (the layout of
    item run folders written before the one harness)."""
    from hgraph.tasks.items import config_from_dict     # the one reader of flat settings
    return config_from_dict(dict(flat), source)


def data_key(cfg: RunConfig) -> Tuple:
    """The settings that decide a run's loaded data (taxonomy, items, text vectors)."""
    it = cfg.items
    return (cfg.data.dataset, cfg.data.text_encoder, it.items, it.node_text, it.subtree,
            it.category_context)


def split_settings(cfg: RunConfig) -> Dict[str, float]:
    """The settings that decide a seed's item split."""
    return {"zero_shot_frac": float(cfg.items.zero_shot_frac),
            "val_frac": float(cfg.data.val_frac), "test_frac": float(cfg.data.test_frac)}


def with_context(cfg: RunConfig, k: int) -> RunConfig:
    """``cfg`` with ``items.category_context`` ``k``."""
    return replace(cfg, items=replace(cfg.items, category_context=int(k)))


@dataclass(frozen=True)
class Run:
    """One finished run folder: ``config`` (its settings), ``per_seed`` (metrics per seed)."""
    path: Path
    config: RunConfig
    per_seed: List[Dict[str, Any]]

    @property
    def name(self) -> str:
        return self.path.name

    def per_item_path(self, seed: int) -> Path:
        return self.path / f"per_item_seed{seed}.npz"

    def has_per_item(self, seed: int) -> bool:
        return self.per_item_path(seed).exists()

    def per_item(self, seed: int, keys: Sequence[str] = ()) -> Dict[str, np.ndarray]:
        """The per-item arrays of ``seed`` (all, or ``keys``, which must be there)."""
        path = self.per_item_path(seed)
        if not path.exists():
            raise HGraphInputError(f"no per-item file for seed {seed}", file=str(path))
        try:
            with np.load(path) as a:   # no pickled arrays: none is ever written
                got = {k: a[k] for k in (keys or a.files) if k in a.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise HGraphInputError(f"not a readable .npz file ({e})", file=str(path)) from None
        missing = [k for k in keys if k not in got]
        if missing:
            raise HGraphInputError(f"no array(s) {', '.join(missing)} in this file",
                                   file=str(path))
        return got


def read_run(path) -> Run:
    """The finished item run folder ``path``: its config (``config.json``, else the
    flat ``run.config`` of ``metrics.json``) and ``metrics.json``'s ``per_seed``."""
    path = Path(path)
    f = path / "metrics.json"
    if not f.is_file():
        raise HGraphInputError("not a finished run folder (no metrics.json)", file=str(path))
    if (path / INCOMPLETE).exists():
        raise HGraphInputError("run is marked INCOMPLETE", file=str(path))
    try:
        m = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HGraphInputError(f"not valid JSON: {e}", file=str(f)) from None
    if not isinstance(m, dict) or not isinstance(m.get("per_seed"), list):
        raise HGraphInputError("no per_seed list: not an item run's metrics", file=str(f))
    for ps in m["per_seed"]:
        if not isinstance(ps, dict) or "seed" not in ps:
            raise HGraphInputError("a per_seed entry without its seed", file=str(f))
    if (path / "config.json").exists():
        cfg = read_run_config(path)
    else:
        flat = m.get("run", {}).get("config") if isinstance(m.get("run"), dict) else None
        if not isinstance(flat, dict):
            raise HGraphInputError("no config.json and no run.config in metrics.json",
                                   file=str(path))
        cfg = item_settings(flat, source=f"{f} run.config")
    if cfg.task != "items":
        raise HGraphInputError(f"not an item run (task {cfg.task!r})", file=str(path))
    return Run(path=path, config=cfg, per_seed=m["per_seed"])


def find_runs(folder) -> List[Run]:
    """``folder`` itself when it is a run folder, else its run folders (sorted by name)."""
    folder = Path(folder)
    if (folder / "metrics.json").exists():
        return [read_run(folder)]
    if not folder.is_dir():
        raise HGraphInputError("no such folder", file=str(folder))
    runs = sorted(p.parent for p in folder.glob("*/metrics.json"))
    if not runs:
        raise HGraphInputError("no run folder here (no */metrics.json)", file=str(folder))
    return [read_run(p) for p in runs]


@dataclass
class RunData:
    """What the analyses need of a run's data.

    ``tax``: the taxonomy (N nodes); ``items``: its (item, category) rows;
    ``cand``: (C,) candidate category ids; ``truth``: per item id, its true
    category ids; ``x_nodes``: (N, F) category text vectors; ``x_items``:
    (U, F) item text vectors; ``split_settings``: ``zero_shot_frac``,
    ``val_frac``, ``test_frac`` of the runs it serves (:func:`split_settings`).
    """
    tax: Taxonomy
    items: Items
    cand: np.ndarray
    truth: List[np.ndarray]
    x_nodes: Optional[torch.Tensor] = None
    x_items: Optional[torch.Tensor] = None
    split_settings: Dict[str, float] = field(
        default_factory=lambda: {"zero_shot_frac": 0.1, "val_frac": 0.1, "test_frac": 0.2})
    _trained: Dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def candidate_mask(self) -> np.ndarray:
        """(N,) True on the candidate categories."""
        m = np.zeros(self.tax.num_nodes, dtype=bool)
        m[self.cand] = True
        return m

    def splits(self, seed: int) -> ItemSplits:
        """Seed ``seed``'s item split, as the run drew it."""
        s = self.split_settings
        return make_item_splits(self.items, self.tax.num_nodes, s["zero_shot_frac"],
                                s["val_frac"], s["test_frac"], seed=seed,
                                candidates=self.candidate_mask())

    def trained(self, seed: int) -> np.ndarray:
        """(N,) True on the categories with >= 1 training item under seed ``seed``."""
        if seed not in self._trained:
            sp = self.splits(seed)
            has = np.zeros(self.tax.num_nodes, dtype=bool)
            has[sp.category[sp.rows("train")]] = True
            self._trained[seed] = has
        return self._trained[seed]


def load_run_data(cfg: RunConfig) -> RunData:
    """The data of a run with config ``cfg``: the dataset, items, node text and
    category context it was run with, text vectors from the cache (the
    sentence encoder runs only for texts not cached yet).  Only the data
    settings count: no trained text layer's token states are computed."""
    # the item task's own loader, imported here only: the one line to follow it
    from hgraph.tasks.item_data import load_item_data
    data_only = replace(cfg, progress=False,
                        items=replace(cfg.items, item_text_layers=0, shared_text_head=False))
    d = load_item_data(data_only, torch.device("cpu"))
    return RunData(tax=d.tax, items=d.items, cand=np.asarray(d.cand), truth=list(d.truth),
                   x_nodes=d.x_nodes, x_items=d.x_items, split_settings=split_settings(cfg))


class DataCache:
    """``cache.for_run(run)``: the :class:`RunData` of a run, loaded once per set
    of data settings (:func:`data_key`; runs that differ only in their split
    settings share it)."""

    def __init__(self, load: Optional[Callable[[RunConfig], RunData]] = None):
        self.load = load if load is not None else load_run_data
        self._data: Dict[Tuple, RunData] = {}
        self._split: Dict[Tuple, RunData] = {}

    def for_config(self, cfg: RunConfig) -> RunData:
        key = data_key(cfg)
        if key not in self._data:
            self._data[key] = self.load(cfg)
        d = self._data[key]
        s = split_settings(cfg)
        if s == d.split_settings:
            return d
        skey = (key, tuple(sorted(s.items())))
        if skey not in self._split:     # the same data under other split settings
            self._split[skey] = replace(d, split_settings=s, _trained={})
        return self._split[skey]

    def for_run(self, run: Run) -> RunData:
        return self.for_config(run.config)


def mean_or_nan(v: np.ndarray) -> float:
    """Mean of ``v``, NaN when ``v`` is empty (no warning)."""
    v = np.asarray(v, dtype=np.float64)
    return float(v.mean()) if v.size else float("nan")


__all__ = ["item_settings", "data_key", "split_settings", "with_context", "Run", "read_run",
           "find_runs", "RunData", "load_run_data", "DataCache", "mean_or_nan"]
