"""Time and peak memory of the reconstruction metric (mean rank, MAP), exact
and sampled, on generated tree closures and on WordNet nouns.

    .venv/bin/python benchmarks/eval_speed.py --sizes 10k,80k,nouns --sample 1000

The tree: depth 4, level sizes in CurvLearn's proportions (100 / 1,091 /
11,074 / 68,593 per 80,858 nodes), each node's parent uniform among the nodes
of the previous level, so a leaf has 4 ancestors (root included) and the
closure has ~3.8 positives per node.  ``--depth 12`` gives a deeper tree with
~10 ancestors per node (a WordNet-nouns-sized closure: ~850k pairs at 82k
nodes).  ``nouns`` in ``--sizes`` is the WordNet 3.0 noun closure itself
(82,115 nodes, 743,241 pairs; a DAG: its "tree" points follow each noun's
first hypernym).  Points (``--points``):

* ``random``: i.i.d. Gaussian tangent vectors mapped onto the Poincaré ball;
  every positive lies deep in its row, the worst case for the counting
  (mean rank ~ N/2);
* ``tree``: children placed near their parent and farther out (parent's
  tangent vector plus noise), a stand-in for a trained embedding (small mean
  rank), the case the sparse counting path is for.

Each (size, points) pair runs in a fresh subprocess, so allocations of one do
not inflate the next.  Peak memory is the process's peak RSS (VmHWM, reset
through /proc/self/clear_refs where Linux allows it) minus the RSS at the
start of the step; CPU seconds are the process's user + system time (all
threads), a check on wall times taken on a shared machine.  The sampled row
reports |MR_sampled - MR_exact| / MR_exact and |MAP_sampled - MAP_exact|.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from _common import _reset_peak, _rss_kib, parse_size, write_json  # noqa: E402

LEVEL_SHARE = (1, 100, 1_091, 11_074, 68_593)       # CurvLearn's tree, root first


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _measure(fn):
    """(result, wall seconds, CPU seconds of all threads, peak MiB over the start)."""
    _reset_peak()
    before = _rss_kib("VmRSS")
    c0 = _cpu_seconds()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    cpu = _cpu_seconds() - c0
    peak = _rss_kib("VmHWM")
    return out, dt, cpu, max(0, peak - before) / 1024.0


def random_tree(n: int, seed: int, depth: int = 4):
    """(parent (N,), level (N,)) of a random tree; node 0 is the root.

    Depth 4 uses CurvLearn's level proportions; another depth uses level
    sizes growing by 1.6 per level (depth 12 gives ~10 ancestors per node,
    WordNet-noun-like closure sizes: ~850k pairs at 82k nodes).
    """
    import numpy as np
    rng = np.random.default_rng(seed)
    share = (np.array(LEVEL_SHARE[1:], dtype=float) if depth == 4
             else 1.6 ** np.arange(1, depth + 1))
    sizes = np.maximum(1, np.round(share / share.sum() * (n - 1)).astype(int))
    sizes[-1] = max(1, n - 1 - sizes[:-1].sum())
    parent = [np.array([-1])]
    level = [np.array([0])]
    start, prev = 1, np.array([0])
    for lv, s in enumerate(sizes, start=1):
        parent.append(rng.choice(prev, size=s))
        level.append(np.full(s, lv))
        prev = np.arange(start, start + s)
        start += s
    return np.concatenate(parent), np.concatenate(level)


NOUNS = -1      # --sizes entry "nouns"


def wordnet_nouns():
    """(parent, level, closure) of WordNet nouns; parent = a noun's first
    hypernym (-1 for the root), level = its depth along those parents."""
    import numpy as np
    from hgraph.data.wordnet import load_wordnet
    tax = load_wordnet("nouns")
    n = tax.num_nodes
    parent = np.full(n, -1, dtype=np.int64)
    child, par = tax.edges[:, 0], tax.edges[:, 1]
    first = np.unique(child, return_index=True)[1]
    parent[child[first]] = par[first]
    level = np.full(n, -1, dtype=np.int64)
    level[parent < 0] = 0
    while (level < 0).any():            # parents first: a node's level once its parent's is known
        todo = np.flatnonzero(level < 0)
        ready = todo[level[parent[todo]] >= 0]
        level[ready] = level[parent[ready]] + 1
    return parent, level, tax.closure


def make_points(kind: str, parent, level, dim: int, seed: int):
    import numpy as np
    import torch
    from hgraph.manifolds import expmap0, make_manifold
    rng = np.random.default_rng(seed + 1)
    n = len(parent)
    ball = make_manifold("poincare", 1.0)
    if kind == "random":
        u = rng.standard_normal((n, dim))
    elif kind == "tree":
        u = np.zeros((n, dim))
        depth = int(level.max())
        grow = 1.6 ** (4.0 / depth)                    # the deepest level ends at the same radius
        for lv in range(1, depth + 1):                 # parents come first
            idx = np.flatnonzero(level == lv)
            step = rng.standard_normal((len(idx), dim))
            u[idx] = grow * u[parent[idx]] + step / np.linalg.norm(step, axis=1, keepdims=True)
    else:
        raise ValueError(kind)
    x = expmap0(ball, torch.tensor(u, dtype=torch.float32) / 2.0)
    return ball, x


def worker(size: int, points: str, sample: int, dim: int, seed: int, chunk: int,
           depth: int) -> dict:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import numpy as np
    import torch
    from hgraph.data.taxonomy import transitive_closure
    from hgraph.eval import reconstruction

    if size == NOUNS:
        parent, level, closure = wordnet_nouns()
        n = len(parent)
    else:
        parent, level = random_tree(size, seed, depth)
        n = len(parent)
        edges = np.stack([np.arange(1, n), parent[1:]], axis=1)
        closure = transitive_closure(edges, n)
    ball, x = make_points(points, parent, level, dim, seed)
    out = {"size": n, "points": points, "dim": dim, "depth": depth, "positives": int(closure.nnz),
           "threads": torch.get_num_threads(), "chunk": chunk}
    exact, t_exact, c_exact, m_exact = _measure(
        lambda: reconstruction(ball, x, closure, chunk=chunk))
    smp, t_smp, c_smp, m_smp = _measure(lambda: reconstruction(ball, x, closure, sample=sample,
                                                               seed=seed, chunk=chunk))
    out["load_avg_1min"] = os.getloadavg()[0]
    out["exact"] = {**exact, "seconds": t_exact, "cpu_seconds": c_exact, "peak_mib": m_exact}
    out["sampled"] = {**smp, "seconds": t_smp, "cpu_seconds": c_smp, "peak_mib": m_smp,
                      "mr_rel_err": abs(smp["mean_rank"] - exact["mean_rank"]) / exact["mean_rank"],
                      "map_abs_err": abs(smp["map"] - exact["map"])}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10k,80k,nouns",
                    help="comma-separated node counts (k/m suffixes) or 'nouns' (WordNet nouns)")
    ap.add_argument("--sample", type=int, default=1000, help="sources in the sampled run")
    ap.add_argument("--points", default="random,tree", help="comma-separated: random, tree")
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--depth", type=int, default=4, help="tree depth (4: CurvLearn's shape)")
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--_worker", nargs=2, metavar=("SIZE", "POINTS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        res = worker(int(args._worker[0]), args._worker[1], args.sample, args.dim,
                     args.seed, args.chunk, args.depth)
        print("RESULT " + json.dumps(res))
        return 0

    rows = []
    head = (f"{'nodes':>7} {'points':>6} {'pairs':>8} {'mode':>12} {'seconds':>8} {'CPU s':>7} "
            f"{'peak MiB':>8} {'mean rank':>10} {'MAP':>7} {'MR rel err':>10} {'MAP err':>8}")
    print(head)
    print("-" * len(head))
    for size_text in args.sizes.split(","):
        for points in args.points.split(","):
            size = NOUNS if size_text.strip() == "nouns" else parse_size(size_text)
            cmd = [sys.executable, os.path.abspath(__file__), "--_worker",
                   str(size), points, "--sample", str(args.sample),
                   "--dim", str(args.dim), "--seed", str(args.seed), "--chunk", str(args.chunk),
                   "--depth", str(args.depth)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not line:
                err = proc.stderr.strip()
                print(err.splitlines()[-1] if err else "worker failed")
                return 1
            r = json.loads(line[0][len("RESULT "):])
            rows.append(r)
            for mode in ("exact", "sampled"):
                m = r[mode]
                label = "exact" if mode == "exact" else f"sample {m['sample_size']}"
                err = (f"{m['mr_rel_err']:>10.4f} {m['map_abs_err']:>8.4f}" if mode == "sampled"
                       else f"{'':>10} {'':>8}")
                print(f"{r['size']:>7} {points:>6} {m['num_pairs']:>8} {label:>12} "
                      f"{m['seconds']:>8.2f} {m['cpu_seconds']:>7.2f} {m['peak_mib']:>8.1f} "
                      f"{m['mean_rank']:>10.2f} "
                      f"{m['map']:>7.4f} {err}", flush=True)
    print(f"threads: {rows[0]['threads']}; 1-min load average at the end of the last run: "
          f"{rows[-1]['load_avg_1min']:.1f} on {os.cpu_count()} CPUs (wall time inflates "
          f"when the machine is shared; CPU s is the process's user+sys time)")
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
