"""The dataset registry: ``--dataset NAME`` or ``NAME:PATH`` -> :class:`Taxonomy`.

Each entry of :data:`DATASETS` says how it is named on the command line
(``usage``, shown by ``--help``) and loads the taxonomy, with node features
where the dataset has them.  ``--features FILE`` then replaces those.
Loading validates the input and writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Optional

from hgraph.data.generate import generate_tree, hierarchical_features
from hgraph.data.io import read_features, read_taxonomy
from hgraph.data.taxonomy import Taxonomy
from hgraph.data.wordnet import WORDNET_DIR, gloss_features, load_wordnet
from hgraph.errors import HGraphInputError

if TYPE_CHECKING:  # pragma: no cover
    from hgraph.config import DataConfig


@dataclass(frozen=True)
class Dataset:
    """One registry entry: ``load(cfg, argument after ':')`` and its usage."""
    load: Callable[["DataConfig", Optional[str]], Taxonomy]
    usage: str


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


def _wordnet(which: str):
    def read(cfg: "DataConfig", arg: Optional[str]) -> Taxonomy:
        root = WORDNET_DIR if arg is None else arg
        tax = load_wordnet(which, root=root)
        if cfg.features is None:   # text features: TF-IDF + SVD of lemmas and gloss
            tax.features = gloss_features(tax, dim=cfg.feature_dim, root=root,
                                          seed=cfg.gen_seed)
        return tax
    return read


#: name -> Dataset.  The --dataset choices (``name`` or ``name:PATH``).
DATASETS: Dict[str, Dataset] = {
    "curvlearn-synthetic": Dataset(_synthetic, "curvlearn-synthetic"),
    "curvlearn-csv": Dataset(_file_reader("auto", True), "curvlearn-csv:PATH"),
    "csv": Dataset(_file_reader("auto", None), "csv:PATH"),
    "closure": Dataset(_file_reader("closure", None), "closure:PATH"),
    "wordnet-mammals": Dataset(_wordnet("mammals"), "wordnet-mammals[:WORDNET_DIR]"),
    "wordnet-nouns": Dataset(_wordnet("nouns"), "wordnet-nouns[:WORDNET_DIR]"),
}


def load_dataset(cfg: "DataConfig") -> Taxonomy:
    """Resolve ``cfg.dataset`` (``name`` or ``name:PATH``) through :data:`DATASETS`;
    ``cfg.features`` (a file) replaces the dataset's own features."""
    name, _, arg = cfg.dataset.partition(":")
    if name not in DATASETS:
        raise HGraphInputError(f"unknown dataset {cfg.dataset!r}",
                               fix=f"choose from {', '.join(sorted(DATASETS))} (PATH after ':')")
    tax = DATASETS[name].load(cfg, arg or None)
    if cfg.features is not None:
        tax.features = read_features(cfg.features, tax)
    return tax
