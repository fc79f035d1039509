"""Command line built from the config dataclasses.

Every field of :class:`hgraph.config.RunConfig` and its sections is a flag
(``gen_leaf_prob`` -> ``--gen-leaf-prob``); help text and choices come from
the fields' metadata, so ``--help`` and the registries never drift apart:
the config names a registry by a plain key (``choices="encoders"``,
``listing="datasets"``) and this module resolves the key through
:mod:`hgraph.registries`, as it does the datasets' default features that the
presets need.
Precedence: built-in defaults < ``--config FILE.yaml`` < flags given.
Bad input prints one line ``error: <file>:<line>: <cause>`` and exits 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, Callable, Dict, List, Optional

from hgraph import registries
from hgraph.config import SECTIONS, RunConfig, from_dict, load_yaml
from hgraph.errors import HGraphInputError

DESCRIPTION = """\
Learn hyperbolic embeddings of a category hierarchy and evaluate them: the taxonomy's
nodes (--task nodes, the default) or text items placed into its categories (--task items).

Encoders: shallow (a learned point per node), hgcn (hyperbolic GCN: graph used
at training and inference), ramen (features -> MLP -> manifold, graph used only
as a training regulariser).  Each run writes results/<run_id>/ (config.json,
metrics.json, command.txt, embeddings, plots) and a row in results/summary.csv.
"""

EPILOG = """\
examples:
  python pipelines/run.py --task items --dataset csv:edges.csv --node-text text.csv --items items.csv
  python pipelines/run.py --task items --dataset hpo --subtree HP:0000707 --encoder hgcn
  python pipelines/run.py --encoder shallow --dim 10
  python pipelines/run.py --encoder hgcn --manifold lorentz --seed 0 --seed 1 --seed 2
  python pipelines/run.py --dataset wordnet-mammals --dim 5 --val-frac 0 --test-frac 0
  python pipelines/run.py --dataset csv:my_tree.csv --format edges --config run.yaml
