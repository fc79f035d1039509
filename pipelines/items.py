#!/usr/bin/env python
"""Item -> category: place text items into a taxonomy and compare encoders.

One run:
    python pipelines/items.py --dataset icd10cm:no7th --encoder ramen --seeds 0 1 2
A comparison from a config file (YAML: ``common`` settings, named ``runs``
with their own settings, ``compare: [a, b]`` for paired bootstrap
intervals), printing the side-by-side table at the end:
    python pipelines/items.py --config configs/headline.yaml
Hyperparameter trials on validation (the ``tune`` block of the config: per
encoder a list of settings; every trial one seed; finished trials are read
back, so an interrupted grid resumes), then the chosen settings on every seed:
    python pipelines/items.py --config configs/items_icd10cm.yaml --tune

Every run goes through ``hgraph.pipeline.run`` (the same run folders,
checks, checkpoints and summary rows as ``pipelines/run.py --task items``).
Settings are the flat item settings of ``hgraph.config.ITEM_KEYS`` (each the
field of a config section: ``lr`` is ``train.lr``, ``zero_shot_frac`` is
``items.zero_shot_frac``); command-line flags override the file's ``common``
block.  A run folder ``<out>/<name>`` that finished with the same settings is
read back instead of rerun with ``--resume`` (an interrupted one continues
from its checkpoints).  Exit status 2 on bad input, before anything runs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Tuple

try:
    import hgraph  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hgraph.config import ITEM_KEYS, SECTIONS, RunConfig, load_yaml  # noqa: E402
from hgraph.errors import HGraphInputError  # noqa: E402
from hgraph.tasks.items import check, config_from_dict  # noqa: E402


def _field(key: str):
    sec, name = ITEM_KEYS[key]
    cls = RunConfig if sec is None else SECTIONS[sec]
    return next(f for f in fields(cls) if f.name == name)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="items.py", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="YAML file: common, runs, compare, tune")
    p.add_argument("--tune", action="store_true", help="run the config's tune block first")
    p.add_argument("--only", help="comma-separated run names of the config to run")
    p.add_argument("--resume", action="store_true",
                   help="read back a run folder <out>/<name> that finished with the same "
                        "settings, continue an interrupted one from its checkpoints")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="print the table of the finished runs under DIR (and the paired "
                        "bootstrap of hgcn vs ramen when both are there); runs nothing")
    for key in sorted(ITEM_KEYS):
        if key == "progress":
            continue
        f = _field(key)
        flag = "--" + key.replace("_", "-")
        default = f.default
        help_ = (f.metadata or {}).get("help", "")
        help_ = help_ if isinstance(help_, str) else ""
        if isinstance(default, bool):
            p.add_argument(flag, action="store_const", const=True, default=None, help=help_)
        elif isinstance(default, tuple):
            p.add_argument(flag, nargs="+", type=type(default[0]) if default else str,
                           default=None, help=help_)
        else:
            typ = type(default) if default is not None else str
            p.add_argument(flag, type=typ, default=None, help=help_)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def _load_yaml(path: Path) -> dict:
    d = load_yaml(str(path))
    if not isinstance(d, dict):
        raise HGraphInputError("a config file holds a mapping", file=str(path))
    return d


def _same_settings(cfg: RunConfig, run_dir: Path) -> bool:
    """Whether run folder ``run_dir`` was run with ``cfg``'s settings (its name, folder
    and progress aside): from its ``config.json``, or the flat settings an item run
    folder written before the one harness kept in ``metrics.json``."""
    from hgraph.results import read_run_config
    try:
        if (run_dir / "config.json").exists():
            theirs = read_run_config(run_dir)
        else:
            flat = json.loads((run_dir / "metrics.json").read_text())["run"]["config"]
            theirs = config_from_dict({k: v for k, v in flat.items() if k in ITEM_KEYS},
                                      str(run_dir))
    except (OSError, KeyError, ValueError, HGraphInputError):
        return False
    skip = {"name", "out", "progress", "version"}
    return {k: v for k, v in cfg.to_dict().items() if k not in skip} == \
        {k: v for k, v in theirs.to_dict().items() if k not in skip}


def run_named_fresh(cfg: RunConfig, argv) -> Path:
    from hgraph.pipeline import run
    return run(cfg, argv=argv).run_dir


def run_named(cfg: RunConfig, argv, reuse: bool) -> Path:
    """Run ``cfg`` through :func:`hgraph.pipeline.run` -> its run folder.  With
    ``reuse``: a folder ``<out>/<name>`` that finished with the same settings is
    taken as it is, an interrupted one (same settings) continues from its
    checkpoints."""
    from hgraph.pipeline import resume, run
    from hgraph.results import INCOMPLETE, slug
    d = Path(cfg.out) / slug(cfg.name)
    if reuse and d.is_dir() and _same_settings(cfg, d):
        if not (d / INCOMPLETE).exists() and (d / "metrics.json").exists():
            if cfg.progress:
                print(f"[{cfg.name}] finished with the same settings: {d}", file=sys.stderr)
            return d
        if (d / INCOMPLETE).exists() and (d / "config.json").exists():
            return resume(d, argv=argv).run_dir
    return run(cfg, argv=argv).run_dir


def _flags(args) -> dict:
    out = {}
    for key in ITEM_KEYS:
        v = getattr(args, key, None)
        if v is not None:
            out[key] = v
    if args.quiet:
        out["progress"] = False
    return out


def _settings(run: dict) -> dict:
    """A run's entry of the config without the keys that are not run settings."""
    return {k: v for k, v in (run or {}).items() if k != "tuned_as"}


