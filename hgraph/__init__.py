"""hgraph: hyperbolic embeddings of category hierarchies.

Importing the package is cheap; heavy modules (torch-geometric, matplotlib,
faiss) load when first used.
"""
__version__ = "0.1.0"
__all__ = ["load_embeddings", "__version__"]


def __getattr__(name):
    if name == "load_embeddings":
        from hgraph.export import load_embeddings
        return load_embeddings
    raise AttributeError(f"module 'hgraph' has no attribute {name!r}")
