#!/usr/bin/env python
"""Run every benchmark script in turn and write their tables to results/benchmarks.md.

    python benchmarks/run_all.py                          # what `make bench` runs
    python benchmarks/run_all.py --only scaling,inference # re-run some; keep the other sections
    python benchmarks/run_all.py --list                   # the names and commands
    python benchmarks/run_all.py --device cuda --out results/benchmarks_cuda.md

Each script prints its own table; this wrapper records the command, the
machine (cores, torch device), the date, the script's wall time and the load
average before and after it beside each one (the machine may be shared).
The whole set takes about 2 hours on 2 cores (nouns_target alone trains for
an hour).
"""
import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: (name, command) in the order they run; --only takes the names.  A script run twice
#: (two datasets) gets a name of its own and a section heading "path (name)".
SCRIPTS = [
    ("closure_speed", ["benchmarks/closure_speed.py", "--sizes", "80k,300k,1M"]),
    ("eval_speed", ["benchmarks/eval_speed.py", "--sizes", "10k,80k,nouns", "--sample", "1000"]),
    ("gensim_compare", ["benchmarks/gensim_compare.py", "--datasets", "mammals", "--epochs", "50"]),
    ("gensim_compare_nouns", ["benchmarks/gensim_compare.py", "--datasets", "nouns", "--epochs",
                              "5", "--burnin", "1", "--batch-sizes", "1024,4096"]),
    ("profile_shallow", ["benchmarks/profile_shallow.py", "--batch-sizes", "1024,4096",
                         "--steps", "100"]),
    ("scaling", ["benchmarks/scaling.py", "--sizes", "10k,80k,300k,1M"]),
    ("inference", ["benchmarks/inference.py", "--new", "10000", "--repeats", "5"]),
    ("nouns_target", ["benchmarks/nouns_target.py", "--dim", "10", "--optimizer", "rsgd", "--lr",
                      "1500", "--lr-schedule", "linear", "--epochs", "60", "--batch", "1024",
                      "--negatives", "50", "--burnin", "1", "--threads", "1", "--time-limit",
                      "3000", "--eval-every", "5", "--eval-sample", "2000", "--no-progress",
                      "--json", "results/nouns_target/curve.json",
                      "--plot", "results/nouns_target/curve.png"]),
]
#: scripts that take --device (the others time CPU-only code)
DEVICE_AWARE = {"gensim_compare", "scaling", "inference"}


def _name(entry) -> str:
    return entry[0]


def _heading(entry) -> str:
    name, script = entry
    return script[0] if Path(script[0]).stem == name else f"{script[0]} ({name})"


def _sections(text: str) -> dict:
    """'## benchmarks/x.py' heading -> its section text (heading included)."""
    parts = re.split(r"(?m)^(?=## )", text)
    return {p.splitlines()[0][3:].strip(): p.rstrip() + "\n" for p in parts if p.startswith("## ")}


def _load() -> str:
    la = os.getloadavg()
    return f"{la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated script names (e.g. scaling,inference); the "
                                   "other sections of --out are kept as they are")
    ap.add_argument("--device", help="pass --device to the scripts that take it (e.g. cuda)")
    ap.add_argument("--out", default="results/benchmarks.md")
    ap.add_argument("--list", action="store_true", help="print the names and commands, run nothing")
    args = ap.parse_args(argv)
    if args.list:
        for name, script in SCRIPTS:
            print(f"{name:>22}  python {' '.join(script)}")
        return 0

    import torch
    device = args.device or "cpu"
    if device.startswith("cuda") and torch.cuda.is_available():
        device = "cuda: " + torch.cuda.get_device_name(0)
    machine = f"{os.cpu_count()} cores, {platform.machine()}, device {device}, torch {torch.__version__}"
    wanted = None if not args.only else set(args.only.split(","))
    unknown = (wanted or set()) - {_name(s) for s in SCRIPTS}
    if unknown:
        ap.error(f"unknown script(s) {sorted(unknown)}; choose from "
                 f"{', '.join(_name(s) for s in SCRIPTS)}")
    out = ROOT / args.out
    old = _sections(out.read_text()) if out.exists() and wanted else {}
    sections = {}
    status = 0
    for entry in SCRIPTS:
        key, script = _heading(entry), entry[1]
        if wanted is not None and _name(entry) not in wanted:
            if key in old:
                sections[key] = old[key]
            continue
        if args.device and Path(script[0]).stem in DEVICE_AWARE:
            script = [*script, "--device", args.device]
        if script[0].endswith("nouns_target.py"):
            (ROOT / "results" / "nouns_target").mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, *script]
        print("$", " ".join(script), flush=True)
        load0 = _load()
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        status |= r.returncode
        body = r.stdout.rstrip() if r.returncode == 0 else \
            (r.stdout.rstrip() + "\nFAILED (exit %d): %s" % (r.returncode, r.stderr.strip()[-2000:]))
        sections[key] = "\n".join([
            f"## {key}", "",
            f"`python {' '.join(script)}` — {machine}, "
            f"finished {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} after {wall:.0f} s, "
            f"load average (1/5/15 min) {load0} before, {_load()} after", "",
            "```", body, "```", ""])
    parts = ["# Benchmarks", "", "Written by `python benchmarks/run_all.py` (`make bench`); "
             "each section by one script (its `--help` says what is measured and how).", ""]
    parts += [sections[_heading(e)] for e in SCRIPTS if _heading(e) in sections]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts).rstrip() + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
