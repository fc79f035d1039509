#!/usr/bin/env bash
# The item -> category tables: one config per dataset (configs/items_<dataset>.yaml).
# Usage: bash results/items/run.sh [icd10cm hpo nouns]   (logs beside the tables)
set -euo pipefail
cd "$(dirname "$0")/../.."
for ds in "${@:-icd10cm hpo nouns}"; do
  for run in ${ONLY:-features knn ramen hgcn shallow twotower}; do
    .venv/bin/python pipelines/items.py --config configs/items_$ds.yaml --only $run \
      > results/items/$ds/$run.table.md 2> >(tr '\r' '\n' | grep -v "it/s]" > results/items/$ds/$run.log)
  done
done
