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
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from hgraph import manifolds as M
from hgraph.config import ITEM_KEYS, RunConfig, from_dict, nest_item_settings
from hgraph.errors import HGraphInputError
from hgraph.files import atomic_open, atomic_write_text  # noqa: F401  (re-exported)
from hgraph.eval.suite import SUMMARY_METRICS
from hgraph.nn import EncoderSpec, build_encoder

INCOMPLETE = "INCOMPLETE"



def atomic_write_json(path: Path, obj: Any) -> None:
    """``obj`` as strict JSON (sorted keys, indent 2), written atomically: NaN and
    +-inf, Python or numpy floats at any depth of dicts, lists, tuples and arrays,
    are written as ``null`` (a metric that does not apply), never as bare ``NaN``."""
    atomic_write_text(path, json.dumps(_json_default(obj), sort_keys=True, indent=2,
                                       default=_json_default, allow_nan=False) + "\n")


def _json_default(o):
    """``o`` in plain JSON values: numpy scalars and arrays as Python numbers and
    lists, paths as strings, a NaN or infinite float as None, dicts, lists and
    tuples element by element; a type JSON cannot hold raises TypeError.  Also
    ``json.dumps``' ``default``."""
    if isinstance(o, dict):
        return {k: _json_default(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_default(v) for v in o]
    if isinstance(o, np.ndarray):
        return _json_default(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, Path):
        return str(o)
    if o is None or isinstance(o, (str, int)):
        return o
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
        from hgraph.data.sampling import sampler_backend
        env["neighbor_sampler"] = sampler_backend()     # pyg-lib, torch-sparse or torch
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


def summary_row(cfg: RunConfig, run_dir: Path, agg: Dict[str, Dict[str, float]], metrics,
                device, git: str, **extra) -> Dict[str, Any]:
    """The summary row of a finished run (every task): identity, settings, and the
    mean and std of each of ``metrics`` the run has."""
    row = {"run_id": Path(run_dir).name, "date": time.strftime("%Y-%m-%d %H:%M"),
           "task": cfg.task, "dataset": cfg.data.dataset, "encoder": cfg.model.encoder,
           "manifold": cfg.model.manifold, "dim": cfg.model.dim, "loss": cfg.train.loss,
           "epochs": cfg.train.epochs, "seeds": len(cfg.seeds), "device": str(device),
           "world_size": 1, "git": git,
           # what chose the kept epoch (the item task: validation P@1)
           "selected_on": "p1" if cfg.task == "items" else cfg.train.val_metric, **extra}
    for k in metrics:
        if k in agg:
            row[k], row[k + "_std"] = agg[k]["mean"], agg[k]["std"]
    return row


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


# ------------------------------------------------------------------ run folders
@dataclass
class RunResult:
    """What :func:`run` returns: where it wrote, and the numbers."""
    run_dir: Path
    config: RunConfig
    metrics: Dict[str, Dict[str, float]]          # name -> {mean, std, n}
    per_seed: List[Dict[str, float]]
    dataset: Dict[str, Any]
    histories: List[List[Dict[str, float]]] = field(default_factory=list)

    def mean(self, key: str) -> float:
        return self.metrics[key]["mean"]


def default_run_name(cfg: RunConfig) -> str:
    """``<time>_<dataset>_<encoder>_<manifold>_d<dim>`` (a PATH dataset adds its file stem);
    an item run ``<time>_items_<dataset>_<encoder>_<manifold>`` (its width is the text's)."""
    name, _, arg = cfg.data.dataset.partition(":")
    ds = f"{name}-{Path(arg).stem}" if arg else name
    if cfg.task == "items":
        return f"{time.strftime('%Y%m%d-%H%M%S')}_items_{ds}_{cfg.model.encoder}_" \
               f"{cfg.model.manifold}"
    return (f"{time.strftime('%Y%m%d-%H%M%S')}_{ds}_{cfg.model.encoder}_"
            f"{cfg.model.manifold}_d{cfg.model.dim}")


def open_run_dir(cfg: RunConfig, command: str, resume_dir: Optional[Path] = None) -> Path:
    """A new run folder (INCOMPLETE, with ``config.json`` and ``command.txt``),
    or ``resume_dir`` with the resuming command appended to ``command.txt``."""
    if resume_dir is None:
        run_dir = new_run_dir(cfg.out, cfg.name or default_run_name(cfg))
        atomic_write_text(run_dir / "config.json", cfg.to_json() + "\n")
        atomic_write_text(run_dir / "command.txt", command + "\n")
        return run_dir
    run_dir = Path(resume_dir)
    first = (run_dir / "command.txt").read_text().splitlines()[0]
    atomic_write_text(run_dir / "command.txt", f"{first}\n# resumed: {command}\n")
    return run_dir


def checkpoint_path(run_dir: Path, seed: int) -> Path:
    return Path(run_dir) / f"checkpoint_seed{seed}.pt"


def write_checkpoint(path: Path, epoch: int, state: Dict[str, Any]) -> None:
    """``torch.save({"epoch": epoch, **state})`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        torch.save({"epoch": epoch, **state}, fh)


def read_checkpoint(path: Path, device=None) -> Optional[Dict[str, Any]]:
    """The checkpoint at ``path``, or None when there is none."""
    if not Path(path).exists():
        return None
    return torch.load(path, map_location=device, weights_only=False)


def resume_state(run_dir: Path, seed: int, device, resuming: bool, ctx=None):
    """(checkpoint path, its state or None) of ``seed`` in ``run_dir``; rank 0 reads
    (``ctx``: a :class:`hgraph.distributed.Context`) and says where a seed resumes."""
    ckpt = checkpoint_path(run_dir, seed)
    if not resuming:
        return ckpt, None
    state = ctx.from_main(read_checkpoint, ckpt, device) if ctx is not None else \
        read_checkpoint(ckpt, device)
    if state is not None and (ctx is None or ctx.is_main):
        print(f"[seed {seed}] resuming after epoch {state['epoch']}"
              + (f" + {state['step']} steps" if "step" in state else ""), file=sys.stderr)
    return ckpt, state


@contextmanager
def training_seed(run_dir: Path, seed: int, ckpt: Path):
    """Around one seed's training: a signal becomes :class:`RunInterrupted` (one line
    naming the checkpoint and the resume command), divergence names the last good
    checkpoint; the folder stays INCOMPLETE either way."""
    from hgraph.train.interrupt import RunInterrupted, TrainingDiverged, TrainingInterrupted
    try:
        yield
    except TrainingInterrupted as e:
        saved = f"checkpoint {ckpt}" if e.checkpointed and ckpt.exists() else \
            "no checkpoint written"
        raise RunInterrupted(f"interrupted ({e}, seed {seed}): {saved}; continue with: "
                             f"python pipelines/run.py --resume {run_dir}", e.signum) from None
    except TrainingDiverged as e:
        raise TrainingDiverged(f"training diverged (seed {seed}): {e}; "
                               f"{last_checkpoint_note(ckpt)}; {run_dir} stays "
                               f"INCOMPLETE") from None


def last_checkpoint_note(path: Path) -> str:
    """'last good checkpoint PATH (after epoch E)', or why there is none."""
    state = read_checkpoint(path, "cpu")
    if state is None:
        return "no checkpoint was written (see --checkpoint-every)"
    return f"last good checkpoint {path} (after epoch {state['epoch']})"


def read_run_config(run_dir) -> RunConfig:
    """The configuration of a run folder, from its ``config.json`` of any config
    version (:func:`hgraph.config.upgrade`), presets not applied again; an item
    run folder written before the one harness keeps flat item settings in
    ``metrics.json`` instead (read with the item preset, which holds the defaults
    those settings had)."""
    path = Path(run_dir) / "config.json"
    old = Path(run_dir) / "metrics.json"
    if not path.exists() and old.exists():
        flat = json.loads(old.read_text()).get("run", {}).get("config")
        if isinstance(flat, dict):
            return from_dict(nest_item_settings({k: v for k, v in flat.items()
                                                 if k in ITEM_KEYS}, str(old)), source=str(old))
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise HGraphInputError("not a run folder (no config.json)", file=str(run_dir)) from None
    except json.JSONDecodeError as e:
        raise HGraphInputError(f"config.json is not valid JSON: {e.msg}", file=str(path),
                               line=e.lineno) from None
    return from_dict(d, source=str(path), presets=False)


def load_run(path) -> Dict[str, Any]:
    """A finished run folder of any task and config version: ``path``, ``metrics``
    (name -> mean/std/n), ``per_seed``, ``run`` (what the run recorded), ``config``
    (a RunConfig), ``command``, ``seeds``.  The one reader of the report commands."""
    path = Path(path)
    if not (path / "metrics.json").exists():
        raise HGraphInputError("not a finished run folder (no metrics.json)", file=str(path))
    if (path / INCOMPLETE).exists():
        raise HGraphInputError("run is marked INCOMPLETE", file=str(path))
    m = json.loads((path / "metrics.json").read_text())
    cmd = (path / "command.txt").read_text().strip() if (path / "command.txt").exists() \
        else m.get("run", {}).get("command", "")
    return {"path": path, "metrics": m["mean_std"], "per_seed": m.get("per_seed", []),
            "run": m.get("run", {}), "config": read_run_config(path), "command": cmd,
            "seeds": m.get("run", {}).get("seeds", [])}


def resumable_config(run_dir) -> RunConfig:
    """The configuration of an interrupted run folder; an error for a finished one."""
    cfg = read_run_config(run_dir)
    if not (Path(run_dir) / INCOMPLETE).exists():
        raise HGraphInputError("this run finished; nothing to resume", file=str(run_dir))
    return cfg


def load_encoder(run_dir, seed: Optional[int] = None, device: str = "cpu"):
    """Rebuild the trained encoder of a finished run: ``(encoder, cfg)``.

    Reads ``config.json``, the dataset sizes from ``metrics.json`` and the
    evaluated weights ``model_seed<S>.pt`` (first seed by default).  An
    ``inductive`` encoder (ramen; hgcn with features) then places new nodes
    with :meth:`~hgraph.nn.base.Encoder.embed_new`.
    """
    run_dir = Path(run_dir)
    try:
        cfg = read_run_config(run_dir)
        info = json.loads((run_dir / "metrics.json").read_text())["run"]["dataset"]
    except FileNotFoundError as e:
        raise HGraphInputError("not a finished run folder", file=e.filename) from None
    seed = cfg.seeds[0] if seed is None else seed
    weights = run_dir / f"model_seed{seed}.pt"
    if not weights.exists():
        raise HGraphInputError("no trained weights for this seed", file=str(weights))
    manifold = M.make_manifold(cfg.model.manifold, cfg.model.curvature, cfg.model.learn_curvature)
    spec = EncoderSpec(cfg=cfg.model, manifold=manifold, num_nodes=int(info["num_nodes"]),
                       in_dim=info.get("features"))
    enc = build_encoder(spec).to(dtype=DTYPES[cfg.dtype])
    enc.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return enc.to(device).eval(), cfg


#: RunConfig.dtype -> torch dtype
DTYPES = {"float32": torch.float32, "float64": torch.float64}
