#!/usr/bin/env bash
# RAMEN against the features-only baseline on the real taxonomies with text
# features (all-MiniLM-L6-v2 over each node's text), 10% of the leaves held out
# (inductive placement), seed 0.  Run from the repository root:
#   bash results/text_datasets/run.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=results/text_datasets
for ds in hpo icd10cm wordnet-nouns; do
  for enc in features ramen; do
    $PY pipelines/run.py --dataset "$ds" --features text --encoder "$enc" --inductive-frac 0.1 \
      --seed 0 --no-plots --no-save-embeddings --no-progress --out "$OUT" \
      --name "${ds}_${enc}"
  done
done