def tune(doc: dict, common: dict, src: str, argv, only=None) -> Tuple[dict, dict]:
    """Trials of the ``tune`` block on one seed each (of the runs in ``only``,
    all when None) -> (the best trial's settings by validation P@1, its run
    folder) per run name.  A trial that finished with the same settings is read
    back, so the grid resumes."""
    chosen, where = {}, {}
    if only is not None:    # a run `tuned_as: R` takes R's choice: R's trials are needed
        only = set(only) | {(doc["runs"].get(n) or {}).get("tuned_as") for n in only} - {None}
    for name, trials in (doc.get("tune") or {}).items():
        if only is not None and name not in only:
            continue
        base = {**common, **_settings(doc["runs"][name])}
        best = None
        for j, t in enumerate(trials):
            cfg = config_from_dict({**base, **t, "seeds": [base.get("seeds", [0])[0]],
                                    "name": f"{name}_{j}",
                                    "out": str(Path(base.get("out", "results")) / "tune")}, src)
            d = run_named(cfg, [*argv, f"# trial {name}_{j}"], reuse=True)
            res = json.loads((d / "metrics.json").read_text())
            v = res["mean_std"].get("best_val_p1", {}).get("mean")
            v = float("nan") if v is None else v    # no validation items: null in metrics.json
            print(f"[tune] {name} trial {j} {t}: val P@1 {v:.4f}", file=sys.stderr)
            if best is None or v > best[0]:
                best = (v, t, d)
        chosen[name], where[name] = best[1], best[2]
    return chosen, where


def report(folder: Path) -> int:
    from hgraph.tasks.items_report import CAL, RR, paired, paired_markdown, table
    order = ["features", "knn", "shallow", "twotower", "ramen", "hgcn", "ramen_euclidean",
             "hgcn_euclidean", "ramen_trained_neg", "ramen_text1", "ramen_text1 calibrated",
             "hgcn_text1", "hgcn_text1 calibrated", "ramen_shared1", "ramen_shared1_long",
             "ramen_context1", "features_rr reranked", "ramen_rr", "ramen_rr calibrated",
             "ramen_rr reranked", "hgcn_rr", "hgcn_rr calibrated", "hgcn_rr reranked",
             "ramen_text1_rr", "ramen_text1_rr calibrated", "ramen_text1_rr reranked",
             "hgcn_shared1", "ramen_shared", "hgcn_shared", "ramen_shared_regtext",
             "ramen_shared2", "hgcn_shared2"]
    found = {p.parent.name: str(p.parent) for p in sorted(folder.glob("*/metrics.json"))}
    if not found:
        raise HGraphInputError("no finished run here", file=str(folder))
    # a run made with calibrate: true also gives the row of its calibrated scoring
    # (and with rerank: k, the row of its reranked scoring)
    for n, d in list(found.items()):
        mean_std = json.loads((Path(d) / "metrics.json").read_text())["mean_std"]
        if "cal_p1" in mean_std:
            found[f"{n} calibrated"] = d + CAL
        if "rr_p1" in mean_std:
            found[f"{n} reranked"] = d + RR
    names = [n for n in order if n in found] + [n for n in found if n not in order]
    print(table({n: found[n] for n in names}))
    from hgraph.tasks.items_report import plot_comparison
    shown = [n for n in names if " " not in n]
    if len(shown) > 5:          # the headline's three; the table holds the rest
        shown = [n for n in ("features", "ramen", "hgcn") if n in found] or shown[:5]
    plot_comparison({n: found[n] for n in shown}, folder / "comparison.png", str(folder))
    print(f"\npicture: {folder / 'comparison.png'}")
    # paired intervals on the seeds both runs have: graph as input vs regulariser, the
    # regulariser's own effect (λ = 0.1 vs 0), the geometry (Poincaré vs Euclidean)
    for a, b in (("hgcn", "ramen"), ("ramen", "twotower"), ("ramen", "ramen_euclidean"),
                 ("hgcn", "hgcn_euclidean"), ("ramen_trained_neg", "ramen"),
                 ("ramen_text1", "ramen"), ("hgcn_text1", "ramen_text1"),
                 ("ramen_text1 calibrated", "ramen_text1"),
                 ("hgcn_text1 calibrated", "ramen_text1 calibrated"),
                 ("ramen_shared1", "ramen"), ("ramen_shared1", "ramen_text1"),
                 ("ramen_shared1_long", "ramen"), ("ramen_context1", "ramen"),
                 ("ramen_rr reranked", "ramen_rr"), ("ramen_rr reranked", "ramen_rr calibrated"),
                 ("hgcn_rr reranked", "hgcn_rr"), ("hgcn_rr reranked", "ramen_rr reranked"),
                 ("ramen_text1_rr reranked", "ramen_text1_rr"),
                 ("ramen_text1_rr reranked", "ramen_text1_rr calibrated"),
                 ("features_rr reranked", "features"),
                 # issue 31: trained text encoder vs frozen, and HGCN vs RAMEN on it
                 ("hgcn_shared1", "hgcn"), ("hgcn_shared1", "ramen_shared1"),
                 ("ramen_shared", "ramen"), ("hgcn_shared", "hgcn"),
                 ("hgcn_shared", "ramen_shared"), ("ramen_shared_regtext", "ramen_shared"),
                 ("ramen_shared2", "ramen_shared"), ("ramen_shared2", "ramen"),
                 ("ramen_shared2", "ramen_mpnet"), ("hgcn_shared2", "hgcn"),
                 ("hgcn_shared2", "ramen_shared2"), ("ramen_mpnet", "ramen"),
                 ("hgcn_mpnet", "hgcn"), ("hgcn_mpnet", "ramen_mpnet")):
        if a in found and b in found:
            print()
            print(paired_markdown(paired(found[a], found[b], slices=("all", "seen", "zero")
                                         if (a, b) not in (("hgcn", "ramen"),
                                                           ("hgcn_text1", "ramen_text1"),
                                                           ("hgcn_shared1", "ramen_shared1"),
                                                           ("hgcn_shared", "ramen_shared"),
                                                           ("hgcn_shared2", "ramen_shared2"))
                                         else
                                         ("all", "seen", "head", "tail", "zero")), a, b))
    return 0


