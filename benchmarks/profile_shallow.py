"""Where a shallow training step spends its time: the training loop's stages
timed one by one on the WordNet-nouns closure (or mammals).

    .venv/bin/python benchmarks/profile_shallow.py --batch-sizes 1024,4096 --steps 100

The stages are those of :func:`hgraph.train._train` for ``--encoder
shallow``, called the same way: negative sampling, the step's unique nodes,
the forward pass (table lookup, the three gathers, the ranking loss through
the ball distance), the backward pass, the finite-gradient guard and the
optimiser step (:mod:`hgraph.optim`'s row-sparse Riemannian Adam, or
``--optimizer geoopt`` for geoopt's ``SparseRiemannianAdam``, the update
it replaces).  Each stage is timed with ``perf_counter`` around it over
``--steps`` steps after ``--warmup`` steps; the table gives milliseconds
per step, the share of the step, and the implied pairs per second.  One
torch thread by default (as in gensim_compare.py).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def profile(tax, pairs, sampler, batch, negatives, steps, warmup, optimizer, seed=0):
    import geoopt
    import numpy as np
    import torch
    from hgraph import manifolds as M
    from hgraph.config import TrainConfig
    from hgraph.losses import LOSSES
    from hgraph.nn import ShallowEncoder
    from hgraph.train import _grads_finite, make_optimizer

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ball = M.make_manifold("poincare", 1.0)
    model = ShallowEncoder(ball, tax.num_nodes, 10).to(torch.float64)
    with torch.no_grad():        # a spread-out table, like one a few epochs into training
        model.weight.copy_(M.expmap0(ball, torch.randn_like(model.weight)))
    if optimizer == "geoopt":
        opt = geoopt.optim.SparseRiemannianAdam([model.weight], lr=0.05)
    else:
        opt = make_optimizer(model, TrainConfig(lr=0.05), 0.05)
    loss_fn = LOSSES["ranking"]
    stages = ["sample negatives", "unique nodes", "forward", "backward", "finite check",
              "optimiser step"]
    acc = dict.fromkeys(stages, 0.0)
    rows = 0
    perm = rng.permutation(len(pairs))
    for s in range(warmup + steps):
        t = [time.perf_counter()]
        b = pairs[perm[(s * batch) % len(pairs):][:batch]]
        u, v = b[:, 0], b[:, 1]
        neg, mask = sampler.sample(u, negatives, rng)
        t.append(time.perf_counter())
        ids_np, inv = np.unique(np.concatenate([u, v, neg.ravel()]), return_inverse=True)
        ids = torch.from_numpy(ids_np)
        B = len(u)
        iu = torch.from_numpy(inv[:B])
        iv = torch.from_numpy(inv[B:2 * B])
        ineg = torch.from_numpy(inv[2 * B:].reshape(neg.shape))
        t.append(time.perf_counter())
        z = model(None, None, ids)
        loss = loss_fn(ball, z[iu], z[iv], z[ineg], torch.from_numpy(mask))
        t.append(time.perf_counter())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t.append(time.perf_counter())
        ok = _grads_finite(model)
        t.append(time.perf_counter())
        opt.step()
        t.append(time.perf_counter())
        assert ok
        if s >= warmup:
            rows += len(ids_np)
            for name, a, b_ in zip(stages, t[:-1], t[1:]):
                acc[name] += b_ - a
    per_step = {k: v / steps * 1e3 for k, v in acc.items()}
    return per_step, rows / steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", choices=["nouns", "mammals"], default="nouns")
    ap.add_argument("--batch-sizes", default="1024,4096")
    ap.add_argument("--negatives", type=int, default=10)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--optimizer", default="hgraph,geoopt",
                    help="comma-separated: hgraph (hgraph.optim), geoopt (SparseRiemannianAdam)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    sys.path.insert(0, ROOT)
    import torch
    from hgraph.data.pairs import NegativeSampler
    from hgraph.data.taxonomy import csr_pairs
    from hgraph.data.wordnet import load_wordnet
    torch.set_num_threads(args.threads)
    tax = load_wordnet(args.dataset)
    pairs = csr_pairs(tax.closure)
    # negatives for u exclude u's ancestors only (the library default, neg_filter
    # "ancestors", as poincare-embeddings): u's descendants are non-positives in the
    # ranking, so training must push them behind u's ancestors
    sampler = NegativeSampler(tax.closure, tax.num_nodes)
    print(f"{args.dataset}: {tax.num_nodes:,} nodes, {len(pairs):,} closure pairs; dim 10, "
          f"{args.negatives} negatives, float64, {torch.get_num_threads()} thread(s); "
          f"ms per step, mean of {args.steps} steps after {args.warmup}")
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for optimizer in args.optimizer.split(","):
            per, rows = profile(tax, pairs, sampler, batch, args.negatives, args.steps,
                                args.warmup, optimizer)
            total = sum(per.values())
            print(f"\nbatch {batch}, optimiser {optimizer}: {rows:,.0f} unique rows per step, "
                  f"{total:.1f} ms per step = {batch / total * 1e3:,.0f} pairs/s")
            for name, ms in per.items():
                print(f"  {name:>18} {ms:>8.2f} ms {100 * ms / total:>5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
