"""Time and peak memory of generate_tree, transitive_closure and
hierarchical_features on CurvLearn-shaped trees of growing size.

    .venv/bin/python benchmarks/closure_speed.py --sizes 80k,300k,1M

Each size runs in a fresh subprocess, so allocations of one size do not
inflate the next.  Peak memory is the process's peak RSS (VmHWM), reset before
each step through /proc/self/clear_refs where Linux allows it, and reported as
the increase over the RSS at the start of the step.  A size ``N`` is reached
by ``root_children = round(N / 837.5)`` (837.5 expected nodes per root child
with the default law), so the actual node count is printed as well.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import _reset_peak, _rss_kib, parse_size, write_json  # noqa: E402

PER_ROOT_CHILD = 837.5    # expected_level_sizes()[1:].sum() / 100


def _measure(fn):
    _reset_peak()
    before = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = _rss_kib("VmHWM")
    return out, dt, max(0, peak - before) / 1024.0


def worker(size: int, seed: int, features: bool) -> dict:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from hgraph.data.generate import generate_tree, hierarchical_features
    from hgraph.data.taxonomy import transitive_closure

    rc = max(1, round(size / PER_ROOT_CHILD))
    tax, t_gen, m_gen = _measure(lambda: generate_tree(root_children=rc, seed=seed))
    clo, t_clo, m_clo = _measure(lambda: transitive_closure(tax.edges, tax.num_nodes))
    row = {"target": size, "root_children": rc, "nodes": tax.num_nodes,
           "gen_s": t_gen, "gen_mb": m_gen, "closure_s": t_clo, "closure_mb": m_clo,
           "pairs": int(clo.nnz)}
    if features:
        _, t_f, m_f = _measure(lambda: hierarchical_features(tax, seed=seed))
        row.update(feat_s=t_f, feat_mb=m_f)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="80k,300k,1M",
                    help="comma-separated node counts, k/M suffixes allowed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-features", action="store_true",
                    help="skip timing hierarchical_features")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    ap.add_argument("--_worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker is not None:
        print(json.dumps(worker(args._worker, args.seed, not args.no_features)))
        return 0

    rows = []
    for text in args.sizes.split(","):
        size = parse_size(text)
        cmd = [sys.executable, os.path.abspath(__file__), "--_worker", str(size),
               "--seed", str(args.seed)] + (["--no-features"] if args.no_features else [])
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            return res.returncode
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))

    feat = not args.no_features
    head = (f"{'nodes':>10} {'gen s':>7} {'gen MB':>7} {'closure s':>9} {'closure MB':>10} "
            f"{'pairs':>11}" + (f" {'feat s':>7} {'feat MB':>7}" if feat else ""))
    print(head)
    print("-" * len(head))
    for r in rows:
        line = (f"{r['nodes']:>10,} {r['gen_s']:>7.2f} {r['gen_mb']:>7.0f} "
                f"{r['closure_s']:>9.2f} {r['closure_mb']:>10.0f} {r['pairs']:>11,}")
        if feat:
            line += f" {r['feat_s']:>7.2f} {r['feat_mb']:>7.0f}"
        print(line)
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
