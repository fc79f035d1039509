"""Training epoch time and peak memory of the shallow, hgcn and ramen encoders
on generated trees of growing size, and the fitted growth exponent.

    .venv/bin/python benchmarks/scaling.py --sizes 10k,80k,300k,1M

The set-up is the library's, with each encoder's defaults (the ``--encoder
X`` presets of hgraph/config.py: shallow on closure pairs, batch 1024, 50
negatives, float64; ramen on child->parent edges, batch 512, 50 negatives,
its ancestor + sibling regulariser switched on from the first step) and two
HGCN set-ups on child->parent edges: ``hgcn`` mini-batched (batch 512, a
torch-geometric NeighborLoader subgraph with fanouts [10, 10] around each
step's nodes) and ``hgcn-full`` (the preset: full-batch message passing,
one step over all training edges per epoch).  The negatives per positive
are each set-up's (column ``neg``).  Built in order: the tree from
``generate_tree`` (``root_children = round(N / 837.5)``), features from
``hierarchical_features`` (dim 32), the leak-free splits, negative sampler
and validation negatives of :func:`hgraph.pipeline.prepare`, the encoder,
the embedder of :func:`hgraph.pipeline.make_embedders`, then
:func:`hgraph.train.train` for one epoch (no validation, no checkpoints).

When a full epoch would take longer than ``--budget-s``, only the first K
steps of the epoch's shuffled pairs are trained (K fits the budget, judged
from a calibration run of ``--calib-steps`` steps) and the epoch time is
extrapolated as ``epoch steps / K × measured seconds``: the table says which
(``steps`` = measured / per epoch, ``~`` before an extrapolated time).  The
calibration run comes first and also serves as warm-up; the timed run
reuses the same process, data and model.

Peak memory is the worker process's peak RSS over its whole life (tree,
closure, features, splits, sampler, model, optimiser, loader, training
steps), i.e. what the real set-up needs; ``setup GiB`` is the RSS once
everything is built, before training; both include the ~0.4 GiB of the
imported libraries (the memory exponent is fitted to the peak minus that
baseline, measured after the imports).  Each (size, encoder) runs in a fresh
subprocess.  The exponent is the least-squares slope of log(epoch s) against
log(nodes) over the sizes given.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from _common import (_rss_kib, fit_exponent, load_line, measure, parse_size, peak_rss_mib,  # noqa: E402
                     root_children_for, run_worker, sync_for, write_json)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
GiB = 1024.0
#: --encoders names -> (library encoder, train settings, sampling settings over its preset)
VARIANTS = {
    # the loop's shallow table on the ball (the preset before the fused hyperboloid trainer,
    # whose speed benchmarks/shallow_race.py measures)
    "shallow": ("shallow", {"lr": 0.1, "batch_size": 256}, {}),
    "ramen": ("ramen", {}, {}),
    # mini-batch: NeighborLoader subgraphs around each step's nodes
    "hgcn": ("hgcn", {"batch_size": 512}, {"full_batch": False, "fanouts": [10, 10]}),
    # the hgcn preset: full-batch message passing, one step over all edges per epoch
    "hgcn-full": ("hgcn", {}, {}),
}

#: model settings over the preset
MODEL_OVER = {"shallow": {"manifold": "poincare"}}


def build(size: int, encoder: str, device_name: str, seed: int):
    """Everything a training run builds before its first step."""
    sys.path.insert(0, ROOT)
    import numpy as np
    import torch
    from hgraph import manifolds as M
    from hgraph.config import from_dict
    from hgraph.data.generate import generate_tree, hierarchical_features
    from hgraph.nn import EncoderSpec, build_encoder
    from hgraph.pipeline import make_embedders, make_regularizer, prepare, resolve_device
    from hgraph.train import TrainData

    rc = root_children_for(size)
    name, train_over, sampling_over = VARIANTS[encoder]
    cfg = from_dict({"data": {"gen_root_children": rc, "gen_seed": seed},
                     "model": {"encoder": name, **MODEL_OVER.get(encoder, {})},
                     "train": {"epochs": 1, "burnin": 0, "checkpoint_every": 0, **train_over},
                     "sampling": sampling_over, "reg": {"reg_warmup": 0},
                     "device": device_name, "progress": False, "seeds": [seed]})
    device = resolve_device(cfg.device)
    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg.dtype]
    tax = generate_tree(root_children=rc, seed=seed)
    tax.features = hierarchical_features(tax, dim=cfg.data.feature_dim,
                                         noise=cfg.data.feature_noise, seed=seed)
    prep = prepare(cfg, tax, device, dtype)
    torch.manual_seed(seed)
    manifold = M.make_manifold(cfg.model.manifold, cfg.model.curvature, cfg.model.learn_curvature)
    spec = EncoderSpec(cfg=cfg.model, manifold=manifold, num_nodes=tax.num_nodes,
                       in_dim=None if prep.x is None else int(prep.x.shape[1]))
    model = build_encoder(spec).to(device=device, dtype=dtype)
    embedder, embed_all = make_embedders(model, prep, cfg, device)
    reg = make_regularizer(cfg, prep, seed)      # the ramen preset's lambda; none elsewhere

    def data(positives):
        return TrainData(num_nodes=tax.num_nodes, positives=positives, sampler=prep.sampler,
                         embedder=embedder, embed_all=embed_all, regularizer=reg,
                         reg_lambda=cfg.reg.reg_lambda, reg_warmup=cfg.reg.reg_warmup)
    order = np.random.default_rng(seed).permutation(len(prep.positives))
    return cfg, device, tax, prep, model, data, order


def worker(size: int, encoder: str, a) -> dict:
    sys.path.insert(0, ROOT)
    import torch
    import hgraph.pipeline  # noqa: F401  (imports first: the baseline RSS holds the libraries)
    import hgraph.losses  # noqa: F401
    import torch_geometric.loader  # noqa: F401
    from hgraph.train import train
    if a.threads:
        torch.set_num_threads(a.threads)
    base_gib = _rss_kib("VmRSS") / 1024.0 / GiB
    t0 = time.perf_counter()
    cfg, device, tax, prep, model, data, order = build(size, encoder, a.device, a.seed)
    setup_s = time.perf_counter() - t0
    setup_gib = _rss_kib("VmRSS") / 1024.0 / GiB
    bs = cfg.train.batch_size
    P = len(prep.positives)
    full = math.ceil(P / bs)
    sync = sync_for(device)

    def run_steps(k):
        pos = prep.positives[order[:min(P, k * bs)]]
        return train(model, data(pos), cfg.train, device=device, seed=a.seed, progress=False)

    cal = min(full, a.calib_steps)
    _, t_cal, _, _ = measure(lambda: run_steps(cal), sync)
    per_step = t_cal / cal
    k = full if per_step * full <= a.budget_s else max(cal, min(full, int(a.budget_s / per_step)))
    if a.max_steps:
        k = min(k, a.max_steps)
    res, t_run, cpu_run, train_mib = measure(lambda: run_steps(k), sync)
    epoch_s = t_run * full / k
    return {"size": size, "encoder": encoder, "nodes": tax.num_nodes, "positives": P,
            "batch_size": bs, "negatives": cfg.train.negatives, "steps_per_epoch": full, "steps_measured": k,
            "extrapolated": k < full, "measured_s": t_run, "cpu_s": cpu_run,
            "epoch_s": epoch_s, "ms_per_step": 1000 * t_run / k, "setup_s": setup_s,
            "setup_gib": setup_gib, "train_peak_mib": train_mib,
            "peak_gib": peak_rss_mib() / GiB, "base_gib": base_gib, "bad_steps": res.bad_steps,
            "threads": torch.get_num_threads(), "device": str(device),
            "cuda_peak_gib": (torch.cuda.max_memory_allocated() / 2 ** 30
                              if device.type == "cuda" else None),
            "load_avg_1min": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    ap.add_argument("--sizes", default="10k,80k,300k,1M",
                    help="comma-separated node counts, k/M suffixes allowed")
    ap.add_argument("--encoders", default="shallow,ramen,hgcn,hgcn-full",
                    help=f"comma-separated, from {', '.join(VARIANTS)}")
    ap.add_argument("--budget-s", type=float, default=60.0,
                    help="longest timed run per (size, encoder); longer epochs are extrapolated")
    ap.add_argument("--calib-steps", type=int, default=5, help="steps of the calibration run")
    ap.add_argument("--max-steps", type=int, default=0, help="cap on timed steps (0 = none)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (0 = torch's default: one per core).  Default 1: on a "
                         "shared machine a second intra-op thread waits on descheduled peers "
                         "(a shallow step at 80k nodes took 106 ms on 1 thread and 880 ms on 2 "
                         "at load 11 on 2 cores)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 2 calibration steps, at most 3 timed steps, all in this process")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--_worker", nargs=2, metavar=("SIZE", "ENCODER"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.calib_steps, args.max_steps = 2, (args.max_steps or 3)
    if args._worker:
        print("RESULT " + json.dumps(worker(int(args._worker[0]), args._worker[1], args)))
        return 0

    sizes = [parse_size(s) for s in args.sizes.split(",")]
    encoders = args.encoders.split(",")
    head = (f"{'nodes':>9} {'encoder':>9} {'pairs':>9} {'batch':>6} {'neg':>3} {'steps':>9} {'epoch s':>9} "
            f"{'ms/step':>8} {'peak GiB':>8} {'setup GiB':>9} {'setup s':>7}")
    print(head)
    print("-" * len(head))
    rows = []
    for size in sizes:
        for enc in encoders:
            cmd = [sys.executable, os.path.abspath(__file__), "--_worker", str(size), enc,
                   "--budget-s", str(args.budget_s), "--calib-steps", str(args.calib_steps),
                   "--max-steps", str(args.max_steps), "--threads", str(args.threads),
                   "--device", args.device, "--seed", str(args.seed)]
            try:   # --quick: in this process (a smoke test; peaks then mix)
                r = worker(size, enc, args) if args.quick else run_worker(cmd)
            except RuntimeError as e:
                print(e)
                return 1
            rows.append(r)
            steps = f"{r['steps_measured']}/{r['steps_per_epoch']}"
            ep = ("~" if r["extrapolated"] else "") + f"{r['epoch_s']:.1f}"
            batch = "all" if r["batch_size"] >= r["positives"] else str(r["batch_size"])
            print(f"{r['nodes']:>9,} {enc:>9} {r['positives']:>9,} {batch:>6} "
                  f"{r['negatives']:>3} {steps:>9} {ep:>9} {r['ms_per_step']:>8.1f} {r['peak_gib']:>8.2f} "
                  f"{r['setup_gib']:>9.2f} {r['setup_s']:>7.1f}", flush=True)
    print()
    print("growth exponent (epoch s ~ nodes^k, least squares over the sizes above):")
    for enc in encoders:
        rs = [r for r in rows if r["encoder"] == enc]
        k = fit_exponent([r["nodes"] for r in rs], [r["epoch_s"] for r in rs])
        kp = fit_exponent([r["nodes"] for r in rs],
                          [max(r["peak_gib"] - r["base_gib"], 1e-6) for r in rs])
        print(f"  {enc:>9}: time k = {k:.2f}, peak memory above the libraries' "
              f"{rs[0]['base_gib']:.2f} GiB: k = {kp:.2f}")
    big = max(rows, key=lambda r: r["nodes"])["nodes"]
    for enc in encoders:
        r = [r for r in rows if r["encoder"] == enc and r["nodes"] == big][0]
        print(f"  {enc} at {big:,} nodes: peak RSS {r['peak_gib']:.2f} GiB "
              f"({'within' if r['peak_gib'] <= 24 else 'over'} 24 GiB)")
    print(f"steps: timed / per epoch ('~' epoch s: extrapolated from the timed steps); "
          f"threads: {rows[0]['threads']}; device {rows[0]['device']}; {load_line()} at the end")
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
