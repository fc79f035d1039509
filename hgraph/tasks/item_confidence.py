"""Confidence of a placement, calibrated on validation, and how well it is calibrated.

A model's scores of an item's top :data:`CONF_K` candidates (larger is better: a
trained model's ``-distance``, a baseline's cosine) become probabilities by a
softmax at temperature ``T``; the confidence of a placement is its probability.
``T`` is fitted on validation items so that the top-1 confidence matches how
often the top-1 is right (least binary cross-entropy; a search over log T, then
a golden-section refinement: one parameter, no optimiser library needed).  On
test: the expected calibration error (ECE, 10 equal-width bins) at the fitted
``T`` and at ``T = 1``, and a reliability plot.  ``min_confidence`` abstains
("none fits") below a threshold.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np

#: the candidates a confidence is spread over (fewer when there are fewer candidates)
CONF_K = 50
#: bins of the expected calibration error and the reliability plot
BINS = 10


def top_logits(model, data, items: np.ndarray, k: int = CONF_K) -> Tuple[np.ndarray, np.ndarray]:
    """(scores (n, k) best first, candidate ids (n, k)) of items ``items``."""
    k = min(k, len(data.cand))
    vals, ids = [], []
    # no items (no validation items): nothing to score
    for v, j in (model.top_scores(data, items, k) if len(items) else ()):
        vals.append(v.double().cpu().numpy())
        ids.append(data.cand[j.cpu().numpy()])
    if not vals:
        return np.zeros((0, k)), np.zeros((0, k), dtype=np.int64)
    return np.concatenate(vals), np.concatenate(ids)


def probabilities(scores: np.ndarray, temperature: float, over: int = 0) -> np.ndarray:
    """(n, k) softmax of ``scores / temperature`` (rows best first), normalised over the
    first ``over`` columns (0: all), as the confidence was calibrated: columns past them
    get the probability they would have beside those."""
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e[:, :over or None].sum(axis=1, keepdims=True)


def _bce(scores: np.ndarray, correct: np.ndarray, temperature: float) -> float:
    p = np.clip(probabilities(scores, temperature)[:, 0], 1e-12, 1 - 1e-12)
    return float(-np.mean(correct * np.log(p) + (1 - correct) * np.log(1 - p)))


def fit_temperature(scores: np.ndarray, correct: np.ndarray) -> float:
    """The temperature whose top-1 probabilities best predict ``correct`` (n,) bools
    (1.0 when there is nothing to fit on)."""
    correct = np.asarray(correct, dtype=float)
    if len(correct) == 0 or scores.shape[1] < 2:
        return 1.0
    grid = np.logspace(-4, 3, 71)
    losses = [_bce(scores, correct, t) for t in grid]
    i = int(np.argmin(losses))
    lo, hi = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, len(grid) - 1)])
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = _bce(scores, correct, math.exp(a)), _bce(scores, correct, math.exp(b))
    for _ in range(40):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = _bce(scores, correct, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = _bce(scores, correct, math.exp(b))
    return float(math.exp((lo + hi) / 2))


def reliability(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> Dict[str, np.ndarray]:
    """Per equal-width confidence bin: count, mean confidence, accuracy."""
    conf, correct = np.asarray(conf, dtype=float), np.asarray(correct, dtype=float)
    b = np.minimum((conf * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins)
    s_conf = np.bincount(b, weights=conf, minlength=bins)
    s_acc = np.bincount(b, weights=correct, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"n": n, "conf": s_conf / n, "acc": s_acc / n}


def ece(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: sum over bins of |accuracy - confidence| x share."""
    r = reliability(conf, correct, bins)
    ok = r["n"] > 0
    if not ok.any():
        return float("nan")
    return float(np.sum(np.abs(r["acc"][ok] - r["conf"][ok]) * r["n"][ok]) / r["n"].sum())


def plot_reliability(path: Path, curves: Sequence[Tuple[str, np.ndarray, np.ndarray]],
                     title: str = "") -> None:
    """Reliability diagram: accuracy against confidence per bin, one line per
    ``(label, confidences, correct)``, the diagonal for perfect calibration."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--", label="perfect")
    for label, conf, correct in curves:
        r = reliability(conf, correct)
        ok = r["n"] > 0
        ax.plot(r["conf"][ok], r["acc"][ok], marker="o",
                label=f"{label} (ECE {ece(conf, correct):.3f})")
    ax.set_xlabel("confidence of the top-1 category")
    ax.set_ylabel("share of top-1s that are right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def calibrate(model, data, val: np.ndarray, test: np.ndarray):
    """Fit the temperature on validation items ``val``; score test items ``test``.
    -> (metrics: conf_temperature, ece, ece_t1, conf_val_items; arrays: conf (test
    top-1 confidence at the fitted T), conf_t1, conf_correct)."""
    def right(items, ids):
        return np.array([np.isin(ids[r, 0], data.truth[i]) for r, i in enumerate(items)],
                        dtype=bool)
    s_val, id_val = top_logits(model, data, val)
    t = fit_temperature(s_val, right(val, id_val))
    s_test, id_test = top_logits(model, data, test)
    ok = right(test, id_test)
    conf = probabilities(s_test, t)[:, 0] if len(test) else np.zeros(0)
    conf1 = probabilities(s_test, 1.0)[:, 0] if len(test) else np.zeros(0)
    m = {"conf_temperature": t, "ece": ece(conf, ok), "ece_t1": ece(conf1, ok),
         "conf_val_items": int(len(val))}
    return m, {"conf": conf, "conf_t1": conf1, "conf_correct": ok}


__all__ = ["CONF_K", "BINS", "top_logits", "probabilities", "fit_temperature", "reliability",
           "ece", "plot_reliability", "calibrate"]
