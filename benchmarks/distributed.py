"""Data-parallel training (torchrun, gloo): time per step and epoch, communication
share and peak memory per process, for 1 and 2 processes.

    .venv/bin/python benchmarks/distributed.py --size 1M --encoders shallow,ramen --steps 40
    .venv/bin/python benchmarks/distributed.py --size 80k --encoders hgcn-full --steps 3

Each (encoder, world size) runs as ``torchrun --standalone --nproc_per_node W
benchmarks/distributed.py --_worker ...``: every rank builds the set-up of
``benchmarks/scaling.py`` (generated tree of ``--size`` nodes, the encoder's
preset: shallow on closure pairs, batch 1024, 50 negatives, float64; ramen on
child->parent edges, batch 512, its regulariser on; ``hgcn-full`` one
full-batch step over all training edges), then :func:`hgraph.train.train`
runs the same ``--steps`` global batches at every world size (the first
``--warmup`` of them once untimed before), each rank on its slice (:mod:`hgraph.distributed`).
``epoch s`` is ms/step × steps per epoch (extrapolated when fewer steps ran).

``comm %``: the share of the timed training wall time a rank spent in
collectives — hgraph's own (loss agreement, the row-sparse gradient
all-gather of the shallow table, signals) and DDP's all-reduce of the dense
gradients (a timing comm hook; the time from launching the all-reduce to its
completion, so waiting for the slower rank counts as communication), mean
over ranks.  ``peak GiB``: the largest peak RSS of any rank over its life
(set-up included).  Threads: ``--threads`` torch threads per process (default
1), so W = 2 uses twice the cores of W = 1; on a 2-core machine shared with
other work a speed-up is not expected, and the load average is printed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

from _common import load_line, parse_size, peak_rss_mib, write_json

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")


def _instrument(comm: dict) -> None:
    """Time every collective hgraph.distributed calls, and DDP's gradient all-reduce."""
    import torch.distributed as dist
    from hgraph import distributed as D
    all_reduce = dist.all_reduce            # the hook's own, untimed by the wrapper below

    def timed(fn):
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                comm["s"] += time.perf_counter() - t0
        return call
    for name in ("all_reduce", "all_gather", "broadcast_object_list", "all_gather_object"):
        setattr(D.dist, name, timed(getattr(dist, name)))

    def hook(state, bucket):
        t0 = time.perf_counter()
        buf = bucket.buffer().div_(dist.get_world_size())
        fut = all_reduce(buf, async_op=True).get_future()

        def done(f):
            comm["s"] += time.perf_counter() - t0
            return f.value()[0]
        return fut.then(done)

    wrap = D.Context.wrap

    def wrap_timed(self, model, device):
        net = wrap(self, model, device)
        if net is not model:
            net.register_comm_hook(None, hook)
        return net
    D.Context.wrap = wrap_timed


def worker(size: int, encoder: str, a) -> dict:
    sys.path.insert(0, ROOT)
    import torch
    from hgraph import distributed as D
    from hgraph.train import train
    from scaling import build

    torch.set_num_threads(a.threads)
    comm = {"s": 0.0}
    with D.session() as ctx:
        _instrument(comm)
        cfg, device, tax, prep, model, data, order = build(size, encoder, "cpu", a.seed)
        bs = min(cfg.train.batch_size, len(prep.positives))
        full = math.ceil(len(prep.positives) / bs)
        steps = min(a.steps, full)

        def run(first, k):
            return train(model, data(prep.positives[order[first * bs:(first + k) * bs]]),
                         cfg.train, device=device, seed=a.seed, progress=False, dist=ctx)
        if a.warmup:                               # the first batches, untimed
            run(0, min(a.warmup, full))
        ctx.all_gather(0)                          # start together
        comm["s"] = 0.0
        t0 = time.perf_counter()
        run(0, steps)
        wall = time.perf_counter() - t0
        ranks = ctx.all_gather({"wall_s": wall, "comm_s": comm["s"],
                                "peak_gib": peak_rss_mib() / 1024.0})
    return {"encoder": encoder, "nodes": tax.num_nodes, "positives": len(prep.positives),
            "batch_size": bs, "world_size": ctx.world_size, "threads": a.threads,
            "steps": steps, "steps_per_epoch": full,
            "wall_s": max(r["wall_s"] for r in ranks),
            "comm_share": sum(r["comm_s"] / r["wall_s"] for r in ranks) / len(ranks),
            "peak_gib": max(r["peak_gib"] for r in ranks), "ranks": ranks,
            "load_avg_1min": os.getloadavg()[0]}


def launch(size: int, encoder: str, world: int, a) -> dict:
    cmd = [TORCHRUN, "--standalone", "--nproc_per_node", str(world), os.path.abspath(__file__),
           "--_worker", str(size), encoder, "--steps", str(a.steps), "--warmup", str(a.warmup),
           "--threads", str(a.threads), "--seed", str(a.seed)]
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(line[-1][len("RESULT "):])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    ap.add_argument("--size", default="1M", help="nodes of the generated tree (k/M suffixes)")
    ap.add_argument("--encoders", default="shallow,ramen",
                    help="comma-separated, from shallow, ramen, hgcn-full")
    ap.add_argument("--worlds", default="1,2", help="comma-separated process counts")
    ap.add_argument("--steps", type=int, default=40, help="timed global steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--_worker", nargs=2, metavar=("SIZE", "ENCODER"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._worker:
        row = worker(int(a._worker[0]), a._worker[1], a)
        if int(os.environ.get("RANK", 0)) == 0:
            print("RESULT " + json.dumps(row), flush=True)
        return 0
    size = parse_size(a.size)
    head = (f"{'nodes':>9} {'encoder':>9} {'W':>2} {'steps':>9} {'ms/step':>8} {'epoch s':>9} "
            f"{'speed-up':>8} {'comm %':>6} {'peak GiB/proc':>13}")
    print(f"{load_line()} at the start")
    print(head)
    print("-" * len(head))
    rows = []
    for enc in a.encoders.split(","):
        base = None
        for world in [int(w) for w in a.worlds.split(",")]:
            try:
                r = launch(size, enc, world, a)
            except RuntimeError as e:
                print(e)
                return 1
            rows.append(r)
            ms = 1000 * r["wall_s"] / r["steps"]
            r["ms_per_step"] = ms
            r["epoch_s"] = ms * r["steps_per_epoch"] / 1000
            base = base or r["epoch_s"]
            ep = ("~" if r["steps"] < r["steps_per_epoch"] else "") + f"{r['epoch_s']:.1f}"
            print(f"{r['nodes']:>9,} {enc:>9} {world:>2} {r['steps']:>4}/{r['steps_per_epoch']:<4} "
                  f"{ms:>8.1f} {ep:>9} {base / r['epoch_s']:>7.2f}x {100 * r['comm_share']:>5.1f}% "
                  f"{r['peak_gib']:>13.2f}", flush=True)
    print(f"threads per process: {a.threads}; {os.cpu_count()} CPUs; {load_line()} at the end")
    write_json(a.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
