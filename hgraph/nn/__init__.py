"""Encoders: node -> point on a geoopt manifold, and the ENCODERS registry.

``ENCODERS`` maps each ``--encoder`` name to its class; every class builds
itself from an :class:`~hgraph.nn.base.EncoderSpec` (``cls.from_spec``) and
declares its capabilities on :class:`~hgraph.nn.base.Encoder`.  The registry
is built here, after every encoder module is imported, so no encoder module
imports another.
"""
from __future__ import annotations

from typing import Dict, Type

from hgraph.nn.base import ACTIVATIONS, Encoder, EncoderSpec
from hgraph.nn.combinatorial import CombinatorialEncoder
from hgraph.nn.features import FeatureBaseline
from hgraph.nn.hgcn import HGCNEncoder
from hgraph.nn.ramen import RamenEncoder
from hgraph.nn.shallow import ShallowEncoder

#: name -> Encoder class.  The CLI's --encoder choices.
ENCODERS: Dict[str, Type[Encoder]] = {
    "shallow": ShallowEncoder,
    "features": FeatureBaseline,
    "ramen": RamenEncoder,
    "hgcn": HGCNEncoder,
    "construct": CombinatorialEncoder,
}


def build_encoder(spec: EncoderSpec) -> Encoder:
    """The encoder ``spec.cfg.encoder`` names, built from ``spec``."""
    try:
        cls = ENCODERS[spec.cfg.encoder]
    except KeyError:
        raise ValueError(f"unknown encoder {spec.cfg.encoder!r}; choose from "
                         f"{sorted(ENCODERS)}") from None
    return cls.from_spec(spec)


__all__ = ["ACTIVATIONS", "CombinatorialEncoder", "ENCODERS", "Encoder", "EncoderSpec",
           "FeatureBaseline", "HGCNEncoder", "RamenEncoder", "ShallowEncoder", "build_encoder"]
