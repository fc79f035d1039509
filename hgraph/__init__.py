from hgraph.export import load_embeddings  # noqa: F401
