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

Every setting is a field of ``hgraph.tasks.items.ItemTaskConfig``; command-line
flags override the file's ``common`` block.  Exit status 2 on bad input.
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

from hgraph.errors import HGraphInputError  # noqa: E402
from hgraph.tasks.item_models import ITEM_ENCODERS  # noqa: E402
from hgraph.tasks.items import ItemTaskConfig, config_from_dict, run_items  # noqa: E402

HELP = {"dataset": "taxonomy (as pipelines/run.py --dataset); icd10cm:no7th = 47.2k codes",
        "items": "CSV text,category[,split] (default: the dataset's built-in items)",
        "node_text": "CSV id,text of the nodes (default: the dataset's own text)",
        "subtree": "keep only this node (key or name) and its descendants",
        "encoder": f"one of {', '.join(ITEM_ENCODERS)}",
        "manifold": "poincare or euclidean",
        "seeds": "seeds (each: its own split and initialisation)",
        "reg_lambda": "graph regulariser weight (category ancestor/sibling triplets)",
        "item_adapter": "items only: a residual MLP of this width before the shared tower "
                        "(0: none)",
        "item_text_layers": "items only: train the sentence encoder's last k transformer "
                            "layers (categories keep its frozen vectors; 0: all frozen)",
        "shared_text_head": "the trained layers encode the categories too (re-encoded after "
                            "every epoch; needs item_text_layers >= 1, encoder ramen)",
        "text_lr": "Adam rate of those layers",
        "category_context": "a category's text followed by its first k ancestors' texts "
                            "(0: its own only)",
        "negative_pool": "draw negatives among 'all' candidates or only the 'trained' ones "
                         "(categories with a training item)",
        "calibrate": "also score test with calibrated stacking: a twin model trained without "
                     "a further share of categories chooses, on validation, a distance "
                     "handicap for categories with training items (doubles training time)",
        "rerank": "also score test with a learned second stage over each item's top k "
                  "categories (gradient-boosted trees on score, text, hierarchy and seen "
                  "features), fitted on the calibration twin's lists (0: off; k >= 10)",
        "lr": "Adam learning rate of the towers (per step)",
        "epochs": "maximum epochs (early stop on validation P@1)",
        "threads": "torch threads (0: torch's default)",
        "out": "folder of the run folders"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="items.py", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="YAML file: common, runs, compare, tune")
    p.add_argument("--tune", action="store_true", help="run the config's tune block first")
    p.add_argument("--only", help="comma-separated run names of the config to run")
    p.add_argument("--resume", action="store_true",
                   help="keep the seeds a run folder already holds when they were run with the "
                        "same settings (an interrupted run goes on with its next seed)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="print the table of the finished runs under DIR (and the paired "
                        "bootstrap of hgcn vs ramen when both are there); runs nothing")
    for f in fields(ItemTaskConfig):
        if f.name in ("progress",):
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if isinstance(default, bool):
            p.add_argument(flag, action="store_const", const=True, default=None,
                           help=HELP.get(f.name, ""))
        elif f.name in ("seeds", "reg_kinds"):
            p.add_argument(flag, nargs="+", type=int if f.name == "seeds" else str,
                           default=None, help=HELP.get(f.name, f"default {list(default)}"))
        else:
            typ = type(default) if default is not None else str
            p.add_argument(flag, type=typ, default=None,
                           help=HELP.get(f.name, "") + f" (default {default})")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def _load_yaml(path: Path):
    import yaml
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HGraphInputError("no such config file", file=str(path)) from None
    except yaml.YAMLError as e:
        raise HGraphInputError(f"not valid YAML: {e}", file=str(path)) from None
    if not isinstance(d, dict):
        raise HGraphInputError("a config file holds a mapping", file=str(path))
    return d


def _flags(args) -> dict:
    out = {}
    for f in fields(ItemTaskConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            out[f.name] = v
    if args.quiet:
        out["progress"] = False
    return out


def _settings(run: dict) -> dict:
    """A run's entry of the config without the keys that are not run settings."""
    return {k: v for k, v in (run or {}).items() if k != "tuned_as"}


def tune(doc: dict, common: dict, src: str, command: str, only=None) -> Tuple[dict, dict]:
    """Trials of the ``tune`` block on one seed each (of the runs in ``only``,
    all when None) -> (the best trial's settings by validation P@1, its run
    folder) per run name.  A finished trial (its metrics.json exists) is read
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
                                    "name": f"tune/{name}_{j}"}, src)
            mpath = Path(cfg.out) / cfg.name / "metrics.json"
            if mpath.exists():
                res = json.loads(mpath.read_text())
            else:
                res = run_items(cfg, command=command + f"  # trial {name}_{j}")
            v = res["mean_std"]["best_val_p1"]["mean"]
            print(f"[tune] {name} trial {j} {t}: val P@1 {v:.4f}", file=sys.stderr)
            if best is None or v > best[0]:
                best = (v, t, mpath.parent)
        chosen[name], where[name] = best[1], best[2]
    return chosen, where


def report(folder: Path) -> int:
    from hgraph.tasks.items_report import CAL, RR, paired, paired_markdown, table
    order = ["features", "knn", "shallow", "twotower", "ramen", "hgcn", "ramen_euclidean",
             "hgcn_euclidean", "ramen_trained_neg", "ramen_text1", "ramen_text1 calibrated",
             "hgcn_text1", "hgcn_text1 calibrated", "ramen_shared1", "ramen_shared1_long",
             "ramen_context1", "features_rr reranked", "ramen_rr", "ramen_rr calibrated",
             "ramen_rr reranked", "hgcn_rr", "hgcn_rr calibrated", "hgcn_rr reranked",
             "ramen_text1_rr", "ramen_text1_rr calibrated", "ramen_text1_rr reranked"]
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
                 ("features_rr reranked", "features")):
        if a in found and b in found:
            print()
            print(paired_markdown(paired(found[a], found[b], slices=("all", "seen", "zero")
                                         if (a, b) not in (("hgcn", "ramen"),
                                                           ("hgcn_text1", "ramen_text1"))
                                         else
                                         ("all", "seen", "head", "tail", "zero")), a, b))
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    command = "python pipelines/items.py " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        if args.report is not None:
            return report(args.report)
        if args.config is None:
            cfg = config_from_dict(_flags(args), "<command line>")
            res = run_items(cfg, command=command, resume=args.resume)
            from hgraph.tasks.items_report import table
            print(table({cfg.encoder: res["run_dir"]}))
            return 0
        doc = _load_yaml(args.config)
        src = str(args.config)
        common = {**(doc.get("common") or {}), **_flags(args)}
        runs = doc.get("runs") or {}
        if not runs:
            raise HGraphInputError("the config names no runs", file=src,
                                   fix="add runs: {name: {encoder: ...}}")
        names = list(runs) if not args.only else args.only.split(",")
        chosen, trial_dirs = tune(doc, common, src, command, only=names) if args.tune \
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
            # the chosen trial's seed is not run twice
            trial = trial_dirs.get(name)
            dirs[name] = run_items(cfg, command=command, reuse=trial,
                                   resume=args.resume)["run_dir"]
        from hgraph.tasks.items_report import paired, paired_markdown, table
        print(f"\n{common.get('dataset', ItemTaskConfig.dataset)}: "
              f"{time.perf_counter() - t0:.0f} s\n")
        print(table(dirs))
        cmp_ = doc.get("compare")
        if cmp_ and all(c in dirs for c in cmp_):
            print()
            print(paired_markdown(paired(dirs[cmp_[0]], dirs[cmp_[1]]), *cmp_))
        return 0
    except HGraphInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
