#!/usr/bin/env bash
# Create or reuse the project's virtual environment and install everything the
# pipeline and the tests need.  Idempotent: a second call with nothing changed
# takes about a second.  Used by `make run` and `make test`.
#
#   HGRAPH_VENV         where the venv lives (default: .venv in the repository)
#   HGRAPH_PYTHON       the interpreter that creates it (default: python3)
#   HGRAPH_TORCH_SPARSE=1  also build torch-scatter + torch-sparse (optional: PyG's
#                       compiled neighbour sampler; about 25 minutes on 2 cores the
#                       first time).  Without them hgraph samples neighbours with its
#                       own PyTorch sampler (hgraph/data/sampling.py).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HGRAPH_VENV:-.venv}
PY=${HGRAPH_PYTHON:-python3}
STAMP="$VENV/.hgraph-installed"
SPARSE=${HGRAPH_TORCH_SPARSE:-0}
want=$( (cat setup.cfg pyproject.toml scripts/setup_env.sh; echo "torch-sparse=$SPARSE") \
       | sha1sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
log() { printf '[setup] %s\n' "$*" >&2; }
t0=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
P="$VENV/bin/python"
pipi() { "$P" -m pip install --disable-pip-version-check -q "$@"; }

# torch: keep an importable one (a CUDA user's); otherwise the pinned CPU build.
# A bare `pip install torch` would pull a multi-GB CUDA build.
if ! "$P" -c "import torch" >/dev/null 2>&1; then
  log "installing torch==2.13.0"
  pipi torch==2.13.0
fi
pipi "setuptools>=64" wheel numpy scipy

# PyG's NeighborLoader samples through pyg-lib or torch-sparse; where neither is
# importable hgraph uses its own PyTorch sampler, so both are optional.  pyg-lib has
# no wheel on every index and torch-sparse compiles against the installed torch
# (about 25 minutes on 2 cores, then from pip's wheel cache): opt in with
# HGRAPH_TORCH_SPARSE=1.
if [ "$SPARSE" = 1 ] && ! "$P" -c "import pyg_lib" >/dev/null 2>&1 && \
   ! "$P" -c "import torch_sparse, torch_scatter" >/dev/null 2>&1; then
  log "building torch-scatter and torch-sparse (first time: several minutes)"
  # their setup.py compiles one file at a time (ninja off), so the two packages
  # are built side by side to use two cores; neither needs the other to build
  pipi --no-build-isolation --no-deps torch-scatter & scatter=$!
  pipi --no-build-isolation --no-deps torch-sparse & sparse=$!
  wait "$scatter"
  wait "$sparse"
fi

log "installing hgraph and its dependencies (datasets and sentence encoder included)"
# torch is already installed above, so sentence-transformers' torch requirement is met
# and pip pulls no other build
pipi --no-build-isolation -e ".[dev,data]"

# WordNet 3.0 (Debian's wordnet-base) for the wordnet-* datasets: optional.
if [ ! -f /usr/share/wordnet/data.noun ] && command -v apt-get >/dev/null 2>&1 \
   && [ "$(id -u)" = 0 ]; then
  log "installing Debian's wordnet-base (WordNet 3.0) for the wordnet datasets"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base) \
    >/dev/null 2>&1 || log "wordnet-base not installed; wordnet-* datasets will say how"
fi

echo "$want" > "$STAMP"
log "ready in $(( $(date +%s) - t0 )) s ($("$P" -c 'import torch; print("torch", torch.__version__)'))"
