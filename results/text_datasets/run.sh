#!/usr/bin/env bash
# RAMEN against the features-only baseline on the real taxonomies with text
# features (all-MiniLM-L6-v2 over each node's text), 10% of the leaves held out
# (inductive placement), seed 0.  Run from the repository root:
#   bash results/text_datasets/run.sh            # all three kinds of run
#   ONLY=ramen_text bash results/text_datasets/run.sh
# Runs: <ds>_features (cosine of the raw text vectors, nothing trained),
# <ds>_ramen_text (RAMEN with its preset for text features: residual tower at the
# text geometry, dim 384, Adam 3e-5, epoch chosen on validation parent MRR), and
# <ds>_ramen (RAMEN trained from scratch through a 10-d bottleneck: the preset of
# the first round, spelled out so the run stays reproducible), and <ds>_hgcn (HGCN with
# its node preset: the graph as an input, through a 10-d bottleneck).
# DATASETS="wordnet-nouns" limits the datasets.
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=results/text_datasets
COMMON=(--features text --inductive-frac 0.1 --seed 0 --no-plots --no-save-embeddings
        --no-progress --out "$OUT")
SCRATCH=(--no-residual --dim 10 --lr 0.01 --epochs 30 --eval-every 5 --val-metric ap
         --patience 0)
for ds in ${DATASETS:-hpo icd10cm wordnet-nouns}; do
  for kind in features ramen_text ramen hgcn; do
    [ -n "${ONLY:-}" ] && [ "$ONLY" != "$kind" ] && continue
    case $kind in
      features)   args=(--encoder features) ;;
      ramen_text) args=(--encoder ramen) ;;
      ramen)      args=(--encoder ramen "${SCRATCH[@]}") ;;
      hgcn)       args=(--encoder hgcn) ;;
    esac
    $PY pipelines/run.py --dataset "$ds" "${COMMON[@]}" "${args[@]}" --name "${ds}_${kind}"
  done
done
