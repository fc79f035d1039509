"""Sala et al.'s combinatorial construction: how good it is untrained, and how
much training it saves as the shallow table's initialisation.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/construct.py quality --json q.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/construct.py init --epochs 300 --json i.json

``quality``: for each dataset (``--datasets``: the pipeline's default generated
tree, WordNet mammals, WordNet nouns) and dimension (``--dims``, default 2 5 10)
builds the embedding (:func:`hgraph.manifolds.construct.construct`, float64,
the default ``tau``: the largest that keeps every node inside the float64
boundary clamp) and ranks it two ways with the project's evaluator
(:func:`hgraph.eval.ranking.reconstruction`; exact, or on ``--sample``
random sources):

* **closure**: row u = u's proper ancestors (``Taxonomy.closure``), ranked
  among non-ancestors: the reconstruction MAP/MR of every shallow run and of
  Nickel & Kiela's tables;
* **edges**: row u = u's direct neighbours (parents and children, every edge
  of the DAG, not only the spanning tree's), ranked among all other nodes:
  what Sala et al.'s MAP (0.989 on WordNet in 2 dims) measures;
* **tree** (``--rankings tree``): the same over the spanning tree's edges only
  (on a DAG a second parent is not placed near its child).

With ``--free`` also *without* the clamp, when ``min_tau`` (where no sibling
comes nearer than the tree neighbours) exceeds the default: ``tau`` =
``min_tau`` or the largest that keeps every node within 25 of the origin
(``FREE_RADIUS``, about the farthest float64 ranks reliably), whichever is
smaller; what the construction gives once the boundary clamp is passed
(points straight from :func:`~hgraph.manifolds.construct.place`).

The construction is symmetric, so some distances tie exactly (in 5-d a
sibling at 90 degrees and the grandparent at 90 degrees from a node, seen
from its parent); the evaluator counts a tie in favour of the positive, and
moving the points by 1e-9 (``--perturb``), or the 4e-8 by which geoopt's
ball moves its curvature when cast to float64, breaks them.

``init``: WordNet mammals (``--dataset``), dim ``--dim`` 5, the shallow table
trained on the full closure by the library's loop (:func:`hgraph.train.train`)
from the uniform init and from the construction, the same optimiser settings
(Riemannian SGD, lr ``--lr`` per pair at ``--batch`` 64, 50 negatives,
burn-in ``--burnin`` epochs at lr / ``--burnin-lr-divisor``); exact closure
MAP/MR every ``--eval-every`` epochs against training seconds (evaluation
time excluded).  ``--inits`` names the runs: ``uniform``, ``construct``
(the shallow encoder's default: farthest node at ``INIT_RADIUS`` = 0.6 of the
clamp's distance), ``construct:T`` (tau = T); a name ending in 0 (``uniform0``,
``construct0``, ``construct0:T``) runs without burn-in.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from _common import cpu_seconds, write_json  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
#: ``--free``: farthest distance from the origin allowed without the clamp (float64 keeps
#: ``1 - |x| ~ 2 exp(-25) = 2.8e-11`` to ~5 digits, enough for the ranking keys)
FREE_RADIUS = 25.0
DATASETS = {"tree": "curvlearn-synthetic", "mammals": "wordnet-mammals",
            "nouns": "wordnet-nouns"}


def _machine(torch):
    return {"cpus": os.cpu_count(), "platform": platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}


def _load(name):
    from hgraph.config import DataConfig
    from hgraph.data.datasets import load_dataset
    return load_dataset(DataConfig(dataset=DATASETS[name]), progress=False)


def _neighbours(tax):
    import numpy as np
    import scipy.sparse as sp
    e, n = tax.edges, tax.num_nodes
    a = sp.csr_matrix((np.ones(len(e), dtype=bool), (e[:, 0], e[:, 1])), shape=(n, n))
    return (a + a.T).tocsr()


def _tree_neighbours(tax):
    """Symmetric adjacency of the spanning tree the construction embeds."""
    import numpy as np
    import scipy.sparse as sp
    from hgraph.manifolds.construct import spanning_tree
    parent = spanning_tree(tax.edges, tax.num_nodes)
    kids = np.flatnonzero(parent >= 0)
    n = tax.num_nodes
    a = sp.csr_matrix((np.ones(len(kids), dtype=bool), (kids, parent[kids])), shape=(n, n))
    return (a + a.T).tocsr()


def quality(a) -> dict:
    import torch
    from hgraph import manifolds as M
    from hgraph.eval.ranking import reconstruction
    from hgraph.manifolds.construct import construct, fit_tau, place, spanning_tree

    ball = M.make_manifold("poincare", 1.0)
    rows = []
    print(f"{'dataset':>8} {'N':>6} {'dim':>3} {'tau':>6} {'radius':>6} {'clamp':>5} "
          f"{'closure MAP':>11} {'MR':>8} {'edges MAP':>9} {'MR':>7} {'tree MAP':>8} {'MR':>7} "
          f"{'build s':>7} "
          f"{'eval s':>6}  note", flush=True)
    for name in a.datasets:
        tax = _load(name)
        nb = _neighbours(tax)
        for dim in a.dims:
            variants = [("clamp", None)]
            if a.free:
                variants.append(("free", None))
            for variant, _ in variants:
                t0 = time.perf_counter()
                if variant == "clamp":
                    x, st = construct(tax.edges, tax.num_nodes, dim)
                else:
                    _, st0 = construct(tax.edges, tax.num_nodes, dim)
                    if st0["min_tau"] <= st0["tau"]:     # the clamp is not what limits it
                        continue
                    parent = spanning_tree(tax.edges, tax.num_nodes)
                    tau, x = fit_tau(parent, dim, FREE_RADIUS, st0["depth"])
                    if st0["min_tau"] < tau:
                        tau = st0["min_tau"]
                        x, _ = place(parent, dim, tau)
                    st = {**st0, "tau": tau, "at_clamp": int((x.norm(dim=-1) >
                                                              1 - M.BOUNDARY_EPS[torch.float64]).sum()),
                          # not M.dist0: geoopt's artanh stops at 1 - 1e-7 (16.8)
                          "radius": float(2 * torch.atanh(x.norm(dim=-1).max()))}
                build = time.perf_counter() - t0
                if a.perturb:       # a step of ~perturb in hyperbolic distance, any radius
                    g = torch.Generator().manual_seed(0)
                    conf = (1 - (x * x).sum(-1, keepdim=True)) / 2
                    x = x + a.perturb * conf * torch.randn(x.shape, generator=g, dtype=x.dtype)
                t0 = time.perf_counter()
                nan = {"map": float("nan"), "mean_rank": float("nan")}
                smp = a.sample or None
                rc = reconstruction(ball, x, tax.closure, sample=smp) \
                    if "closure" in a.rankings else nan
                re = reconstruction(ball, x, nb, sample=smp) if "edges" in a.rankings else nan
                rt = reconstruction(ball, x, _tree_neighbours(tax), sample=smp) \
                    if "tree" in a.rankings else nan
                ev = time.perf_counter() - t0
                note = "beyond the clamp" if variant == "free" else ""
                row = {"dataset": name, "num_nodes": tax.num_nodes, "dim": dim,
                       "variant": variant, **st, "closure_map": rc["map"],
                       "closure_mr": rc["mean_rank"], "edges_map": re["map"],
                       "edges_mr": re["mean_rank"], "tree_map": rt["map"],
                       "tree_mr": rt["mean_rank"], "build_s": build, "eval_s": ev}
                rows.append(row)
                print(f"{name:>8} {tax.num_nodes:>6} {dim:>3} {st['tau']:>6.3f} "
                      f"{st['radius']:>6.2f} {st['at_clamp']:>5} {rc['map']:>11.4f} "
                      f"{rc['mean_rank']:>8.2f} {re['map']:>9.4f} {re['mean_rank']:>7.2f} "
                      f"{rt['map']:>8.4f} {rt['mean_rank']:>7.2f} "
                      f"{build:>7.1f} {ev:>6.1f}  {note} (depth {st['depth']}, "
                      f"{st['max_children']} children max, min angle "
                      f"{st['min_angle']:.3g}, min_tau {st['min_tau']:.3g}, "
                      f"~{st['bits']:.0f} bits at min_tau)", flush=True)
    return {"rows": rows}


def init_runs(a) -> dict:
    import numpy as np
    import torch
    from hgraph import manifolds as M
    from hgraph.config import TrainConfig
    from hgraph.data.pairs import NegativeSampler
    from hgraph.data.taxonomy import csr_pairs
    from hgraph.eval.ranking import reconstruction
    from hgraph.manifolds.construct import clamp_radius, construct
    from hgraph.nn import ShallowEncoder
    from hgraph.nn.shallow import INIT_RADIUS
    from hgraph.train import DirectEmbedder, TrainData, train

    tax = _load(a.dataset)
    pairs = csr_pairs(tax.closure)
    ball = M.make_manifold("poincare", 1.0)
    out = {}
    for spec in a.inits:
        kind, _, t = spec.partition(":")
        torch.manual_seed(a.seed)
        init_pts, st = None, {}
        if kind.startswith("construct"):       # default tau: as the shallow encoder's init
            init_pts, st = construct(tax.edges, tax.num_nodes, a.dim, tau=float(t or 0),
                                     radius=INIT_RADIUS * clamp_radius())
        model = ShallowEncoder(ball, tax.num_nodes, a.dim, init_points=init_pts).to(torch.float64)
        sampler = NegativeSampler(tax.closure, tax.num_nodes)
        data = TrainData(num_nodes=tax.num_nodes, positives=pairs, sampler=sampler,
                         embedder=DirectEmbedder(None), embed_all=lambda m: m.weight.detach())
        burnin = 0 if kind.endswith("0") else a.burnin
        cfg = TrainConfig(loss="ranking", epochs=a.epochs, lr=a.lr, lr_unit="pair",
                          optimizer="rsgd", batch_size=a.batch, negatives=a.negatives,
                          burnin=burnin, burnin_lr_divisor=a.burnin_lr_divisor,
                          checkpoint_every=0, eval_every=10 ** 9)
        r0 = reconstruction(ball, model.weight.detach(), tax.closure)
        curve = [{"epoch": 0, "train_s": 0.0, "train_cpu_s": 0.0, "map": r0["map"],
                  "mean_rank": r0["mean_rank"]}]
        ev_total = [0.0, 0.0]          # evaluation wall and CPU seconds, excluded from training
        cpu0 = cpu_seconds()
        print(f"[{spec}] {st.get('tau', float('nan')):.3f} tau, burn-in {burnin}: "
              f"epoch 0 MAP {r0['map']:.4f} MR {r0['mean_rank']:.2f}", flush=True)

        def on_epoch(epoch, rec, spec=spec, curve=curve, ev_total=ev_total, model=model,
                     cpu0=cpu0):
            e = epoch + 1
            if e % a.eval_every and e != a.epochs:
                return
            train_s = rec["time_s"] - ev_total[0]      # evaluations so far excluded
            train_cpu = cpu_seconds() - cpu0 - ev_total[1]
            te, tc = time.perf_counter(), cpu_seconds()
            r = reconstruction(ball, model.weight.detach(), tax.closure)
            ev_total[0] += time.perf_counter() - te
            ev_total[1] += cpu_seconds() - tc
            row = {"epoch": e, "train_s": train_s, "train_cpu_s": train_cpu,
                   "loss": rec["loss"], "map": r["map"], "mean_rank": r["mean_rank"]}
            curve.append(row)
            print(f"[{spec}] epoch {e:>4} train {train_s:>7.1f} s wall {train_cpu:>7.1f} s CPU "
                  f"loss {rec['loss']:.4f} MAP {r['map']:.4f} MR {r['mean_rank']:.2f}", flush=True)

        train(model, data, cfg, device=torch.device("cpu"), seed=a.seed, progress=False,
              on_epoch=on_epoch)
        out[spec] = {"curve": curve, "construct": st, "burnin": burnin}
    # epochs and training CPU seconds to reach each MAP level (CPU seconds of the one
    # thread: less sensitive than wall time to other jobs on the machine)
    levels = [0.8, 0.9, 0.95, 0.97]
    print(f"{'init':>14} " + " ".join(f"{'MAP>=' + str(v):>16}" for v in levels) + "   final")
    for spec, res in out.items():
        c = res["curve"]
        hits = [next((r for r in c if r["map"] >= v), None) for v in levels]
        res["reached"] = {str(v): None if h is None else {k: h[k] for k in
                                                          ("epoch", "train_s", "train_cpu_s")}
                          for v, h in zip(levels, hits)}
        cells = ["-" if h is None else "%d ep %.0f s" % (h["epoch"], h["train_cpu_s"])
                 for h in hits]
        print(f"{spec:>14} " + " ".join(f"{x:>16}" for x in cells) + f"   MAP {c[-1]['map']:.4f} MR {c[-1]['mean_rank']:.2f} after "
            f"{c[-1]['epoch']} epochs, {c[-1]['train_cpu_s']:.1f} CPU s, {c[-1]['train_s']:.1f} wall s")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality", help="MAP/MR of the construction, closure and direct edges")
    q.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    q.add_argument("--dims", nargs="+", type=int, default=[2, 5, 10])
    q.add_argument("--free", action="store_true",
                   help="also without the clamp: tau = min_tau, or the largest that keeps "
                        "every node within 25 of the origin if smaller (when above the default)")
    q.add_argument("--sample", type=int, default=0,
                   help="rank this many random source nodes (seed 0) instead of all (0 = all: "
                        "exact); a dataset with fewer sources is ranked exactly")
    q.add_argument("--rankings", nargs="+", default=["closure", "edges"],
                   choices=["closure", "edges", "tree"],
                   help="tree: direct neighbours in the spanning tree the construction embeds "
                        "(differs from edges on a DAG)")
    q.add_argument("--perturb", type=float, default=0.0,
                   help="move each point by ~EPS in hyperbolic distance (EPS (1 - |x|^2) / 2 "
                        "N(0, I), seed 0) before ranking: breaks the construction's exact "
                        "distance ties at random instead of in favour of the positives (the "
                        "evaluator's '<' convention)")
    i = sub.add_parser("init", help="shallow training from the uniform vs the constructed init")
    i.add_argument("--dataset", default="mammals", choices=list(DATASETS))
    i.add_argument("--dim", type=int, default=5)
    i.add_argument("--inits", nargs="+", default=["uniform", "construct", "construct0"])
    i.add_argument("--epochs", type=int, default=300)
    i.add_argument("--eval-every", type=int, default=10)
    i.add_argument("--lr", type=float, default=0.1, help="Riemannian SGD rate per pair")
    i.add_argument("--batch", type=int, default=64)
    i.add_argument("--negatives", type=int, default=50)
    i.add_argument("--burnin", type=int, default=20)
    i.add_argument("--burnin-lr-divisor", type=float, default=100.0)
    i.add_argument("--seed", type=int, default=0)
    for p in (q, i):
        p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
        p.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    sys.path.insert(0, ROOT)
    import torch
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    res = quality(a) if a.cmd == "quality" else init_runs(a)
    write_json(a.json, {"args": vars(a), "machine": _machine(torch), "wall_s":
                        time.perf_counter() - t0, **({"runs": res} if a.cmd == "init" else res)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
