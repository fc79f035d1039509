"""Does the shallow preset converge by default?  (issue 15, goals 1 and 2)

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shallow_defaults.py run --case tree \
        --json results/shallow_defaults/tree.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shallow_defaults.py run --case mammals \
        --json results/shallow_defaults/mammals.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shallow_defaults.py curve --case mammals \
        --json results/shallow_defaults/mammals_curve.json
    .venv/bin/python benchmarks/shallow_defaults.py plot results/shallow_defaults/*.json \
        --out results/shallow_defaults/curves.png

``run``: the user's command, as typed (``CASES``: the default generated tree,
or WordNet mammals at dim 5; both on the full closure), run as a subprocess of
``pipelines/run.py`` with only ``--out``/``--name``/``--no-progress`` added.
Recorded: the command's wall time and CPU seconds (the subprocess's user +
system time: how much of the wall the shared cores actually gave it), the run's
training time, epochs, why it
stopped, the load average before and after, the threads (``OMP_NUM_THREADS``
and the run's own torch threads), and the run's metrics.  Then the saved
embeddings are ranked again *exactly* (every source; the pipeline's default
ranks a sample of 2,000 sources) with the project's evaluator, and
Spearman(distance to the origin, level) is recomputed beside its ceiling: the
Spearman of the level against the level plus a tie-breaking jitter, i.e. the
best any embedding whose norms differ within a level can reach (a level
holding most nodes caps it).

``curve``: the same preset (``parse_config`` of the same flags), trained in
this process by the library's loop with exact closure MAP/MR and Spearman every
``--eval-every`` epochs (and before the first); evaluation time is excluded
from the training seconds.  Same settings as ``run``, not the same bits: the
pipeline orders its training pairs differently.

``plot``: training loss (and MAP where a curve has it) against training seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from _common import cpu_seconds, write_json  # noqa: E402

#: the commands of the targets, as a user types them
CASES = {
    "tree": ["--encoder", "shallow", "--val-frac", "0", "--test-frac", "0"],
    "mammals": ["--dataset", "wordnet-mammals", "--encoder", "shallow", "--dim", "5",
                "--val-frac", "0", "--test-frac", "0"],
}


def _load():
    la = os.getloadavg()
    return {"1min": la[0], "5min": la[1], "15min": la[2], "cpus": os.cpu_count()}


def _exact(cfg, emb_path):
    """Exact closure MAP/MR and Spearman(norm, level) of saved embeddings, plus the
    Spearman ceiling of the level distribution."""
    import numpy as np
    import torch
    from hgraph import manifolds as M
    from hgraph.data.datasets import load_dataset
    from hgraph.eval.hierarchy import norm_level_spearman, spearman
    from hgraph.eval.ranking import reconstruction

    tax = load_dataset(cfg.data, progress=False)
    x = torch.from_numpy(np.load(emb_path)).to(torch.float64)
    man = M.make_manifold(cfg.model.manifold, cfg.model.curvature)
    t0 = time.perf_counter()
    rec = reconstruction(man, x, tax.closure)
    ev = time.perf_counter() - t0
    lv = np.asarray(tax.level, dtype=float)
    jitter = np.random.default_rng(0).random(len(lv)) * 1e-3
    at_clamp = int((x.norm(dim=-1) > 1 - 2 * M.BOUNDARY_EPS[torch.float64]).sum()) \
        if cfg.model.manifold == "poincare" else None
    return {"exact_map": rec["map"], "exact_mean_rank": rec["mean_rank"],
            "exact_sources": rec["num_sources"], "exact_eval_s": ev,
            "spearman": norm_level_spearman(man, x, tax.level)["spearman"],
            "spearman_ceiling": spearman(lv, lv + jitter),
            "level_counts": np.bincount(np.asarray(tax.level)).tolist(),
            "rows_at_clamp": at_clamp, "num_nodes": tax.num_nodes}


def run_case(a) -> dict:
    import torch
    from hgraph.cli import parse_config
    flags = CASES[a.case] + list(a.extra or [])
    if a.out:
        os.makedirs(a.out, exist_ok=True)
    out = tempfile.mkdtemp(prefix=f"{a.case}_", dir=a.out)    # a fresh folder: no "-2" name
    name = f"{a.case}_default"
    cmd = [sys.executable, os.path.join(ROOT, "pipelines", "run.py"), *flags,
           "--out", out, "--name", name, "--no-progress"]
    shown = "python pipelines/run.py " + " ".join(flags)
    print(f"[{a.case}] {shown}", flush=True)
    load0 = _load()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    load1 = _load()
    if proc.returncode != 0:
        raise SystemExit(f"run failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    folder = os.path.join(out, name)
    metrics = json.load(open(os.path.join(folder, "metrics.json")))
    history = json.load(open(os.path.join(folder, "history.json")))
    cfg, _ = parse_config(flags)
    seed0 = metrics["per_seed"][0] if "per_seed" in metrics else {}
    exact = _exact(cfg, os.path.join(folder, "embeddings.npy"))
    res = {"command": shown, "wall_s": wall, "cpu_s": cpu, "load_before": load0,
           "load_after": load1,
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
           "bench_torch_threads": torch.get_num_threads(),
           "run_folder": folder, "metrics_seed0": seed0,
           "history": history, "preset": {"train": cfg.train.__dict__, "init": cfg.model.init,
                                          "dtype": cfg.dtype, "dim": cfg.model.dim},
           **exact, "stdout_tail": proc.stdout.strip().splitlines()[-5:]}
    print(f"[{a.case}] wall {wall:.1f} s ({cpu:.1f} CPU s), epochs {seed0.get('epochs_run')}, "
          f"exact MAP {exact['exact_map']:.4f} MR {exact['exact_mean_rank']:.3f}, "
          f"Spearman {exact['spearman']:.3f} (ceiling {exact['spearman_ceiling']:.3f}), "
          f"load {load0['1min']:.1f} -> {load1['1min']:.1f}", flush=True)
    return res


def curve(a) -> dict:
    import torch
    from hgraph import manifolds as M
    from hgraph.cli import parse_config
    from hgraph.data.datasets import load_dataset
    from hgraph.data.pairs import NegativeSampler
    from hgraph.data.taxonomy import csr_pairs
    from hgraph.eval.hierarchy import norm_level_spearman
    from hgraph.eval.ranking import reconstruction
    from hgraph.nn import EncoderSpec, build_encoder
    from hgraph.train import DirectEmbedder, TrainData, set_seed, train

    flags = CASES[a.case] + list(a.extra or [])
    cfg, _ = parse_config(flags)
    dtype = getattr(torch, cfg.dtype)
    tax = load_dataset(cfg.data, progress=False)
    man = M.make_manifold(cfg.model.manifold, cfg.model.curvature)
    set_seed(cfg.seeds[0])
    t0, c0 = time.perf_counter(), cpu_seconds()
    model = build_encoder(EncoderSpec(cfg.model, man, tax.num_nodes, None, edges=tax.edges,
                                      dtype=dtype)).to(dtype)
    init_s, init_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    data = TrainData(num_nodes=tax.num_nodes, positives=csr_pairs(tax.closure),
                     sampler=NegativeSampler(tax.closure, tax.num_nodes),
                     embedder=DirectEmbedder(None), embed_all=lambda m: m.weight.detach(),
                     val_metric=cfg.train.val_metric, train_closure=tax.closure)
    sample = a.sample or None
    ev = [0.0, 0.0]
    rows = []

    c_train = [cpu_seconds()]

    def evaluate(epoch, rec):
        # evaluations so far are excluded from the training seconds (wall and CPU)
        train_s = rec.get("time_s", 0.0) - ev[0]
        train_cpu = cpu_seconds() - c_train[0] - ev[1] if epoch else 0.0
        te, tc = time.perf_counter(), cpu_seconds()
        x = model.weight.detach()
        r = reconstruction(man, x, tax.closure, sample=sample)
        sp = norm_level_spearman(man, x, tax.level)["spearman"]
        clamp = int((x.norm(dim=-1) > 1 - 2 * M.BOUNDARY_EPS[x.dtype]).sum())
        ev[0] += time.perf_counter() - te
        ev[1] += cpu_seconds() - tc
        row = {"epoch": epoch, "loss": rec.get("loss"), "lr": rec.get("lr"),
               "train_s": train_s, "train_cpu_s": train_cpu, "map": r["map"],
               "mean_rank": r["mean_rank"], "spearman": sp, "rows_at_clamp": clamp}
        rows.append(row)
        loss = "-" if row["loss"] is None else f"{row['loss']:.4f}"
        print(f"[{a.case}] epoch {epoch:>4} train {train_s:>7.1f} s ({train_cpu:.1f} CPU s) "
              f"loss {loss} MAP {r['map']:.4f} MR {r['mean_rank']:.3f} Spearman {sp:.3f} "
              f"clamp {clamp}", flush=True)

    evaluate(0, {})
    ev[:] = [0.0, 0.0]
    c_train[0] = cpu_seconds()

    def on_epoch(epoch, rec):
        if (epoch + 1) % a.eval_every == 0 or rec.get("stopped_early") or \
                epoch + 1 == cfg.train.epochs:
            evaluate(epoch + 1, rec)

    load0 = _load()
    res = train(model, data, cfg.train, device=torch.device("cpu"), seed=cfg.seeds[0],
                progress=False, on_epoch=on_epoch)
    load1 = _load()
    return {"command": "python pipelines/run.py " + " ".join(flags) + " (settings; trained "
            "in-process by benchmarks/shallow_defaults.py curve)",
            "sampled_sources": sample, "init_s": init_s, "init_cpu_s": init_cpu,
            "epochs_run": res.epochs_run, "stop_reason": res.stop_reason,
            "train_s": res.train_time_s - ev[0], "curve": rows,
            "load_before": load0, "load_after": load1,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "torch_threads": torch.get_num_threads()}


def plot(a) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for path in a.files:
        d = json.load(open(path))
        label = os.path.splitext(os.path.basename(path))[0]
        if "curve" in d:
            c = [r for r in d["curve"] if r["epoch"] > 0]
            what = "exact MAP" if not d.get("sampled_sources") else \
                f"MAP ({d['sampled_sources']:,} sources)"
            axes[1].plot([r["train_s"] for r in c], [r["map"] for r in c], "o-", ms=3,
                         label=f"{label}: {what}")
            axes[0].plot([r["train_s"] for r in c], [r["loss"] for r in c], "o-", ms=3,
                         label=f"{label} (curve)")
        elif "history" in d:
            h = d["history"]
            axes[0].plot([r["time_s"] for r in h], [r["loss"] for r in h], "-", label=label)
            axes[1].plot([h[-1]["time_s"]], [d["exact_map"]], "*", ms=12,
                         label=f"{label}: exact MAP at the end")
    axes[0].set_xlabel("training seconds")
    axes[0].set_ylabel("epoch loss (ranking)")
    axes[0].set_yscale("log")
    axes[1].set_xlabel("training seconds")
    axes[1].set_ylabel("closure MAP")
    axes[1].axhline(0.97, ls=":", c="grey")
    axes[1].axhline(0.95, ls="--", c="grey")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print("wrote", a.out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="the user's command as a subprocess, then exact metrics")
    c = sub.add_parser("curve", help="the preset trained in-process, MAP every few epochs")
    for p in (r, c):
        p.add_argument("--case", choices=list(CASES), required=True)
        p.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                       help="flags appended to the case's command (last)")
        p.add_argument("--json", default=None)
    r.add_argument("--out", default=None, help="parent of the run's fresh results folder "
                   "(default: the system's temp dir)")
    c.add_argument("--eval-every", type=int, default=5)
    c.add_argument("--sample", type=int, default=0, help="sources ranked (0 = exact)")
    q = sub.add_parser("plot")
    q.add_argument("files", nargs="+")
    q.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "plot":
        plot(a)
        return 0
    import torch
    if os.environ.get("OMP_NUM_THREADS") is None:
        print("note: OMP_NUM_THREADS unset; torch threads", torch.get_num_threads(), flush=True)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))
    res = run_case(a) if a.cmd == "run" else curve(a)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    write_json(a.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