"""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_field(group, f: dataclasses.Field, dest: str) -> None:
    md = f.metadata or {}
    help_ = md.get("help", "")
    if md.get("listing"):        # text built from a registry (e.g. the dataset names)
        help_ = f"{help_}: {registries.listing(md['listing'])}"
    default = f.default
    kw: Dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS}
    choices = md.get("choices")
    if isinstance(choices, str):     # the name of a registry: its keys
        choices = registries.choices(choices)
    elif choices is not None:
        choices = list(choices)
    if md.get("repeat"):
        kw["action"] = "append"
        kw["metavar"] = "NAME"
    elif isinstance(default, bool):
        kw["action"] = argparse.BooleanOptionalAction
    elif isinstance(default, tuple):
        kw["nargs"] = "+"
        kw["type"] = type(default[0]) if default else str
        kw["metavar"] = f.name.split("_")[-1].upper()
        if choices:
            kw["choices"] = choices
            kw["metavar"] = None
    else:
        kw["metavar"] = f.name.split("_")[-1].upper() if not choices else None
        if default is not None:
            kw["type"] = type(default)
        if choices:
            kw["choices"] = choices
    shown = default if not isinstance(default, tuple) else " ".join(map(str, default))
    kw["help"] = f"{help_} (default: {shown})"
    group.add_argument(_flag(f.name), **kw)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run.py", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE.yaml", default=None,
                   help="YAML file with sections data/model/train/eval and run keys; "
                        "flags given on the command line override it")
    p.add_argument("--seed", dest="run.seeds", action="append", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="training seed; repeat for several (mean ± std over seeds). Default: 0")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration as JSON and exit")
    p.add_argument("--describe", action="store_true",
                   help="print the dataset's summary (nodes, edges, depth, nodes with several "
                        "parents, items, build time) and exit")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an interrupted run from its folder (its config.json and "
                        "latest checkpoints); other options are not allowed with it")
    run_group = p.add_argument_group("run")
    for f in dataclasses.fields(RunConfig):
        if f.name in SECTIONS or f.name == "seeds":
            continue
        _add_field(run_group, f, f"run.{f.name}")
    for sec, cls in SECTIONS.items():
        g = p.add_argument_group(sec)
        for f in dataclasses.fields(cls):
            _add_field(g, f, f"{sec}.{f.name}")
    return p


def parse_config(argv: Optional[List[str]] = None) -> tuple[RunConfig, argparse.Namespace]:
    p = build_parser()
    ns = p.parse_args(argv)
    base: Dict[str, Any] = {}
    source = "<command line>"
    if ns.config:
        base = load_yaml(ns.config)
        source = ns.config
        if not isinstance(base, dict):
            raise HGraphInputError("config must be a mapping of sections", file=ns.config)
    merged: Dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, val in vars(ns).items():
        if "." not in key:
            continue
        sec, name = key.split(".", 1)
        if sec == "run":
            merged[name] = val
        else:
            merged.setdefault(sec, {})
            if not isinstance(merged[sec], dict):
                raise HGraphInputError(f"section {sec!r} must be a mapping", file=source)
            merged[sec][name] = val
    cfg = from_dict(merged, source=source, dataset_features=registries.dataset_features)
    return cfg, ns


def main(argv: Optional[List[str]] = None) -> int:
    """The command; under torchrun every rank runs it inside one process group
    (:func:`hgraph.distributed.session`) and rank 0 alone prints the result."""
    from hgraph import distributed
    argv = sys.argv[1:] if argv is None else argv
    try:
        with distributed.session():
            return _main(argv)
    except RuntimeError as e:
        msg = distributed.failure_message(e)     # a peer died or a collective timed out
        if msg is None:
            raise
        print(f"error: {msg}", file=sys.stderr)
        return 1


def guarded(work: Callable[[], int]) -> int:
    """``work()``'s exit status, with the run's failures turned into one line and the
    status every command of the project uses: bad input 2, a signal 128 + its number
    (the line names the checkpoint and the resume command), divergence 1."""
    try:
        return work()
    except HGraphInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        from hgraph.train import RunInterrupted
        if isinstance(e, RunInterrupted):       # checkpoint written: say how to resume
            print(e, file=sys.stderr)
            return e.exit_status
        print("interrupted", file=sys.stderr)
        return 130
    except RuntimeError as e:
        from hgraph.train import TrainingDiverged
        if not isinstance(e, TrainingDiverged):
            raise
        print(f"error: {e}", file=sys.stderr)     # names the last good checkpoint
        return 1


def _main(argv: List[str]) -> int:
    return guarded(lambda: _work(argv))


def _work(argv: List[str]) -> int:
    if "--resume" in argv:
        if len(argv) != 2 or argv[0] != "--resume":
            raise HGraphInputError("--resume RUN_DIR takes no other options",
                                   fix="the run's config.json holds its settings")
        from hgraph.pipeline import resume
        result = resume(argv[1], argv=["pipelines/run.py", *argv])
        if result is not None:          # None: a rank other than 0
            print(format_result(result))
        return 0
    cfg, ns = parse_config(argv)
    if ns.print_config:
        print(cfg.to_json())
        return 0
    if ns.describe:
        from hgraph.data.datasets import describe
        for k, v in describe(cfg.data).items():
            print(f"{k:20s} {v}")
        return 0
    from hgraph.pipeline import run
    result = run(cfg, argv=["pipelines/run.py", *argv])
    if result is not None:
        print(format_result(result))
    return 0


def format_result(result) -> str:
    from hgraph.results import fmt
    keys = ["p1", "p1_seen", "p1_zero", "p5", "mrr", "hp5", "lp_roc_auc", "lp_ap", "parent_mrr",
            "parent_hits@10", "recon_mean_rank", "recon_map", "spearman_norm_level", "inductive_mrr", "inductive_hits@10", "train_time_s",
            "embed_time_s"]
    lines = [f"run folder: {result.run_dir}",
             f"dataset: {result.dataset['num_nodes']} nodes, depth {result.dataset['depth']}, "
             f"{result.dataset['closure_pairs']} closure pairs"]
    for k in keys:
        if k in result.metrics:
            m = result.metrics[k]
            digits = 2 if k.endswith("_s") or k == "recon_mean_rank" else 4
            lines.append(f"  {k:22s} {fmt(m['mean'], m['std'] if m['n'] > 1 else None, digits)}")
    return "\n".join(lines)
