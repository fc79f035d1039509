#!/usr/bin/env bash
# The item -> category tables: one config per dataset (configs/items_<dataset>.yaml).
# Each trained run first runs its validation trials (the config's tune block, seed 0,
# resumable), then its seeds with the trial of best validation P@1 (whose seed-0 result
# is taken over, not recomputed).
# Usage: bash results/items/run.sh [icd10cm hpo nouns]   (logs beside the tables)
#        ONLY="ramen hgcn" bash results/items/run.sh icd10cm   (some runs only)
set -euo pipefail
cd "$(dirname "$0")/../.."
for ds in ${@:-icd10cm hpo nouns}; do
  for run in ${ONLY:-features knn ramen hgcn}; do
    .venv/bin/python pipelines/items.py --config configs/items_$ds.yaml --tune --only $run \
      > results/items/$ds/$run.table.md 2> >(tr '\r' '\n' | grep --line-buffered -v "it/s]" > results/items/$ds/$run.log)
  done
done
