"""Tables of item -> category runs: side by side, mean ± std over seeds, and
paired bootstrap intervals between two encoders on the same test items."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from hgraph.data.item_splits import slice_mask
from hgraph.eval.items import paired_bootstrap
from hgraph.results import aggregate, fmt

#: (column, metric key, digits)
COLUMNS = (("P@1", "p1", 3), ("P@5", "p5", 3), ("MRR", "mrr", 3), ("hP@5", "hp5", 3),
           ("top-1 hops", "tree_dist", 2), ("P@1 seen", "p1_seen", 3), ("P@1 head", "p1_head", 3),
           ("P@1 tail", "p1_tail", 3), ("P@1 zero-shot", "p1_zero", 3),
           ("MRR zero-shot", "mrr_zero", 3), ("γ", "gamma", 3), ("val P@1", "best_val_p1", 3),
           ("best epoch", "best_epoch", 1), ("ECE", "ece", 3),
           ("train s", "train_time_s", 0), ("items/s", "items_per_s", 0),
           ("items/s with text", "items_per_s_with_text", 0),
           ("s per 1k new categories", "new_categories_s", 2),
           ("… with text", "new_categories_s_with_text", 2))


#: a run folder named ``<folder>@cal`` is that run's test scored with calibrated
#: stacking (``calibrate: true``; the ``cal_*`` metrics and per-item arrays),
#: ``<folder>@rr`` with the learned reranker (``rerank: k``; ``rr_*``)
CAL = "@cal"
RR = "@rr"
VIEWS = {CAL: "cal_", RR: "rr_"}


def _view(run_dir) -> Tuple[Path, str]:
    """(folder, key prefix) of ``run_dir``, ``run_dir@cal`` or ``run_dir@rr``."""
    d = str(run_dir)
    for suffix, prefix in VIEWS.items():
        if d.endswith(suffix):
            return Path(d[:-len(suffix)]), prefix
    return Path(d), ""


def load_run(run_dir) -> Dict:
    """metrics.json of a run; a ``<metric>_seen`` missing there (runs made
    before that slice existed) is summarised from the per-item files.  For
    ``<folder>@cal`` the calibrated metrics take the plain ones' keys (the
    rest -- training time, items/s, validation -- are the run's own)."""
    from hgraph.tasks.item_eval import METRICS, summarize
    from hgraph.results import load_run as read_run
    run_dir, prefix = _view(run_dir)
    r = read_run(run_dir)           # the one reader of finished run folders, any version
    m = {"mean_std": r["metrics"], "per_seed": r["per_seed"], "run": r["run"],
         "config": r["config"]}
    if prefix:
        cal = {k[len(prefix):]: v for k, v in m["mean_std"].items() if k.startswith(prefix)}
        if "p1" not in cal:
            raise ValueError(f"{run_dir} was not run with "
                             f"{'calibrate: true' if prefix == 'cal_' else 'rerank: k'}")
        m["mean_std"].update(cal)
        return m
    files = [Path(run_dir) / f"per_item_seed{ps['seed']}.npz" for ps in m["per_seed"]]
    if "p1_seen" not in m["mean_std"] and files and all(f.exists() for f in files):
        per_seed = []
        for f in files:
            a = np.load(f)
            per_seed.append({k: v for k, v in summarize({k: a[k] for k in METRICS},
                                                        a["slice"]).items()
                             if k.endswith("_seen")})
        m["mean_std"].update(aggregate(per_seed))
    return m