def main(argv=None) -> int:
    from hgraph.cli import guarded
    args = build_parser().parse_args(argv)
    return guarded(lambda: _work(args, argv))


def _work(args, argv) -> int:
    argv_run = ["pipelines/items.py", *(sys.argv[1:] if argv is None else argv)]
    if args.report is not None:
        return report(args.report)
    if args.config is None:
        cfg = config_from_dict(_flags(args), "<command line>")
        d = run_named(cfg, argv_run, reuse=args.resume) if cfg.name is not None else \
            run_named_fresh(cfg, argv_run)
        from hgraph.tasks.items_report import table
        print(table({cfg.model.encoder: str(d)}))
        print(f"run folder: {d}")
        return 0
    doc = _load_yaml(args.config)
    src = str(args.config)
    common = {**(doc.get("common") or {}), **_flags(args)}
    runs = doc.get("runs") or {}
    if not runs:
        raise HGraphInputError("the config names no runs", file=src,
                               fix="add runs: {name: {encoder: ...}}")
    names = list(runs) if not args.only else args.only.split(",")
    for name in names:      # every run's settings checked before anything runs
        if name not in runs:
            raise HGraphInputError(f"no run named {name!r}", file=src)
        check(config_from_dict({**common, **_settings(runs[name]), "name": name}, src))
    chosen, trial_dirs = tune(doc, common, src, argv_run, only=names) if args.tune \
        else ({}, {})
    if chosen:
        out = Path(common.get("out", "results/items")) / "tuned.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        # merged with what other --only invocations chose
        old = json.loads(out.read_text()) if out.exists() else {}
        out.write_text(json.dumps({**old, **chosen}, indent=1, sort_keys=True))
    dirs = {}
    t0 = time.perf_counter()
    for name in names:
        if name not in runs:
            raise HGraphInputError(f"no run named {name!r}", file=src)
        # `tuned_as: R`: the settings chosen for run R (e.g. the Euclidean twin of a
        # tuned run gets its twin's rate, so only the manifold differs)
        pick = chosen.get((runs[name] or {}).get("tuned_as", name), {})
        cfg = config_from_dict({**common, **_settings(runs[name]), **pick, "name": name},
                               src)
        dirs[name] = str(run_named(cfg, argv_run, reuse=args.resume))
    from hgraph.tasks.items_report import paired, paired_markdown, table
    print(f"\n{cfg.data.dataset}: "
          f"{time.perf_counter() - t0:.0f} s\n")
    print(table(dirs))
    cmp_ = doc.get("compare") or []
    # one pair [a, b] or a list of pairs [[a, b], [c, d]]
    for pair in ([cmp_] if cmp_ and isinstance(cmp_[0], str) else cmp_):
        if all(c in dirs for c in pair):
            print()
            print(paired_markdown(paired(dirs[pair[0]], dirs[pair[1]]), *pair))
    from hgraph.tasks.items_report import plot_comparison
    pic = Path(cfg.out) / "comparison.png"
    plot_comparison(dirs, pic, f"{cfg.data.dataset}"
                    + (f" below {cfg.items.subtree}" if cfg.items.subtree else ""))
    print(f"\nrun folders: {', '.join(dirs.values())}\npicture: {pic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
