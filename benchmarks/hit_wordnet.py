"""External comparison: WordNet-noun subsumption in the protocol of Hierarchy
Transformers (He et al., NeurIPS 2024), scored with hgraph's RAMEN tower.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hit_wordnet.py --features name --epochs 0
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hit_wordnet.py --features name --epochs 5

The split is HiT's *mixed-hop prediction* split, rebuilt from WordNet 3.0
(:mod:`hgraph.data.hit_split`): 74,401 noun synsets, 75,850 direct hypernym
edges (instance hypernyms left out), 587,658 transitive pairs; training =
90% of the direct edges; validation / test = 5% of the direct edges plus 5%
of the transitive pairs each, every positive with 10 random or 10 hard
(sibling) negatives.

Encoder: frozen all-MiniLM-L6-v2 vectors of each synset's text (``--features
name``: the synset's name as HiT feeds it, ``"personal computer"``; ``gloss``:
hgraph's node text, lemmas plus definition) -> the RAMEN tower
(:class:`hgraph.nn.ramen.RamenEncoder` with the ``ramen``/``text`` preset's
shape: residual start, dim 384, 2 layers, hidden 64) -> Poincaré ball.  With
``--epochs 0`` the tower is at its initialisation, where hyperbolic distance
ranks exactly as the cosine of the MiniLM vectors and every norm is equal.

Training reads only the split's training edges.  Negatives for training are
drawn here, per step, among the entities of the training edges (never an
ancestor of the child in the full hierarchy, the project's filter for true
pairs): ``--train-negatives random`` (uniform), ``hard`` (siblings in the
training graph, filled up with uniform ones) or ``mixed`` (half each).
Loss ``--loss hit``: HiT's hyperbolic clustering triplet loss
``relu(d(c,p) - d(c,n) + margin)`` plus its centripetal loss
``relu(margin' + |p| - |c|)`` (|.| = hyperbolic distance to the origin);
``--loss ranking``: the project's ranking loss (softmax over -d, the ``ramen``
preset's loss) plus the same centripetal term.

``--text-layers K`` trains the sentence encoder's last K transformer layers too
(:class:`hgraph.tasks.item_models.TextHead` over cached token states of the five
frozen lower layers, rate ``--text-lr``), as HiT fine-tunes its transformer: each
step's children are encoded through the head now (gradients into it); parents and
negatives are read from the vectors of the last refresh (all entities re-encoded
after every epoch), so the positive and the negatives are equally stale and the
loss cannot be lowered by moving fresh points away from stale ones (the shortcut
measured on ICD-10-CM, issue 31); ``--refresh-every N`` re-encodes them every N steps
too.  Validation and test read the refreshed vectors.

Scoring is HiT's: ``s = d(c, p) + lambda * (|p| - |c|)``, lower = subsumption;
``lambda`` in 0.01, 0.11, ..., 4.91 (stopping at the first step that does
not improve) and the threshold on a grid of 0.01, both maximising F1 on the
validation pairs; F1 of the positive class on the test pairs at that choice.
Done separately for random and hard negatives; after every epoch, the epoch
with the best validation F1 (per negative kind) is the one reported.
Test F1 is also given on slices: direct edges, transitive pairs, and pairs
whose child occurs in no training edge (unseen).

Writes ``--out`` (JSON: settings, split sizes, per-epoch validation, test
metrics, wall times, threads, load averages).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hgraph import manifolds as M                                   # noqa: E402
from hgraph.data.hit_split import (build_hit_split, hit_entity_names,  # noqa: E402
                                   siblings_matrix, wordnet_hypernym_edges)
from hgraph.data.pairs import NegativeSampler                       # noqa: E402
from hgraph.data.text import encode_texts, node_texts, text_features  # noqa: E402
from hgraph.data.wordnet import load_wordnet                        # noqa: E402
from hgraph.losses import margin_hinge, ranking_loss                # noqa: E402
from hgraph.nn.ramen import RamenEncoder                            # noqa: E402

Tensor = torch.Tensor


def load() -> str:
    return open("/proc/loadavg").read().split()[:3].__str__()


# ------------------------------------------------------------------ scoring (HiT's protocol)
def f1_grid(scores: np.ndarray, labels: np.ndarray, granularity: int = 100):
    """Best F1 over thresholds k / granularity (k from int(min * g) to int(max * g) - 1,
    as HiT's grid), predicting positive where ``score <= t``.  Returns (f1, t);
    ties go to the larger threshold, as HiT's ``>=`` update does."""
    idx = np.argsort(scores, kind="stable")
    order = scores[idx]
    lab_sorted = labels[idx]
    cum = np.concatenate([[0], np.cumsum(lab_sorted)])
    ks = np.arange(int(scores.min() * granularity), int(scores.max() * granularity))
    if len(ks) == 0:
        ks = np.array([int(scores.min() * granularity)])
    t = ks / granularity
    pred = np.searchsorted(order, t, side="right")
    tp = cum[pred]
    P = labels.sum()
    f1 = np.where(pred + P > 0, 2 * tp / np.maximum(pred + P, 1), 0.0)
    best = np.flatnonzero(f1 == f1.max())[-1]
    return float(f1[best]), float(t[best])


def hit_score(dist: np.ndarray, nc: np.ndarray, np_: np.ndarray, lam: float) -> np.ndarray:
    return dist + lam * (np_ - nc)


def select(dist, nc, npar, labels):
    """HiT's search: centripetal weight lambda (0.01 + 0.1 j, stop at the first j
    that does not improve) and threshold, maximising validation F1."""
    best = (-1.0, None, None)
    for j in range(50):
        lam = (j + 0.1) / 10
        f1, t = f1_grid(hit_score(dist, nc, npar, lam), labels)
        if f1 >= best[0]:
            best = (f1, lam, t)
        else:
            break
    return {"f1": best[0], "lambda": best[1], "threshold": best[2]}


def metrics_at(dist, nc, npar, labels, lam, t):
    pred = hit_score(dist, nc, npar, lam) <= t
    tp = int((pred & (labels == 1)).sum())
    fp = int((pred & (labels == 0)).sum())
    fn = int((~pred & (labels == 1)).sum())
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    return {"f1": 2 * p * r / max(p + r, 1e-12), "precision": p, "recall": r,
            "accuracy": float((pred == (labels == 1)).mean()), "positives": int(labels.sum())}


@torch.no_grad()
def embed(model: RamenEncoder, x: Tensor, ids: np.ndarray, chunk: int = 8192) -> Tensor:
    """(N, D) points; rows not in ``ids`` stay zero (never read)."""
    model.eval()
    z = torch.zeros(x.shape[0], model.dim, dtype=x.dtype)
    for i in range(0, len(ids), chunk):
        j = torch.as_tensor(ids[i:i + chunk])
        z[j] = model(x[j])
    return z


def pair_stats(manifold, z: Tensor, pairs: np.ndarray, chunk: int = 32768):
    """(distance, |child|, |parent|) per pair, float64 arrays; |.| = distance to the origin."""
    norm = np.zeros(z.shape[0])
    used = np.unique(pairs)
    norm[used] = M.dist0(manifold, z[torch.as_tensor(used)]).double().numpy()
    d = np.empty(len(pairs))
    for i in range(0, len(pairs), chunk):
        b = torch.as_tensor(pairs[i:i + chunk])
        d[i:i + chunk] = M.dist(manifold, z[b[:, 0]], z[b[:, 1]]).double().numpy()
    return d, norm[pairs[:, 0]], norm[pairs[:, 1]]


def evaluate(model, manifold, x, split, unseen, kinds=("random", "hard")):
    """Validation choice and test metrics for each kind of negatives."""
    z = embed(model, x, split.entities)
    out = {}
    for kind in kinds:
        vp, vl, _ = split.val.pairs(kind)
        sel = select(*pair_stats(manifold, z, vp), vl)
        tp, tl, row = split.test.pairs(kind)
        d, nc, npar = pair_stats(manifold, z, tp)
        res = {"val": sel, "test": metrics_at(d, nc, npar, tl, sel["lambda"], sel["threshold"])}
        slices = {"direct": split.test.direct[row], "transitive": ~split.test.direct[row],
                  "unseen_child": unseen[tp[:, 0]]}
        for name, m in slices.items():
            res["test_" + name] = metrics_at(d[m], nc[m], npar[m], tl[m], sel["lambda"],
                                             sel["threshold"])
        out[kind] = res
    return out


# ------------------------------------------------------------------ training
class Negatives:
    """Training negatives from the training edges only (see the module docstring)."""

    def __init__(self, split, kind: str, k: int, seed: int):
        self.kind, self.k = kind, k
        train_nodes = np.unique(split.train.pos)
        self.sampler = NegativeSampler(split.closure, split.num_nodes, candidates=train_nodes)
        self.sib = siblings_matrix(split.train.pos, split.num_nodes, split.closure)
        self.rng = np.random.default_rng(seed)

    def _hard(self, child: np.ndarray, fill: np.ndarray, k: int) -> np.ndarray:
        out = fill[:, :k].copy()
        ip, ix = self.sib.indptr, self.sib.indices
        for i, u in enumerate(child.tolist()):
            s = ix[ip[u]:ip[u + 1]]
            if len(s):
                take = s[self.rng.permutation(len(s))[:k]]
                out[i, :len(take)] = take
        return out

    def __call__(self, child: np.ndarray):
        rnd, ok = self.sampler.sample(child, self.k, self.rng)
        if self.kind == "random":
            return rnd, ok
        if self.kind == "hard":
            return self._hard(child, rnd, self.k), ok
        h = self.k // 2
        return np.concatenate([self._hard(child, rnd[:, h:], self.k - h), rnd[:, :h]], 1), ok


class HeadFeatures:
    """``--text-layers K``: the trained top of the sentence encoder over cached token
    states of each entity's text (one row per distinct text), its vectors of every
    entity refreshed after each epoch (``x``)."""

    def __init__(self, names, k: int):
        from hgraph.data.text import token_states
        from hgraph.tasks.item_models import TextHead
        uniq = sorted(set(names))
        where = {t: i for i, t in enumerate(uniq)}
        self.row = torch.as_tensor([where[t] for t in names])
        st, ln = token_states(uniq, skip_last=k, progress=True)
        self.states, self.lengths = torch.as_tensor(st), torch.as_tensor(ln)
        self.head = TextHead.from_encoder("minilm", k)
        self.x = self.refresh()

    def vectors(self, ent: Tensor) -> Tensor:
        """(n, F) the head's vectors of entities ``ent`` now (with gradients)."""
        u = self.row[ent]
        return self.head(self.states[u].float(), self.lengths[u])

    @torch.no_grad()
    def refresh(self, chunk: int = 8192) -> Tensor:
        self.head.eval()
        n = len(self.lengths)
        v = torch.cat([self.head(self.states[a:a + chunk].float(), self.lengths[a:a + chunk])
                       for a in range(0, n, chunk)])
        self.head.train()
        self.x = v[self.row]
        return self.x


def train_epoch(model, manifold, opt, x, split, negs, args, epoch, live=None):
    """One epoch; ``live`` (a :class:`HeadFeatures`): the children through its head now,
    the other vectors re-encoded every ``args.refresh_every`` steps (0: after the epoch)."""
    model.train()
    rng = np.random.default_rng([args.seed, epoch])
    pos = split.train.pos[rng.permutation(len(split.train))]
    tot, n = 0.0, 0
    every = args.refresh_every
    for step, i in enumerate(range(0, len(pos), args.batch_size)):
        if live is not None and every and step and step % every == 0:
            x = live.refresh()
        b = pos[i:i + args.batch_size]
        neg, ok = negs(b[:, 0])
        ids, inv = np.unique(np.concatenate([b.reshape(-1), neg.reshape(-1)]), return_inverse=True)
        z = model(x[torch.as_tensor(ids)])
        inv = torch.as_tensor(inv)
        zc, zp = z[inv[:len(b) * 2:2]], z[inv[1:len(b) * 2:2]]
        if live is not None:
            zc = model(live.vectors(torch.as_tensor(b[:, 0])))
        zn = z[inv[len(b) * 2:]].view(len(b), neg.shape[1], -1)
        mask = torch.as_tensor(ok)
        if args.loss == "hit":
            d_pos = M.dist(manifold, zc, zp)
            d_neg = M.dist(manifold, zc.unsqueeze(1), zn)
            hinge = margin_hinge(d_pos.unsqueeze(1), d_neg, args.cluster_margin) * mask
            task = hinge.sum() / mask.sum().clamp_min(1)
        else:
            task = ranking_loss(manifold, zc, zp, zn, mask)
        centri = margin_hinge(M.dist0(manifold, zp), M.dist0(manifold, zc), args.centri_margin).mean()
        loss = task + args.centri_weight * centri
        opt.zero_grad()
        loss.backward()
        opt.step()
        tot += loss.item() * len(b)
        n += len(b)
    return tot / max(n, 1)


# ------------------------------------------------------------------ main
def features(tax, kind: str) -> np.ndarray:
    if kind == "gloss":
        return text_features(tax, "text", progress=False)
    names = hit_entity_names(tax)
    uniq = sorted(set(names))
    z = encode_texts(uniq, progress=False)
    row = {t: i for i, t in enumerate(uniq)}
    return z[np.fromiter((row[t] for t in names), dtype=np.int64, count=len(names))]


def git_hash() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", choices=["name", "gloss"], default="name")
    ap.add_argument("--epochs", type=int, default=5, help="0: the untrained tower")
    ap.add_argument("--loss", choices=["hit", "ranking"], default="hit")
    ap.add_argument("--train-negatives", choices=["random", "hard", "mixed"], default="mixed")
    ap.add_argument("--negatives", type=int, default=10, help="training negatives per positive")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--curvature", type=float, default=1.0)
    ap.add_argument("--cluster-margin", type=float, default=1.0)
    ap.add_argument("--centri-margin", type=float, default=0.1)
    ap.add_argument("--centri-weight", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=1, help="validate every N epochs (and the last)")
    ap.add_argument("--seed", type=int, default=0, help="tower init and training order")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--text-layers", type=int, default=0,
                    help="train the sentence encoder's last K layers too (0: frozen vectors)")
    ap.add_argument("--text-lr", type=float, default=2e-5, help="Adam rate of those layers")
    ap.add_argument("--refresh-every", type=int, default=0,
                    help="with --text-layers: re-encode every entity every N steps too "
                         "(0: after each epoch only)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rec = {"command": "OMP_NUM_THREADS=%s %s" % (os.environ.get("OMP_NUM_THREADS", "unset"),
                                                  " ".join([sys.executable] + sys.argv)),
           "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
           "load_start": load(), "git": git_hash(), "torch": torch.__version__,
           "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
           "nproc": os.cpu_count()}
    t0 = time.perf_counter()

    t = time.perf_counter()
    tax = load_wordnet("nouns")
    split = build_hit_split(wordnet_hypernym_edges(tax), tax.num_nodes, seed=args.split_seed)
    unseen = split.unseen()
    rec["split"] = split.summary()
    rec["wall_split_s"] = time.perf_counter() - t
    print("split", rec["split"], f"{rec['wall_split_s']:.1f}s", flush=True)

    t = time.perf_counter()
    live = None
    if args.text_layers:
        names = hit_entity_names(tax) if args.features == "name" else node_texts(tax)
        live = HeadFeatures(names, args.text_layers)
        x = live.x
    else:
        x = torch.as_tensor(features(tax, args.features), dtype=torch.float32)
    rec["wall_features_s"] = time.perf_counter() - t

    manifold = M.make_poincare(args.curvature)
    model = RamenEncoder(manifold, dim=x.shape[1], in_dim=x.shape[1], hidden=args.hidden,
                         layers=args.layers, residual=True)
    t = time.perf_counter()
    init = evaluate(model, manifold, x, split, unseen)
    rec["untrained"] = init
    rec["wall_eval_s"] = time.perf_counter() - t
    print("untrained", {k: (round(v["val"]["f1"], 4), round(v["test"]["f1"], 4))
                        for k, v in init.items()}, f"eval {rec['wall_eval_s']:.1f}s", flush=True)

    best = {k: {"epoch": 0, **init[k]} for k in init}
    rec["epochs"] = []
    if args.epochs > 0:
        negs = Negatives(split, args.train_negatives, args.negatives, args.seed)
        groups = [{"params": list(model.parameters()), "lr": args.lr}]
        if live is not None:
            groups.append({"params": list(live.head.parameters()), "lr": args.text_lr})
        opt = torch.optim.Adam(groups, lr=args.lr)
        t_train = 0.0
        for ep in range(1, args.epochs + 1):
            t = time.perf_counter()
            loss = train_epoch(model, manifold, opt, x, split, negs, args, ep, live)
            if live is not None:
                x = live.refresh()
            dt = time.perf_counter() - t
            t_train += dt
            if ep % args.eval_every and ep != args.epochs:
                print(json.dumps({"epoch": ep, "loss": round(loss, 4), "wall_s": round(dt, 1)}),
                      flush=True)
                continue
            ev = evaluate(model, manifold, x, split, unseen)
            e = {"epoch": ep, "loss": loss, "wall_s": dt, "load": load(),
                 "scale": model.log_scale.exp().item(),
                 **{f"val_f1_{k}": ev[k]["val"]["f1"] for k in ev},
                 **{f"test_f1_{k}": ev[k]["test"]["f1"] for k in ev}}
            rec["epochs"].append(e)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in e.items()}),
                  flush=True)
            for k in ev:
                if ev[k]["val"]["f1"] > best[k]["val"]["f1"]:
                    best[k] = {"epoch": ep, **ev[k]}
        rec["wall_train_s"] = t_train
    rec["best"] = best
    rec["wall_total_s"] = time.perf_counter() - t0
    rec["load_end"] = load()
    print("best", {k: (v["epoch"], round(v["val"]["f1"], 4), round(v["test"]["f1"], 4))
                   for k, v in best.items()}, f"total {rec['wall_total_s']:.0f}s", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
