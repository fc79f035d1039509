#!/usr/bin/env python
"""Analyses of finished item -> category runs (hgraph.analysis), one subcommand each.

    python pipelines/analyse.py seen-bias results/items/icd10cm results/items/hpo \\
        --out results/items/seen_bias.md
    python pipelines/analyse.py zero-shot-misses results/items/icd10cm/ramen \\
        results/items/icd10cm/hgcn --out results/items/zero_shot_misses.md
    python pipelines/analyse.py calibration results/items/icd10cm/ramen_text1
    python pipelines/analyse.py context-features results/items/icd10cm/features

A RUN_DIR is a finished run folder of the item task (config.json or the older
run.config in metrics.json, per_item_seed<s>.npz);
seen-bias also takes a folder of run folders (every */metrics.json in it).
Tables go to stdout, or with --out to a markdown file headed by the command that
made it.  `python pipelines/analyse.py <analysis> --help` says what each computes.
Exit status 2 on bad input, with one line `error: ...` on stderr.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

try:
    import hgraph  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hgraph.errors import HGraphInputError  # noqa: E402


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line, exit status 2."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _first_line(module) -> str:
    """The first paragraph of a module's docstring, on one line."""
    return " ".join(module.__doc__.strip().split("\n\n")[0].split())


def _load(cfg):
    """The run's data (hgraph.analysis.runs.load_run_data), said on stderr first:
    texts not in the cache yet are encoded now, which takes minutes."""
    from hgraph.analysis import runs
    print(f"[analyse] loading {cfg.data.dataset} (category_context "
          f"{cfg.items.category_context}): text vectors from the cache or encoded now",
          file=sys.stderr)
    return runs.load_run_data(cfg)


def _emit(text: str, args, note=None) -> None:
    from hgraph.analysis.tables import page
    from hgraph.files import atomic_write_text
    if args.out is None:
        sys.stdout.write(text)
        return
    atomic_write_text(args.out, page(text, args.command, args.threads, note))
    print(f"wrote {args.out}", file=sys.stderr)


def _runs(paths, folders_too: bool):
    from hgraph.analysis.runs import find_runs, read_run
    runs = []
    for p in paths:
        runs += find_runs(p) if folders_too else [read_run(p)]
    return runs


def seen_bias(args) -> None:
    from hgraph.analysis.runs import DataCache
    from hgraph.analysis.seen_bias import seen_bias_rows, seen_bias_table
    rows = seen_bias_rows(_runs(args.folders, True), DataCache(_load).for_run)
    _emit(seen_bias_table(rows), args)


def zero_shot_misses(args) -> None:
    from hgraph.analysis.runs import DataCache
    from hgraph.analysis.zero_shot_misses import NOTE, zero_shot_miss_rows, zero_shot_miss_table
    rows = zero_shot_miss_rows(_runs(args.runs, False), DataCache(_load).for_run)
    _emit(zero_shot_miss_table(rows), args, NOTE)


def calibration(args) -> None:
    from hgraph.analysis.calibration import calibration_rows, calibration_table, plot_calibration
    text = ""
    for run in _runs(args.runs, False):
        rows = calibration_rows(run)
        text += f"\n### {run.path}\n\n{calibration_table(rows)}"
        if not args.no_plot:
            print(f"wrote {plot_calibration(run, rows)}", file=sys.stderr)
    _emit(text, args)


def context_features(args) -> None:
    from hgraph.analysis.context_features import context_feature_lines, context_features
    (run,) = _runs([args.run], False)
    rows = context_features(run.config, seed=args.seed, contexts=args.contexts, load=_load)
    _emit(context_feature_lines(rows), args)


def _non_negative(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def _positive(s: str) -> int:
    v = _non_negative(s)
    if v == 0:
        raise argparse.ArgumentTypeError("must be >= 1, got 0")
    return v


def build_parser() -> argparse.ArgumentParser:
    from hgraph.analysis import calibration as cal
    from hgraph.analysis import context_features as ctx
    from hgraph.analysis import seen_bias as sb
    from hgraph.analysis import zero_shot_misses as zs
    p = _Parser(prog="pipelines/analyse.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS",
                           parser_class=_Parser)

    def add(name, module, func):
        s = sub.add_parser(name, help=_first_line(module), description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        s.add_argument("--threads", type=_positive, default=1,
                       help="torch threads (default 1, as the committed tables were made)")
        s.add_argument("--out", default=None, metavar="FILE.md",
                       help="write the table to this markdown file, headed by the command "
                            "(default: print it)")
        s.set_defaults(func=func)
        return s

    s = add("seen-bias", sb, seen_bias)
    s.add_argument("folders", nargs="+", metavar="RUN_DIR",
                   help="run folders, or folders of run folders (e.g. results/items/icd10cm)")
    s = add("zero-shot-misses", zs, zero_shot_misses)
    s.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders")
    s = add("calibration", cal, calibration)
    s.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run folders of runs with calibrate: true")
    s.add_argument("--no-plot", action="store_true",
                   help="print the tables only, do not write <run>/calibration.png")
    s = add("context-features", ctx, context_features)
    s.add_argument("run", metavar="RUN_DIR",
                   help="a run folder whose dataset and split settings are used")
    s.add_argument("--seed", type=_non_negative, default=0, help="the split's seed (default 0)")
    s.add_argument("--contexts", type=_non_negative, nargs="+", default=[0, 1], metavar="K",
                   help="category_context values compared (default: 0 1)")
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command = "python pipelines/analyse.py " + shlex.join(argv)
    import torch
    torch.set_num_threads(args.threads)
    try:
        args.func(args)
    except HGraphInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