def table(run_dirs: Dict[str, str], columns=COLUMNS) -> str:
    """Markdown table, one row per named run: mean ± std over its seeds."""
    head = "| encoder | seeds | " + " | ".join(c for c, _, _ in columns) + " |"
    lines = [head, "|" + "---|" * (len(columns) + 2)]
    for name, d in run_dirs.items():
        m = load_run(d)
        agg, n = m["mean_std"], len(m["per_seed"])
        cells = []
        for _, key, digits in columns:
            a = agg.get(key)
            if a is None or a.get("mean") is None or not np.isfinite(a["mean"]):
                cells.append("–")
            else:
                cells.append(fmt(a["mean"], a["std"] if n > 1 else None, digits))
        # a kept untrained model (best epoch 0 on every seed) is marked, not hidden
        untrained = agg.get("best_epoch", {}).get("mean") == 0 and \
            agg.get("epochs_run", {}).get("mean", 0) > 0
        lines.append(f"| {name}{' (epoch 0 kept)' if untrained else ''} | {n} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def slice_intervals(run_dir, metric: str = "p1", slices: Sequence[str] = ("all", "seen", "zero"),
                    n_boot: int = 2000, seed: int = 0) -> Dict[str, Tuple[float, float, float]]:
    """Per slice: (mean, 2.5% and 97.5% bootstrap quantiles) of ``metric`` over the
    run's test items, every seed's items pooled."""
    run_dir, prefix = _view(run_dir)
    A = [np.load(f) for f in sorted(Path(run_dir).glob("per_item_seed*.npz"))]
    rng = np.random.default_rng(seed)
    out = {}
    for s in slices:
        x = np.concatenate([a[prefix + metric][slice_mask(a["slice"], s)] for a in A]) \
            if A else np.zeros(0)
        x = x[np.isfinite(x)]
        if not len(x):
            continue
        boot = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
        out[s] = (float(x.mean()), float(np.quantile(boot, 0.025)),
                  float(np.quantile(boot, 0.975)))
    return out


def plot_comparison(run_dirs: Dict[str, str], path, title: str = "") -> None:
    """Grouped bars: P@1 of each run per slice (all / seen / zero-shot categories) with
    95% bootstrap intervals over test items (:func:`slice_intervals`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    slices = ("all", "seen", "zero")
    labels = {"all": "all test items", "seen": "seen categories", "zero": "zero-shot categories"}
    names = list(run_dirs)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for j, name in enumerate(names):
        iv = slice_intervals(run_dirs[name], "p1", slices)
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(slices))]
        mean = [iv.get(s, (np.nan,) * 3)[0] for s in slices]
        err = [[m - iv.get(s, (np.nan,) * 3)[1] for s, m in zip(slices, mean)],
               [iv.get(s, (np.nan,) * 3)[2] - m for s, m in zip(slices, mean)]]
        ax.bar(xs, mean, width, yerr=err, capsize=3, label=name)
        for x, m, up in zip(xs, mean, err[1]):
            if np.isfinite(m):
                ax.text(x, m + up + 0.015, f"{m:.3f}", ha="center", fontsize=7)
    ax.set_xticks(range(len(slices)))
    ax.set_xticklabels([labels[s] for s in slices])
    ax.set_ylabel("P@1 (95% bootstrap interval)")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def paired(run_a: str, run_b: str, metrics: Sequence[str] = ("p1", "mrr"),
           slices: Sequence[str] = ("all", "seen", "head", "tail", "zero"), seed: int = 0) -> List[Dict]:
    """Bootstrap intervals of ``a - b`` per metric and slice, items of every
    seed pooled (each seed's split is shared by both runs: same items, checked)."""
    out = []
    (run_a, pa), (run_b, pb) = _view(run_a), _view(run_b)
    seeds_a = {p.name for p in Path(run_a).glob("per_item_seed*.npz")}
    seeds_b = {p.name for p in Path(run_b).glob("per_item_seed*.npz")}
    common = sorted(seeds_a & seeds_b)
    if not common:
        raise ValueError(f"{run_a} and {run_b} share no seed")
    A = [np.load(Path(run_a) / f) for f in common]
    B = [np.load(Path(run_b) / f) for f in common]
    for a, b in zip(A, B):
        if not np.array_equal(a["items"], b["items"]):
            raise ValueError("the two runs were scored on different test items")
    for m in metrics:
        for s in slices:
            xa = np.concatenate([a[pa + m][slice_mask(a["slice"], s)] for a in A])
            xb = np.concatenate([b[pb + m][slice_mask(b["slice"], s)] for b in B])
            if len(xa) == 0:
                continue
            r = paired_bootstrap(xa, xb, seed=seed)
            out.append({"metric": m, "slice": s, "n": int(len(xa)), **r})
    return out


def paired_markdown(rows: List[Dict], a: str, b: str) -> str:
    lines = [f"| metric | slice | items | {a} − {b} | 95% interval | share ≤ 0 |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['metric']} | {r['slice']} | {r['n']} | {r['diff']:+.4f} | "
                     f"[{r['lo']:+.4f}, {r['hi']:+.4f}] | {r['p_le0']:.3f} |")
    return "\n".join(lines)


__all__ = ["CAL", "RR", "VIEWS", "COLUMNS", "load_run", "table", "paired", "paired_markdown",
           "slice_intervals", "plot_comparison"]
