"""Shallow Poincaré training, ours against gensim's PoincareModel, on the same
closure pairs: positive pairs per second, wall time, reconstruction MR/MAP.

    .venv/bin/python benchmarks/gensim_compare.py                    # WordNet mammals
    .venv/bin/python benchmarks/gensim_compare.py --datasets mammals,nouns --epochs 10

What is identical: the positive pairs (every (node, proper ancestor) pair of
``Taxonomy.closure``, the same list handed to both), the dimension, the
number of negatives per positive, the number of epochs (burn-in included: a
``--burnin``-epoch burn-in at a tenth of the learning rate, then the rest),
float64 parameters, the thread count (``--threads``, default 1: gensim's
training is single-threaded; the worker sets ``torch.set_num_threads`` and
the OMP/MKL/OpenBLAS thread variables for both) and the evaluation: MR and
MAP of both embeddings computed by :func:`hgraph.eval.ranking.reconstruction`
on the full closure (gensim's vectors are put into our node order first; our
evaluator's MR is gensim's ``ReconstructionEvaluation`` MR minus 1, see
hgraph/eval/ranking.py).

What is each tool's own: the optimiser and learning rate (gensim: Riemannian
SGD at ``alpha`` 0.1, its default; ours: the library defaults for
``--encoder shallow``: Riemannian Adam at lr 0.05 updating only the rows a
step touched, :mod:`hgraph.optim`'s closed form of geoopt's
``SparseRiemannianAdam``), the
negative sampler (gensim: proportional to each node's count in the
relations, excluding u's ancestors; ours: uniform, excluding u's ancestors),
gensim's norm regulariser (its default 1.0), and the batch size: gensim runs
at its default 10; ours at our default (1024) *and* at 10, because the
per-step overhead of a PyTorch step makes small batches slow and large
batches need more epochs to reach the same MAP.

Pairs per second = epochs × pairs / training seconds (model construction and
evaluation not included); "median epoch" is the same from the median epoch
time (gensim is trained one ``train(epochs=1)`` call at a time, its first call
holding the burn-in epochs too).  ``× gensim`` divides by gensim's pairs/s on
the same dataset in the same invocation.  Each (dataset, tool, batch) trains
in a fresh subprocess, one after the other, so the peak RSS (over the whole
worker: data, model, training, evaluation) of one does not mix with the next.
Datasets: ``mammals`` and ``nouns`` (WordNet 3.0, see hgraph.data.wordnet),
or ``tree:SIZE`` (a generated tree, e.g. ``tree:1k``, for quick checks).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from _common import (load_line, parse_size, peak_rss_mib, root_children_for, run_worker,  # noqa: E402
                     write_json)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def load(dataset: str):
    sys.path.insert(0, ROOT)
    if dataset.startswith("tree:"):
        from hgraph.data.generate import generate_tree
        return generate_tree(root_children=root_children_for(parse_size(dataset[5:])), seed=0)
    from hgraph.data.wordnet import load_wordnet
    return load_wordnet(dataset)


def pipeline_dataset(dataset: str) -> dict:
    if dataset.startswith("tree:"):
        return {"dataset": "curvlearn-synthetic",
                "gen_root_children": root_children_for(parse_size(dataset[5:]))}
    return {"dataset": f"wordnet-{dataset}"}


def evaluate(tax, z) -> dict:
    from hgraph.eval.ranking import reconstruction
    from hgraph.manifolds import make_manifold
    ball = make_manifold("poincare", 1.0)
    t0 = time.perf_counter()
    r = reconstruction(ball, z, tax.closure, chunk=1024)
    return {"mean_rank": r["mean_rank"], "map": r["map"], "eval_s": time.perf_counter() - t0}


def worker_gensim(tax, pairs, a) -> dict:
    import logging
    import numpy as np
    import torch
    from gensim.models.poincare import PoincareModel
    logging.getLogger("gensim").setLevel(logging.WARNING)
    names = tax.names
    rel = [(names[u], names[v]) for u, v in pairs]
    t0 = time.perf_counter()
    model = PoincareModel(rel, size=a.dim, negative=a.negatives, alpha=a.gensim_lr,
                          burn_in=a.burnin, burn_in_alpha=a.gensim_lr / 10.0, seed=a.seed,
                          dtype=np.float64)
    setup_s = time.perf_counter() - t0
    epoch_s = []
    done = 0
    while done < a.epochs:
        t0 = time.perf_counter()
        model.train(epochs=1, batch_size=a.batch, print_every=10 ** 12)
        dt = time.perf_counter() - t0
        k = 1 + (a.burnin if done == 0 else 0)      # the first call runs the burn-in too
        epoch_s += [dt / k] * k
        done += k
    kv = model.kv
    order = np.array([kv.get_index(names[i]) for i in range(tax.num_nodes)])
    z = torch.as_tensor(np.asarray(kv.vectors)[order], dtype=torch.float64)
    return {"setup_s": setup_s, "epoch_s": epoch_s, "train_s": sum(epoch_s),
            "epochs": done, **evaluate(tax, z)}


def worker_ours(tax, pairs, a) -> dict:
    import tempfile
    import torch
    from hgraph.config import from_dict
    from hgraph.pipeline import run
    from hgraph.results import load_encoder
    with tempfile.TemporaryDirectory() as out:
        cfg = from_dict({
            "data": {**pipeline_dataset(a.dataset), "val_frac": 0.0, "test_frac": 0.0},
            "model": {"encoder": "shallow", "dim": a.dim},
            "train": {"epochs": a.epochs, "negatives": a.negatives, "batch_size": a.batch,
                      "burnin": a.burnin, "checkpoint_every": 0,
                      **({"lr": a.lr} if a.lr else {})},
            "eval": {"recon_sample": 10},       # ours is evaluated below, exact, like gensim's
            "device": a.device, "out": out, "progress": False, "plots": False,
            "save_embeddings": False, "seeds": [a.seed]})
        t0 = time.perf_counter()
        res = run(cfg)
        run_s = time.perf_counter() - t0
        seed_m = res.per_seed[0]
        if int(res.dataset["train_positives"]) != len(pairs):
            raise RuntimeError(f"pipeline trained on {res.dataset['train_positives']} pairs, "
                               f"the closure has {len(pairs)}")
        enc, _ = load_encoder(res.run_dir)
        z = enc.weight.detach().to(torch.float64).cpu()
        hist = [h["time_s"] for h in res.histories[0]]
    epoch_s = [b - a_ for a_, b in zip([0.0] + hist[:-1], hist)]
    return {"setup_s": run_s - seed_m["train_time_s"], "epoch_s": epoch_s,
            "train_s": seed_m["train_time_s"], "epochs": len(epoch_s), **evaluate(tax, z)}


def worker(a) -> dict:
    sys.path.insert(0, ROOT)
    import torch
    torch.set_num_threads(a.threads)
    from hgraph.data.taxonomy import csr_pairs
    tax = load(a.dataset)
    pairs = csr_pairs(tax.closure)
    fn = worker_gensim if a.tool == "gensim" else worker_ours
    out = fn(tax, pairs, a)
    out.update(dataset=a.dataset, tool=a.tool, batch=a.batch, nodes=tax.num_nodes,
               pairs=len(pairs), threads=torch.get_num_threads(), peak_rss_mib=peak_rss_mib(),
               load_avg_1min=os.getloadavg()[0])
    out["pairs_per_s"] = out["epochs"] * len(pairs) / out["train_s"]
    out["pairs_per_s_median_epoch"] = len(pairs) / statistics.median(out["epoch_s"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    ap.add_argument("--datasets", default="mammals",
                    help="comma-separated: mammals, nouns, tree:SIZE (default: mammals)")
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--negatives", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=50, help="epochs, burn-in included")
    ap.add_argument("--burnin", type=int, default=2, help="burn-in epochs at lr / 10 (both tools)")
    ap.add_argument("--batch-sizes", default="1024,10",
                    help="our batch sizes (gensim always runs at --gensim-batch)")
    ap.add_argument("--gensim-batch", type=int, default=10, help="gensim's batch size (its default)")
    ap.add_argument("--gensim-lr", type=float, default=0.1, help="gensim's alpha (its default)")
    ap.add_argument("--lr", type=float, default=0.0,
                    help="our learning rate (default: the shallow preset's, 0.05)")
    ap.add_argument("--threads", type=int, default=1, help="threads for both tools")
    ap.add_argument("--device", default="cpu", help="our device (gensim runs on the CPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 2 epochs, 1 burn-in epoch, all in this process")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--_worker", nargs=3, metavar=("DATASET", "TOOL", "BATCH"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.burnin = 2, 1
    if args.burnin >= args.epochs:
        ap.error("--burnin must be smaller than --epochs")
    if args._worker:
        args.dataset, args.tool, args.batch = args._worker[0], args._worker[1], int(args._worker[2])
        print("RESULT " + json.dumps(worker(args)))
        return 0

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    common = ["--dim", str(args.dim), "--negatives", str(args.negatives), "--epochs",
              str(args.epochs), "--burnin", str(args.burnin), "--gensim-lr", str(args.gensim_lr),
              "--threads", str(args.threads), "--device", args.device, "--seed", str(args.seed),
              "--lr", str(args.lr)]
    head = (f"{'dataset':>10} {'tool':>7} {'batch':>5} {'pairs':>8} {'epochs':>6} {'train s':>8} "
            f"{'pairs/s':>8} {'med ep':>8} {'x gensim':>8} {'MR':>7} {'MAP':>6} "
            f"{'peak MiB':>8} {'setup s':>7}")
    print(f"dim {args.dim}, {args.negatives} negatives, {args.epochs} epochs "
          f"({args.burnin} burn-in), {args.threads} thread(s), ours on {args.device}, "
          f"our lr {args.lr or 'the preset (0.05)'}")
    print(head)
    print("-" * len(head))
    rows = []
    for ds in args.datasets.split(","):
        runs = [("gensim", args.gensim_batch)] + [("ours", int(b)) for b in
                                                  args.batch_sizes.split(",")]
        base = None
        for tool, batch in runs:
            cmd = [sys.executable, os.path.abspath(__file__), "--_worker", ds, tool, str(batch),
                   *common]
            try:   # --quick: in this process (a smoke test; peaks then mix)
                r = (worker(argparse.Namespace(**vars(args), dataset=ds, tool=tool, batch=batch))
                     if args.quick else run_worker(cmd, env=env))
            except RuntimeError as e:
                print(e)
                return 1
            if tool == "gensim":
                base = r["pairs_per_s"]
            r["x_gensim"] = r["pairs_per_s"] / base if base else float("nan")
            rows.append(r)
            print(f"{ds:>10} {tool:>7} {batch:>5} {r['pairs']:>8} {r['epochs']:>6} "
                  f"{r['train_s']:>8.1f} {r['pairs_per_s']:>8.0f} "
                  f"{r['pairs_per_s_median_epoch']:>8.0f} {r['x_gensim']:>8.2f} "
                  f"{r['mean_rank']:>7.2f} {r['map']:>6.3f} {r['peak_rss_mib']:>8.0f} "
                  f"{r['setup_s']:>7.1f}", flush=True)
    for r in rows:
        if r["tool"] == "ours":
            g = [x for x in rows if x["dataset"] == r["dataset"] and x["tool"] == "gensim"][0]
            print(f"{r['dataset']}, ours at batch {r['batch']}: {r['x_gensim']:.2f}x gensim's "
                  f"pairs/s, MAP {r['map']:.3f} vs {g['map']:.3f} "
                  f"({'equal or better' if r['map'] >= g['map'] else 'lower'}), "
                  f"MR {r['mean_rank']:.2f} vs {g['mean_rank']:.2f}")
    print("pairs/s: epochs x pairs / training s; med ep: pairs / median epoch s; "
          "MR, MAP: hgraph.eval.ranking.reconstruction on the full closure (both tools); "
          "peak MiB: worker's peak RSS; setup s: model construction (gensim) or "
          "data + splits + evaluation around training (ours)")
    print(load_line() + " at the end")
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
