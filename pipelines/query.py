#!/usr/bin/env python
"""Query a saved run: place texts into an item run's taxonomy (hgraph.Placer), or list
the categories nearest to a node of a node run by hyperbolic distance.

Examples:
    python pipelines/query.py --run results/items/headline/ramen --text "nasal speech" -k 3
    python pipelines/query.py --run my_placer --text-file phrases.txt --json --min-confidence 0.3
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
                   help="an item run or a saved placer (hgraph.Placer.save): place this text "
                        "(repeatable); prints the top-k categories: key, confidence, score "
                        "(minus the distance), path of names from the root")
    q.add_argument("--text-file", type=Path, metavar="FILE",
                   help="an item run: place every non-blank line of FILE")
    p.add_argument("--seed", type=int, default=None,
                   help="item run: the seed's model (default: the first saved)")
    p.add_argument("-k", type=int, default=10, help="number of neighbours (default: 10)")
    p.add_argument("--min-confidence", type=float, default=0.0, metavar="P",
                   help="--text: 'none fits' when the top category's confidence (calibrated on "
                        "validation) is below P (default: 0, always place)")
    p.add_argument("--json", action="store_true",
                   help="--text: print JSON (per text: placements with key, name, path, score, "
                        "confidence; none_fits)")
    p.add_argument("--no-faiss", action="store_true",
                   help="search with torch only (default: faiss when installed)")
    p.add_argument("--tsv", action="store_true",
                   help="print tab-separated rows with a header line (--node: rank, name, "
                        "distance, level; --text: text, rank, key, name, score, confidence, path)")
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
    """Place texts with the run's (or saved placer's) model: a thin wrapper on hgraph.Placer."""
    import json
    from hgraph.errors import HGraphInputError
    from hgraph.placer import Placer
    placer = Placer.load(args.run, seed=args.seed)
    if args.text_file is not None:
        if not args.text_file.exists():
            raise HGraphInputError("file not found", file=str(args.text_file))
        texts = [t.strip() for t in args.text_file.read_text(encoding="utf-8").splitlines()
                 if t.strip()]
        if not texts:
            raise HGraphInputError("no text to place (every line is blank)",
                                   file=str(args.text_file))
    else:
        texts = list(args.text)
    hits = placer.place(texts, k=args.k, min_confidence=args.min_confidence)
    if args.json:
        print(json.dumps([{"text": t, "none_fits": not h,
                           "placements": [{"key": p.key, "name": p.name, "path": p.path,
                                           "score": p.score, "confidence": p.confidence}
                                          for p in h]} for t, h in zip(texts, hits)],
                         indent=1, ensure_ascii=False))
        return 0
    if args.tsv:
        print("text\trank\tkey\tname\tscore\tconfidence\tpath")
        for t, h in zip(texts, hits):
            if not h:
                print(f"{t}\t\t\tnone fits\t\t\t")
            for r, p in enumerate(h, 1):
                print(f"{t}\t{r}\t{p.key}\t{p.name}\t{p.score:.6g}\t{p.confidence:.4f}\t"
                      f"{' > '.join(p.path)}")
        return 0
    for t, h in zip(texts, hits):
        print(f"# {t}")
        if not h:
            print(f"  none fits (top confidence below {args.min_confidence:g})")
        for r, p in enumerate(h, 1):
            print(f"{r:3d}  {p.key:<14} {p.confidence:5.1%}  {p.score:8.4f}  "
                  f"{' > '.join(p.path)}")
    return 0


def _is_item_folder(run: Path) -> bool:
    """A saved placer, an item run (config.json of task items), or an item run folder from
    before the one harness (no config.json; its settings in metrics.json)."""
    import json
    if (run / "placer.pt").exists():
        return True
    try:
        if (run / "config.json").exists():
            return json.loads((run / "config.json").read_text()).get("task") == "items"
        if (run / "metrics.json").exists():
            return "config" in json.loads((run / "metrics.json").read_text()).get("run", {})
    except (OSError, ValueError):
        return False
    return False


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
        if _is_item_folder(args.run):
            raise HGraphInputError("an item run (categories are placed from text): --node and "
                                   "--features need a node run", file=str(args.run),
                                   fix='query.py --run DIR --text "some text"')
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
