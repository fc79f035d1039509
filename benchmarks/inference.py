"""Inference speed: nodes per second to embed every node, and to embed new
nodes, for each encoder, with the RAMEN/HGCN ratio measured in the same run.

    .venv/bin/python benchmarks/inference.py                 # default tree, 10k new nodes
    .venv/bin/python benchmarks/inference.py --device cuda

The tree is ``generate_tree`` with its defaults (~84k nodes; ``--size``
changes it), features from ``hierarchical_features`` (dim 32); the encoders
are built by the library with each encoder's defaults (dim 10, hidden 64, 2
layers).  Their weights are the initial ones: the cost of a forward pass
does not depend on the values of the weights.

``--new`` leaves, chosen at random, play the nodes that arrive after
training: the "existing graph" is the tree without them (the HGCN's degrees
are set from it with ``set_graph``, as training does).  What each encoder
must do:

* all nodes — shallow: look the rows up (the pipeline's ``embed_all``,
  chunks of 65,536 ids); ramen: features -> MLP -> expmap0 for every node,
  same chunks; hgcn: ``HGCNEncoder.inference``, layer-wise over the whole
  graph (chunks of 4,096 targets), the evaluation path.
* new nodes — shallow: impossible without training (a new node has no
  row); ramen: the MLP on the new nodes' features, nothing else; hgcn, two
  ways: ``2-hop`` = add the new nodes' edges to the graph, recompute degrees
  (``set_graph``), then :func:`hgraph.pipeline.embed_nodes` (the L-hop
  subgraph around the new nodes by ``k_hop_subgraph``, the encoder on it;
  exact: the result equals full-graph inference, the max difference is
  printed); ``re-embed`` = run ``inference`` over the whole enlarged graph
  and keep the new rows.  ``ramen new`` is ``embed_nodes`` too.

Every measurement runs ``--repeats`` times (after one untimed warm-up) in
one process, the encoders interleaved within each repeat so that load on a
shared machine hits them alike; the table gives the median, min and max
seconds.  Peak memory comes from a separate fresh process per task (set-up,
then the task once, cold): the peak RSS over the RSS before the task, and on
CUDA the peak allocated GPU memory.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from _common import (load_line, measure, parse_size, root_children_for, run_worker,  # noqa: E402
                     sync_for, write_json)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def setup(size, n_new, device_name, seed):
    sys.path.insert(0, ROOT)
    import numpy as np
    import torch
    from hgraph import manifolds as M
    from hgraph.config import from_dict
    from hgraph.data.generate import generate_tree, hierarchical_features
    from hgraph.data.graph import to_pyg
    from hgraph.nn import EncoderSpec, build_encoder
    from hgraph.pipeline import resolve_device

    device = resolve_device(device_name)
    tax = (generate_tree(seed=seed) if size is None
           else generate_tree(root_children=root_children_for(size), seed=seed))
    feats = hierarchical_features(tax, dim=32, seed=seed)
    n = tax.num_nodes
    rng = np.random.default_rng(seed)
    has_child = np.zeros(n, dtype=bool)
    has_child[tax.edges[:, 1]] = True
    leaves = np.flatnonzero(~has_child)
    new = np.sort(rng.choice(leaves, size=min(n_new, len(leaves)), replace=False))
    is_new = np.zeros(n, dtype=bool)
    is_new[new] = True
    old_edges = tax.edges[~is_new[tax.edges[:, 0]]]
    new_edges = tax.edges[is_new[tax.edges[:, 0]]]
    ei_old = to_pyg(tax, old_edges).edge_index.to(device)
    ei_full = to_pyg(tax).edge_index.to(device)
    new_dir = torch.as_tensor(np.concatenate([new_edges.T, new_edges[:, ::-1].T], axis=1).copy(),
                              device=device)
    x = torch.as_tensor(feats, device=device)
    models = {}
    for enc in ("shallow", "ramen", "hgcn"):
        cfg = from_dict({"model": {"encoder": enc}, "device": device_name})
        torch.manual_seed(seed)
        man = M.make_manifold(cfg.model.manifold, cfg.model.curvature, cfg.model.learn_curvature)
        dtype = {"float32": torch.float32, "float64": torch.float64}[cfg.dtype]
        m = build_encoder(EncoderSpec(cfg=cfg.model, manifold=man, num_nodes=n,
                                      in_dim=x.shape[1])).to(device=device, dtype=dtype).eval()
        m.set_graph(ei_old)
        models[enc] = m
    return device, tax, x, models, torch.as_tensor(new, device=device), ei_old, ei_full, new_dir


def tasks(device, tax, x, models, new, ei_old, ei_full, new_dir):
    """name -> (nodes embedded, zero-argument callable)."""
    import torch
    n = tax.num_nodes
    step = 65536
    ids_all = torch.arange(n, device=device)
    sh, ra, hg = models["shallow"], models["ramen"], models["hgcn"]

    def direct_all(m, feats):
        out = []
        for i in range(0, n, step):
            ids = ids_all[i:i + step]
            out.append(m(x[ids] if feats else None, None, ids))
        return torch.cat(out)

    def hgcn_new_2hop():
        ei = torch.cat([ei_old, new_dir], dim=1)
        hg.set_graph(ei)                       # the new edges change their parents' degrees
        return hg.embed_new(x, ei, new)        # L-hop subgraph, then the layers on it

    def hgcn_new_reembed():
        ei = torch.cat([ei_old, new_dir], dim=1)
        return hg.inference(x, ei, n, batch_size=4096)[new]

    return {
        "shallow all": (n, lambda: direct_all(sh, False)),
        "ramen all": (n, lambda: direct_all(ra, True)),
        "hgcn all": (n, lambda: hg.inference(x, ei_full, n, batch_size=4096)),
        "ramen new": (len(new), lambda: ra.embed_new(x, None, new)),
        "hgcn new 2-hop": (len(new), hgcn_new_2hop),
        "hgcn new re-embed": (len(new), hgcn_new_reembed),
    }


def worker(a) -> dict:
    sys.path.insert(0, ROOT)
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    size = None if a.size == "default" else parse_size(a.size)
    state = setup(size, a.new, a.device, a.seed)
    device = state[0]
    sync = sync_for(device)
    jobs = tasks(*state)
    if a._mem:                                 # one task, once, in a fresh process: its peak
        with torch.no_grad():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            _, dt, _, mib = measure(jobs[a._mem][1], sync)
        return {"task": a._mem, "peak_mib": mib, "seconds": dt,
                "cuda_peak_mib": (torch.cuda.max_memory_allocated(device) / 2 ** 20
                                  if device.type == "cuda" else None)}
    with torch.no_grad():
        exact = (jobs["hgcn new 2-hop"][1]() - jobs["hgcn new re-embed"][1]()).abs().max().item()
        for _, fn in jobs.values():            # warm-up
            fn()
        times = {k: [] for k in jobs}
        for _ in range(a.repeats):
            for name, (_, fn) in jobs.items():
                times[name].append(measure(fn, sync)[1])
    rows = []
    for name, (count, _) in jobs.items():
        med = statistics.median(times[name])
        rows.append({"task": name, "nodes": count, "median_s": med, "min_s": min(times[name]),
                     "max_s": max(times[name]), "nodes_per_s": count / med,
                     "repeats": a.repeats})
    return {"rows": rows, "num_nodes": state[1].num_nodes, "new": int(len(state[4])),
            "max_abs_diff_2hop_vs_full": exact, "threads": torch.get_num_threads(),
            "device": str(device) + (f" ({torch.cuda.get_device_name(device)})"
                                     if device.type == "cuda" else ""),
            "load_avg_1min": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    ap.add_argument("--size", default="default",
                    help="tree size (k/M suffixes) or 'default' (generate_tree's defaults, ~84k)")
    ap.add_argument("--new", type=int, default=10_000, help="new nodes (held-out leaves)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (0 = torch's default: one per core).  Default 1: on a "
                         "shared machine a second intra-op thread waits on descheduled peers "
                         "(a shallow step at 80k nodes took 106 ms on 1 thread and 880 ms on 2 "
                         "at load 11 on 2 cores)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 repeat, in this process, no memory figures")
    ap.add_argument("--json", help="also write the result to this file")
    ap.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_mem", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats = 1
    if args._worker:
        print("RESULT " + json.dumps(worker(args)))
        return 0

    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", "--size", args.size,
           "--new", str(args.new), "--repeats", str(args.repeats), "--threads", str(args.threads),
           "--device", args.device, "--seed", str(args.seed)]
    try:
        r = worker(args) if args.quick else run_worker(cmd)
        for row in r["rows"]:                  # peaks: one fresh process per task
            m = ({"peak_mib": float("nan"), "cuda_peak_mib": float("nan")} if args.quick
                 else run_worker(cmd + ["--_mem", row["task"]]))
            row["peak_mib"], row["cuda_peak_mib"] = m["peak_mib"], m["cuda_peak_mib"]
    except RuntimeError as e:
        print(e)
        return 1
    print(f"{r['num_nodes']:,} nodes, {r['new']:,} new; device {r['device']}, "
          f"{r['threads']} thread(s); median of {args.repeats} repeats")
    head = (f"{'task':>18} {'nodes':>7} {'median s':>9} {'min s':>8} {'max s':>8} "
            f"{'nodes/s':>11} {'peak MiB':>8}" + (f" {'GPU MiB':>8}" if "cuda" in r["device"] else ""))
    print(head)
    print("-" * len(head))
    by = {row["task"]: row for row in r["rows"]}
    for row in r["rows"]:
        line = (f"{row['task']:>18} {row['nodes']:>7,} {row['median_s']:>9.4f} {row['min_s']:>8.4f} "
                f"{row['max_s']:>8.4f} {row['nodes_per_s']:>11,.0f} {row['peak_mib']:>8.1f}")
        if "cuda" in r["device"]:
            line += f" {row['cuda_peak_mib']:>8.1f}"
        print(line)
    print("shallow new: n/a (a shallow table has no row for a node unseen in training)")
    print(f"RAMEN/HGCN nodes/s, all nodes: "
          f"{by['ramen all']['nodes_per_s'] / by['hgcn all']['nodes_per_s']:.1f}x; "
          f"new nodes: {by['ramen new']['nodes_per_s'] / by['hgcn new 2-hop']['nodes_per_s']:.1f}x "
          f"(vs 2-hop), "
          f"{by['ramen new']['nodes_per_s'] / by['hgcn new re-embed']['nodes_per_s']:.1f}x "
          f"(vs re-embed)")
    print(f"hgcn new 2-hop vs re-embed: max |difference| {r['max_abs_diff_2hop_vs_full']:.2e}; "
          f"{load_line()} at the end")
    write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
