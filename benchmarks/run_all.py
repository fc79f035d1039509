#!/usr/bin/env python
"""Run every benchmark script in turn and write their tables to results/benchmarks.md.

    python benchmarks/run_all.py                          # what `make bench` runs
    python benchmarks/run_all.py --only scaling,inference # re-run some; keep the other sections
    python benchmarks/run_all.py --device cuda --out results/benchmarks_cuda.md

Each script prints its own table; this wrapper records the command, the
machine (cores, torch device), the date, the script's wall time and the load
average before and after it beside each one (the machine may be shared).
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
SCRIPTS = [
    ["benchmarks/closure_speed.py", "--sizes", "80k,300k,1M"],
    ["benchmarks/eval_speed.py", "--sizes", "10k,80k", "--sample", "1000"],
    ["benchmarks/gensim_compare.py", "--datasets", "mammals", "--epochs", "50"],
    ["benchmarks/scaling.py", "--sizes", "10k,80k,300k,1M"],
    ["benchmarks/inference.py", "--new", "10000", "--repeats", "5"],
]
#: scripts that take --device (the others time CPU-only code)
DEVICE_AWARE = {"gensim_compare", "scaling", "inference"}


def _name(script) -> str:
    return Path(script[0]).stem


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
    args = ap.parse_args(argv)

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
    for script in SCRIPTS:
        key = script[0]
        if wanted is not None and _name(script) not in wanted:
            if key in old:
                sections[key] = old[key]
            continue
        if args.device and _name(script) in DEVICE_AWARE:
            script = [*script, "--device", args.device]
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
    parts += [sections[s[0]] for s in SCRIPTS if s[0] in sections]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts).rstrip() + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
