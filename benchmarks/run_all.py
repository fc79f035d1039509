#!/usr/bin/env python
"""Run every benchmark script in turn and write their tables to results/benchmarks.md.

    python benchmarks/run_all.py            # what `make bench` runs

Each script prints its own table; this wrapper records the command, the
machine (cores, torch device) and the date beside each one.
"""
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [
    ["benchmarks/closure_speed.py", "--sizes", "80k,300k,1M"],
    ["benchmarks/eval_speed.py", "--sizes", "10k,80k", "--sample", "1000"],
]


def main() -> int:
    import torch
    device = "cuda: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    machine = f"{os.cpu_count()} cores, {platform.machine()}, device {device}, torch {torch.__version__}"
    parts = ["# Benchmarks", "", "Written by `python benchmarks/run_all.py` (`make bench`).", ""]
    status = 0
    for script in SCRIPTS:
        cmd = [sys.executable, *script]
        print("$", " ".join(script), flush=True)
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        status |= r.returncode
        parts += [f"## {script[0]}", "",
                  f"`python {' '.join(script)}` — {machine}, "
                  f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}", "",
                  "```", r.stdout.rstrip(), "```", ""]
    (ROOT / "results" / "benchmarks.md").write_text("\n".join(parts) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
