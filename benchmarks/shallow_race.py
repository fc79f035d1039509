"""Time-to-MAP race on the WordNet closure: hgraph's fused hyperboloid trainer
(:mod:`hgraph.train.fused`) against gensim's ``PoincareModel``, with one
evaluator (issue 15, goals 2-4).

    # one curve per tool (each in its own process; run them side by side, one core each)
    .venv/bin/python benchmarks/shallow_race.py ours --dataset nouns --time-limit 3600 \\
        --json results/shallow_fast/nouns_ours.json
    .venv/bin/python benchmarks/shallow_race.py gensim --dataset nouns --time-limit 900 \\
        --json results/shallow_fast/nouns_gensim.json
    # the table, the speed-up to gensim's best MAP, and a plot
    .venv/bin/python benchmarks/shallow_race.py report results/shallow_fast/nouns_gensim.json \\
        results/shallow_fast/nouns_ours.json --plot results/shallow_fast/nouns_race.png

Identical for both: the positive pairs (every (node, proper ancestor) pair of
``Taxonomy.closure``), the dimension, the negatives per positive pair,
float64, one thread per process (``--threads``), and the evaluation
(:func:`hgraph.eval.ranking.reconstruction`, closure MAP / MR, our MR
convention: gensim's own ``ReconstructionEvaluation`` MR is ours + 1).  Along
the way each curve ranks ``--sample`` random sources (seeded, the same
sources for both tools); the last point of each curve is ranked exactly.
The clock counts training only: evaluation time is measured apart.

Each tool's own: gensim trains with its defaults (Riemannian SGD on the ball,
``alpha`` 0.1, batch 10, burn-in 10 epochs at ``alpha / 10``, negatives drawn
by node frequency), one ``train(epochs=1)`` call at a time, stopped at the
first epoch that ends past ``--time-limit``; ours with the
:class:`hgraph.train.fused_config.FitConfig` given by the flags (defaults: the
library's).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time

from _common import load_line, write_json  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def _machine() -> dict:
    import torch
    return {"cpus": os.cpu_count(), "platform": platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "load": load_line()}


def _evaluate(manifold_name: str, tax, z, sample: int, seed: int) -> dict:
    from hgraph.eval.ranking import reconstruction
    from hgraph.manifolds import make_manifold
    t0 = time.perf_counter()
    r = reconstruction(make_manifold(manifold_name, 1.0), z, tax.closure,
                       sample=sample or None, seed=seed)
    return {"map": float(r["map"]), "mean_rank": float(r["mean_rank"]),
            "sampled": bool(r["sampled"]), "eval_s": time.perf_counter() - t0}


def _by_lineage(manifold_name: str, tax, z, sample: int = 0, seed: int = 0) -> dict:
    """Exact MAP / MR over the sources with a node of several parents among themselves and
    their ancestors (WordNet nouns: 21,524 of 82,115, a third of the closure pairs), and
    over the rest: a start built along one spanning tree puts the other lineage far away."""
    import numpy as np
    import scipy.sparse as sp
    from hgraph.eval.ranking import reconstruction
    from hgraph.manifolds import make_manifold
    c = sp.csr_matrix(tax.closure)
    n = c.shape[0]
    multi = np.bincount(np.asarray(tax.edges)[:, 0], minlength=n) > 1
    mixed = (np.asarray(c @ multi.astype(np.float64)).ravel() > 0) | multi
    out = {}
    for name, mask in (("several_parents", mixed), ("one_lineage", ~mixed)):
        r = reconstruction(make_manifold(manifold_name, 1.0), z,
                           sp.diags(mask.astype(np.float64)) @ c, sample=sample or None, seed=seed)
        out[name] = {"sources": int(r["num_sources"]), "map": float(r["map"]),
                     "mean_rank": float(r["mean_rank"])}
    return out


def _due(epoch: int, every: int) -> bool:
    """Evaluate at epochs 1, 2, 3, 5, 8, ... and then every ``every`` epochs."""
    return epoch in (1, 2, 3, 5, 8, 12, 16, 20, 25, 30) or epoch % every == 0


def run_ours(a, fit_kwargs: dict) -> dict:
    import torch
    from hgraph.data.wordnet import load_wordnet
    from hgraph.train.fused import FitConfig, fit
    torch.set_num_threads(a.threads)
    tax = load_wordnet(a.dataset)
    cfg = FitConfig(dim=a.dim, negatives=a.negatives, seed=a.seed, time_limit=a.time_limit,
                    **fit_kwargs)
    curve = []

    def on_epoch(epoch, x, rec):
        if _due(epoch, a.eval_every):
            row = {"epoch": epoch, "train_s": rec["train_s"], "loss": rec["loss"],
                   **_evaluate("lorentz", tax, x, a.sample, a.seed)}
            if a.lineage_sample and a.dataset == "nouns":
                row["by_lineage"] = _by_lineage("lorentz", tax, x, a.lineage_sample, a.seed)
            curve.append(row)
            print(f"ours   epoch {epoch:4d}  {rec['train_s'] / 60:6.2f} min  loss {rec['loss']:.4f}"
                  f"  MAP {row['map']:.4f}  MR {row['mean_rank']:9.2f}"
                  + ("".join(f"  {k} {v['map']:.4f} / {v['mean_rank']:.2f}"
                             for k, v in row["by_lineage"].items()) if "by_lineage" in row else ""),
                  flush=True)
            return row["map"]           # drives schedule=plateau
        return None

    x0 = None
    if a.start_from:
        saved = torch.load(a.start_from, weights_only=False)
        if list(saved["names"]) != list(tax.names):
            raise SystemExit(f"{a.start_from}: its rows are not this dataset's nodes")
        x0 = saved["x"]
    res = fit(tax.closure, cfg, edges=tax.edges, on_epoch=on_epoch, x0=x0)
    last = res.history[-1]
    final = {"epoch": last["epoch"], "train_s": res.train_s, "loss": last["loss"],
             **_evaluate("lorentz", tax, res.x, 0, a.seed)}
    print(f"ours   final {final['epoch']} epochs, {res.train_s / 60:.2f} min: exact MAP "
          f"{final['map']:.4f}, MR {final['mean_rank']:.2f}", flush=True)
    if a.dataset == "nouns":
        final["by_lineage"] = _by_lineage("lorentz", tax, res.x)
        print(f"ours   by lineage: {final['by_lineage']}", flush=True)
    if a.save:
        torch.save({"x": res.x, "names": tax.names, "config": dataclasses.asdict(cfg)}, a.save)
    return {"tool": a.label or "ours", "config": dataclasses.asdict(cfg), "curve": curve, "final": final,
            "pairs": int(tax.closure.nnz), "epochs": last["epoch"], "train_s": res.train_s,
            "pairs_per_s": last["epoch"] * tax.closure.nnz / max(res.train_s, 1e-9)}


def run_gensim(a) -> dict:
    import logging
    import numpy as np
    import torch
    from gensim.models.poincare import PoincareModel
    from hgraph.data.taxonomy import csr_pairs
    from hgraph.data.wordnet import load_wordnet
    torch.set_num_threads(a.threads)
    logging.getLogger("gensim").setLevel(logging.WARNING)
    tax = load_wordnet(a.dataset)
    names = tax.names
    rel = [(names[u], names[v]) for u, v in csr_pairs(tax.closure)]
    model = PoincareModel(rel, size=a.dim, negative=a.negatives, seed=a.seed, dtype=np.float64)
    order = None
    curve, train_s, epoch = [], 0.0, 0

    def points():
        nonlocal order
        kv = model.kv
        if order is None:
            order = np.array([kv.get_index(names[i]) for i in range(tax.num_nodes)])
        return torch.as_tensor(np.asarray(kv.vectors)[order], dtype=torch.float64)

    while train_s < a.time_limit:
        t0 = time.perf_counter()
        model.train(epochs=1, batch_size=10, print_every=10 ** 12)
        train_s += time.perf_counter() - t0
        epoch += 1 + (model.burn_in if epoch == 0 else 0)   # the first call runs the burn-in too
        row = {"epoch": epoch, "train_s": train_s, **_evaluate("poincare", tax, points(),
                                                               a.sample, a.seed)}
        curve.append(row)
        print(f"gensim epoch {epoch:4d}  {train_s / 60:6.2f} min  MAP {row['map']:.4f}  "
              f"MR {row['mean_rank']:9.2f}", flush=True)
    final = {"epoch": epoch, "train_s": train_s, **_evaluate("poincare", tax, points(), 0, a.seed)}
    print(f"gensim final {epoch} epochs, {train_s / 60:.2f} min: exact MAP {final['map']:.4f}, "
          f"MR {final['mean_rank']:.2f}", flush=True)
    return {"tool": a.label or "gensim", "config": {"alpha": model.alpha, "burn_in": model.burn_in,
                                         "negative": a.negatives, "size": a.dim, "batch_size": 10,
                                         "regularization_coeff": model.regularization_coeff},
            "curve": curve, "final": final, "pairs": int(tax.closure.nnz), "epochs": epoch,
            "train_s": train_s, "pairs_per_s": epoch * tax.closure.nnz / max(train_s, 1e-9)}


def first_reaching(curve, target: float):
    for row in curve:
        if row["map"] >= target:
            return row
    return None


def report(paths, plot=None) -> str:
    runs = [json.load(open(p)) for p in paths]
    lines = ["| tool | epochs | training min | pairs/s | final exact MAP | MR | per-point ranking |",
             "|---|---|---|---|---|---|---|"]
    for r in runs:
        f = r["final"]
        lines.append(f"| {r['tool']} | {r['epochs']} | {r['train_s'] / 60:.1f} | "
                     f"{r['pairs_per_s']:,.0f} | {f['map']:.4f} | {f['mean_rank']:.2f} | "
                     f"{r['args']['sample'] or 'all'} sources |")
    g = next((r for r in runs if r["args"]["tool"] == "gensim"), None)
    for o in (r for r in runs if r["args"]["tool"] == "ours" and g is not None):
        best = max(g["curve"] + [g["final"]], key=lambda row: row["map"])
        hit = first_reaching(o["curve"] + [o["final"]], best["map"])
        lines.append("")
        if hit is None:
            lines.append(f"{o['tool']} never reached gensim's best MAP {best['map']:.4f}")
        else:
            lines.append(f"gensim's best MAP in its window: {best['map']:.4f} after "
                         f"{best['train_s']:.0f} s; {o['tool']} first at or above it after "
                         f"{hit['train_s']:.1f} s (epoch {hit['epoch']}, MAP {hit['map']:.4f}): "
                         f"**{best['train_s'] / max(hit['train_s'], 1e-9):.1f}x** less training "
                         f"time (first evaluation point past the target; the true crossing is "
                         f"earlier); pairs/s ratio {o['pairs_per_s'] / g['pairs_per_s']:.1f}x")
    text = "\n".join(lines)
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
        for r in runs:
            xs = [row["train_s"] / 60 for row in r["curve"]]
            ax1.plot(xs, [row["map"] for row in r["curve"]], "o-", ms=3, label=r["tool"])
            ax2.plot(xs, [row["mean_rank"] for row in r["curve"]], "o-", ms=3, label=r["tool"])
        for ax, name in ((ax1, "MAP (closure)"), (ax2, "mean rank")):
            ax.set_xlabel("training minutes")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        ax2.set_yscale("log")
        fig.suptitle(f"WordNet {runs[0]['args']['dataset']}, dim {runs[0]['args']['dim']}, "
                     f"{runs[0]['args']['negatives']} negatives, 1 thread each", fontsize=9)
        fig.tight_layout()
        fig.savefig(plot, dpi=120)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tool", choices=["ours", "gensim", "report"])
    ap.add_argument("files", nargs="*", help="report: the JSON files of the curves")
    ap.add_argument("--dataset", default="nouns", choices=["nouns", "mammals"])
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--negatives", type=int, default=50)
    ap.add_argument("--time-limit", type=float, default=900.0, help="seconds of training")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", type=int, default=2000,
                    help="sources ranked at each curve point (0 = all)")
    ap.add_argument("--eval-every", type=int, default=10, help="ours: epochs between points "
                    "after the first ones (1, 2, 3, 5, 8, 12, 16, 20, 25, 30)")
    ap.add_argument("--fit", nargs="*", default=[], metavar="KEY=VALUE",
                    help="ours: FitConfig fields, e.g. lr=0.2 batch_size=1024 workers=2")
    ap.add_argument("--label", default=None, help="the curve's name in the report")
    ap.add_argument("--json", default=None)
    ap.add_argument("--lineage-sample", type=int, default=0,
                    help="nouns: also rank this many sampled sources of each lineage group "
                         "(several parents among self and ancestors, or not) along the curve")
    ap.add_argument("--save", default=None, help="ours: write the final table here (torch.save; "
                    "keep it out of git)")
    ap.add_argument("--start-from", default=None, help="ours: start from a table --save wrote "
                    "(a continuation: its training time is not counted in this curve)")
    ap.add_argument("--plot", default=None)
    a = ap.parse_args(argv)
    sys.path.insert(0, ROOT)
    if a.tool == "report":
        print(report(a.files, a.plot))
        return 0
    from hgraph.train.fused_config import FitConfig
    fields = {f.name: f.type for f in dataclasses.fields(FitConfig)}
    fit_kwargs = {}
    for item in a.fit:
        key, _, value = item.partition("=")
        if key not in fields:
            ap.error(f"unknown FitConfig field {key!r}; one of {', '.join(fields)}")
        kind = fields[key]
        fit_kwargs[key] = (value.lower() in ("1", "true", "yes")) if kind in (bool, "bool") else \
            (int(value) if kind in (int, "int") else
             float(value) if kind in (float, "float") else value)
    t0 = time.perf_counter()
    out = run_ours(a, fit_kwargs) if a.tool == "ours" else run_gensim(a)
    out.update({"args": vars(a), "wall_s": time.perf_counter() - t0, "machine": _machine(),
                "command": "python benchmarks/shallow_race.py " + " ".join(sys.argv[1:])})
    write_json(a.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
