"""Run folders and the results summary.

* A run folder ``results/<run_id>/`` is created only after the input has been
  read and validated (bad input writes nothing).  While the run is going it
  holds a file ``INCOMPLETE``; it is removed as the last step, so a crashed
  run is recognisable and adds no summary row.
* Files are written atomically (temp file in the same folder + rename).
* ``results/summary.csv`` gets one row per finished run, appended under a
  file lock (two concurrent runs are safe), and ``results/summary.md`` is
  regenerated from it.
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import numpy as np

INCOMPLETE = "INCOMPLETE"

#: columns of summary.csv, in order (metrics are "mean" and "mean_std" pairs)
SUMMARY_METRICS = ("lp_roc_auc", "lp_ap", "parent_mrr", "parent_hits@10", "recon_mean_rank",
                   "recon_map", "spearman_norm_level", "inductive_mrr", "inductive_hits@10",
                   "train_time_s", "embed_time_s", "infer_10k_s")


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)      # mkstemp creates 0600; results are for reading
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, sort_keys=True, indent=2, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def git_hash(cwd: Optional[str] = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd or os.getcwd(),
                             capture_output=True, text=True, timeout=5)
        h = out.stdout.strip()
        if not h:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd or os.getcwd(), capture_output=True, text=True, timeout=5)
        return h + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment(device) -> Dict[str, Any]:
    import geoopt
    import torch
    import torch_geometric
    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "geoopt": geoopt.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if getattr(device, "type", str(device)) == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    try:
        import torch_geometric.typing as t
        env["neighbor_sampler"] = ("pyg-lib" if t.WITH_PYG_LIB else
                                   "torch-sparse" if t.WITH_TORCH_SPARSE else "none")
    except Exception:  # pragma: no cover
        pass
    return env


def peak_memory_mb(device=None) -> Dict[str, float]:
    import resource
    import torch
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if device is not None and getattr(device, "type", "") == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    return out


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80] or "run"


def new_run_dir(out: str, name: str) -> Path:
    """Create ``out/<name>`` (suffixing -2, -3, ... if taken) with an INCOMPLETE marker."""
    base = Path(out)
    base.mkdir(parents=True, exist_ok=True)
    stem = slug(name)
    for i in range(1, 1000):
        d = base / (stem if i == 1 else f"{stem}-{i}")
        try:
            d.mkdir()
        except FileExistsError:
            continue
        (d / INCOMPLETE).write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
        return d
    raise RuntimeError(f"could not create a run folder under {base}")


def mark_complete(run_dir: Path) -> None:
    p = Path(run_dir) / INCOMPLETE
    if p.exists():
        p.unlink()


def aggregate(per_seed: List[Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    """mean and (sample) std over seeds of every numeric metric."""
    keys = sorted({k for m in per_seed for k, v in m.items() if isinstance(v, (int, float))
                   and not isinstance(v, bool)})
    out = {}
    for k in keys:
        vals = np.array([m[k] for m in per_seed if k in m and m[k] is not None], dtype=float)
        if len(vals) == 0:
            continue
        out[k] = {"mean": float(vals.mean()),
                  "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                  "n": int(len(vals))}
    return out


def fmt(mean: Optional[float], std: Optional[float] = None, digits: int = 3) -> str:
    if mean is None or (isinstance(mean, float) and np.isnan(mean)):
        return "–"
    if std is None or std == 0:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def append_summary(out: str, row: Dict[str, Any]) -> None:
    """Append one row to out/summary.csv under a lock; regenerate summary.md."""
    import pandas as pd
    from filelock import FileLock

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "summary.csv"
    with FileLock(str(out_dir / ".summary.lock"), timeout=120):
        if csv_path.exists() and csv_path.stat().st_size > 0:
            df = pd.read_csv(csv_path)
            df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
        else:
            df = pd.DataFrame([row])
        atomic_write_text(csv_path, df.to_csv(index=False))
        atomic_write_text(out_dir / "summary.md", summary_markdown(df))


def summary_markdown(df) -> str:
    cols = ["run_id", "dataset", "encoder", "manifold", "dim", "seeds"]
    lines = ["# Runs", "",
             "One row per finished run (mean ± std over seeds). Written by "
             "`hgraph.results.append_summary`; regenerate by re-running the commands in "
             "each run folder's `command.txt`.", ""]
    mets = [m for m in SUMMARY_METRICS if m in df.columns]
    header = cols + mets
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for _, r in df.iterrows():
        cells = [str(r.get(c, "")) for c in cols]
        for m in mets:
            std = r.get(m + "_std")
            mean = r.get(m)
            digits = 1 if m.endswith("_s") or m == "recon_mean_rank" else 3
            cells.append(fmt(None if mean is None or (isinstance(mean, float) and np.isnan(mean))
                             else float(mean),
                             None if std is None or (isinstance(std, float) and np.isnan(std))
                             else float(std), digits))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
