"""Helpers shared by the benchmark scripts (run as `python benchmarks/<script>.py`)."""


def parse_size(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * mult)


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ used by the newer scripts
PER_ROOT_CHILD = 837.5    # generate_tree: expected nodes per root child with the default law


def root_children_for(size: int) -> int:
    """``root_children`` of :func:`hgraph.data.generate.generate_tree` giving ~``size`` nodes."""
    return max(1, round(size / PER_ROOT_CHILD))


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads)."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def measure(fn, sync=None):
    """Run ``fn()``: (result, wall s, CPU s, peak MiB over the RSS at the start).

    The peak is VmHWM after a reset through /proc/self/clear_refs (where Linux
    allows it; otherwise the process's peak so far).  ``sync`` (e.g. a CUDA
    synchronise) is called before each clock reading.
    """
    import time
    _reset_peak()
    before = _rss_kib("VmRSS")
    if sync:
        sync()
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    out = fn()
    if sync:
        sync()
    dt = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    return out, dt, cpu, max(0, _rss_kib("VmHWM") - before) / 1024.0


def peak_rss_mib() -> float:
    """Peak RSS of this process over its whole life (ru_maxrss), MiB."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_worker(cmd, env=None) -> dict:
    """Run ``cmd`` (a worker subprocess that prints ``RESULT <json>``) and return the json.

    Raises RuntimeError with the last line of stderr when the worker fails.
    """
    import json
    import subprocess
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        err = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise RuntimeError(f"worker {' '.join(cmd[1:])} failed (exit {proc.returncode}): "
                           + (err[-1] if err else "no output"))
    return json.loads(line[-1][len("RESULT "):])


def load_line() -> str:
    """The 1/5/15-minute load averages against the CPU count, for the table notes."""
    import os
    la = os.getloadavg()
    return (f"load average {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} (1/5/15 min) "
            f"on {os.cpu_count()} CPUs")


def fit_exponent(sizes, values) -> float:
    """Least-squares slope of log(value) against log(size): value ~ size ** slope."""
    import numpy as np
    x = np.log(np.asarray(sizes, dtype=float))
    y = np.log(np.asarray(values, dtype=float))
    if len(x) < 2 or np.ptp(x) == 0:
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


def sync_for(device: str):
    """A synchronise callable for timing on ``device`` (None on the CPU)."""
    if str(device).startswith("cuda"):
        import torch
        return torch.cuda.synchronize
    return None


def write_json(path, obj) -> None:
    """The ``--json`` output of every script: ``obj`` as indented, key-sorted JSON
    (nothing written when ``path`` is empty)."""
    if not path:
        return
    import json
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
