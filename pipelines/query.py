#!/usr/bin/env python
"""Nearest categories of one node in a saved run, by hyperbolic distance.

Reads the files that hgraph.export.save_embeddings wrote into a run directory
(embeddings.npy, embeddings.csv, embedding_meta.json) and prints the k nearest
nodes with their distances and levels.

Examples:
    python pipelines/query.py --run results/curvlearn_shallow --node 0-45 -k 10
    python pipelines/query.py --run results/wordnet --node mammal.n.01 --tsv

Exit status: 0 on success, 2 on bad input (unknown node, missing run files).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import hgraph  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="query.py",
        description="Print the k categories nearest to a node (exact hyperbolic distance, "
                    "the node itself excluded).",
        epilog="The run directory must hold embeddings.npy, embeddings.csv and "
               "embedding_meta.json (written by hgraph.export.save_embeddings).",
    )
    p.add_argument("--run", required=True, type=Path, metavar="DIR",
                   help="run directory, e.g. results/<run_id>")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--node", metavar="NAME",
                   help="node name as in metadata.tsv; an integer that is not a name is read as an id")
    q.add_argument("--features", type=Path, metavar="FILE",
                   help="new items to place: .npy (Q, F) or CSV rows 'label,f1,...,fF'; each is "
                        "embedded by the run's trained encoder (features only, no graph) and its "
                        "nearest categories are printed")
    q.add_argument("--text", action="append", metavar="TEXT",
                   help="an item run (pipelines/items.py): place this text (repeatable); "
                        "prints the top-k categories with distances and paths")
    q.add_argument("--text-file", type=Path, metavar="FILE",
                   help="an item run: place every non-blank line of FILE")
    p.add_argument("--seed", type=int, default=None,
                   help="item run: the seed's model (default: the first saved)")
    p.add_argument("-k", type=int, default=10, help="number of neighbours (default: 10)")
    p.add_argument("--no-faiss", action="store_true",
                   help="search with torch only (default: faiss when installed)")
    p.add_argument("--tsv", action="store_true",
                   help="print tab-separated rank, name, distance, level with a header line")
    return p


def read_query_features(path: Path):
    """(labels, (Q, F) float array) from .npy or CSV 'label,f1,...'."""
    import numpy as np
    from hgraph.errors import HGraphInputError
    if not path.exists():
        raise HGraphInputError("features file not found", file=str(path))
    if path.suffix == ".npy":
        x = np.load(path)
        x = x[None] if x.ndim == 1 else x
        labels = [f"query{i}" for i in range(len(x))]
    else:
        labels, rows = [], []
        for ln, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(",")
            try:
                rows.append([float(v) for v in parts[1:]])
            except ValueError:
                raise HGraphInputError("expected 'label,f1,...,fF' with numbers", file=str(path),
                                       line=ln) from None
            labels.append(parts[0])
        if not rows or len({len(r) for r in rows}) != 1:
            raise HGraphInputError("no rows, or rows of different lengths", file=str(path))
        x = np.asarray(rows)
    if not np.all(np.isfinite(x)):
        raise HGraphInputError("non-finite feature values", file=str(path))
    return labels, x


def _query_features(args, emb) -> int:
    import torch
    from hgraph.errors import HGraphInputError
    from hgraph.results import load_encoder
    from hgraph.retrieval import nearest_to_vector
    enc, cfg = load_encoder(args.run)
    if not enc.inductive:
        raise HGraphInputError(f"encoder {cfg.model.encoder!r} of this run does not embed from "
                               "features", file=str(args.run))
    labels, x = read_query_features(args.features)
    w = next(enc.parameters())
    xt = torch.as_tensor(x, dtype=w.dtype)
    # a new node arrives without edges (the honest inductive setting): a graph
    # encoder forgets the training graph's degrees and sees only the empty graph
    enc.set_graph(None)
    with torch.no_grad():
        z = enc.embed_new(xt, torch.empty(2, 0, dtype=torch.long), torch.arange(len(xt)))
    results = nearest_to_vector(z.detach(), emb, args.k, use_faiss=False if args.no_faiss else None)
    for label, rows in zip(labels, results):
        print(f"# {label}")
        for r, (name, dist, level) in enumerate(rows, 1):
            print(f"{r:3d}  {name:40s} {dist:10.4f}  level {level}")
    return 0


def _query_text(args) -> int:
    import torch
    from hgraph import manifolds as M
    from hgraph.errors import HGraphInputError
    from hgraph.tasks.item_data import item_input_from_texts
    from hgraph.tasks.item_export import load_exported
    saved = sorted(args.run.glob("model_seed*.pt"))
    if args.seed is not None:
        saved = [args.run / f"model_seed{args.seed}.pt"]
    if not saved or not saved[0].exists():
        raise HGraphInputError("no model_seed*.pt of an item run here", file=str(args.run),
                               fix="run pipelines/items.py with a trained encoder first")
    tower, d = load_exported(saved[0])
    if args.text_file is not None:
        if not args.text_file.exists():
            raise HGraphInputError("file not found", file=str(args.text_file))
        texts = [t.strip() for t in args.text_file.read_text(encoding="utf-8").splitlines()
                 if t.strip()]
    else:
        texts = list(args.text)
    if not texts:
        raise HGraphInputError("no text to place", file=str(args.text_file or "--text"))
    x = item_input_from_texts(texts, d["config"]["text_encoder"],
                              d["config"].get("item_text_layers", 0), dtype=d["cat_points"].dtype)
    with torch.no_grad():
        dist = M.pairwise_dist(tower.manifold, tower(x), d["cat_points"])
    k = min(args.k, dist.shape[1])
    top = torch.topk(-dist, k, dim=1)
    names, parent, cand = d["names"], d["parent"], d["cand"]

    def path(i: int) -> str:
        chain, seen = [], set()
        while i >= 0 and i not in seen:
            seen.add(i)
            chain.append(names[i])
            i = int(parent[i])
        return " > ".join(reversed(chain))
    for t, vals, idx in zip(texts, -top.values, top.indices):
        print(f"# {t}")
        for r, (v, j) in enumerate(zip(vals.tolist(), idx.tolist()), 1):
            c = int(cand[j])
            print(f"{r:3d}  {d['keys'][c]:<14} {v:8.4f}  {path(c)}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from hgraph.errors import HGraphInputError
    from hgraph.export import load_embeddings
    from hgraph.retrieval import nearest
    if args.k < 1:
        print("error: -k must be at least 1", file=sys.stderr)
        return 2
    try:
        if args.text is not None or args.text_file is not None:
            return _query_text(args)
        emb = load_embeddings(args.run)
        if args.features is not None:
            return _query_features(args, emb)
        i = emb.id_of(args.node)
        rows = nearest(emb, i, args.k, use_faiss=False if args.no_faiss else None)
    except HGraphInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.tsv:
        print("rank\tname\tdistance\tlevel")
        for r, (name, d, lv) in enumerate(rows, 1):
            print(f"{r}\t{name}\t{d:.6g}\t{lv}")
        return 0
    print(f"{len(rows)} nearest to {emb.names[i]!s} (id {i}, level {int(emb.levels[i])}) "
          f"in {args.run} [{emb.kind}, c={emb.curvature:g}, dim {emb.intrinsic_dim}]")
    w = max([len("name")] + [len(n) for n, _, _ in rows])
    print(f"{'rank':>4}  {'name':<{w}}  {'distance':>10}  {'level':>5}")
    for r, (name, d, lv) in enumerate(rows, 1):
        print(f"{r:>4}  {name:<{w}}  {d:>10.4f}  {lv:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
