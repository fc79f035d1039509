"""The registries by name, for the CLI built from the config's field metadata.

:mod:`hgraph.config` names a registry by a plain key (``choices="encoders"``,
``listing="datasets"``) and imports none; this module maps the keys to the
registries (imported when asked, so that building nothing costs nothing) and
answers the one registry question the presets need: a dataset's default kind of
features.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional


def _encoders() -> List[str]:
    """Node encoders and item models together (``--task`` decides which apply; the run
    checks the name against its task's registry before anything is read)."""
    from hgraph.nn import ENCODERS
    from hgraph.tasks.item_models import ITEM_ENCODERS
    return sorted(set(ENCODERS) | set(ITEM_ENCODERS))


def _manifolds() -> List[str]:
    from hgraph.manifolds import MANIFOLDS
    return sorted(MANIFOLDS)


def _losses() -> List[str]:
    from hgraph.losses import LOSSES
    return sorted(LOSSES)


def _reg_kinds() -> List[str]:
    from hgraph.data.triplets import KINDS
    return list(KINDS)


def _text_encoders() -> List[str]:
    from hgraph.data.text import TEXT_ENCODERS
    return sorted(TEXT_ENCODERS)


def _activations() -> List[str]:
    from hgraph.nn.base import ACTIVATIONS
    return list(ACTIVATIONS)


def _formats() -> List[str]:
    from hgraph.data.io import FORMATS
    return list(FORMATS)


def _datasets_usage() -> str:
    from hgraph.data.datasets import DATASETS
    return " | ".join(d.usage for d in DATASETS.values())


#: registry key of a field's ``metadata['choices']`` -> the allowed values
CHOICES: Dict[str, Callable[[], List[str]]] = {
    "encoders": _encoders, "manifolds": _manifolds, "losses": _losses,
    "reg_kinds": _reg_kinds, "text_encoders": _text_encoders,
    "activations": _activations, "formats": _formats,
}

#: registry key of a field's ``metadata['listing']`` -> the text listing its entries
LISTINGS: Dict[str, Callable[[], str]] = {"datasets": _datasets_usage}


def choices(key: str) -> List[str]:
    """The keys of the registry named ``key`` (a field's ``metadata['choices']``)."""
    return CHOICES[key]()


def listing(key: str) -> str:
    """The entries of the registry named ``key``, as help text."""
    return LISTINGS[key]()


def dataset_features(name: str) -> Optional[str]:
    """The default kind of features of dataset ``name`` (``"text"``, ``"tfidf"``),
    None for a dataset without one or an unknown name (reported later); the lookup
    :func:`hgraph.config.from_dict` takes to apply the feature presets."""
    from hgraph.data.datasets import DATASETS
    ds = DATASETS.get(name)
    return None if ds is None else ds.default_features


__all__ = ["CHOICES", "LISTINGS", "choices", "listing", "dataset_features"]
