"""hgraph: hyperbolic embeddings of category hierarchies.

Importing the package is cheap; heavy modules (torch-geometric, matplotlib,
faiss) load when first used.
"""
from hgraph.version import __version__

__all__ = ["Placer", "Placement", "run", "load_embeddings", "__version__"]


def __getattr__(name):
    if name == "load_embeddings":
        from hgraph.export import load_embeddings
        return load_embeddings
    if name in ("Placer", "Placement"):
        from hgraph.placer import Placement, Placer
        return {"Placer": Placer, "Placement": Placement}[name]
    if name == "run":
        from hgraph.pipeline import run
        return run
    raise AttributeError(f"module 'hgraph' has no attribute {name!r}")
