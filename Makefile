# Two commands do all set-up on a fresh machine:
#   make run    -> create/reuse .venv, install, run the headline comparison (configs/headline.yaml:
#                  HGCN vs RAMEN placing HPO synonyms into HPO terms, one seed, about 1.5 min
#                  on 2 cores with a cold text cache)
#   make test   -> create/reuse .venv, install, run the test suite
#   make bench  -> run benchmarks/*.py, tables into results/benchmarks.md (~2 h on 2 cores;
#                  ARGS="--only scaling,inference" re-runs some, ARGS="--device cuda" on a GPU)
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
JOBS ?= 2

.PHONY: setup run test bench clean

setup:
	@HGRAPH_VENV=$(VENV) bash scripts/setup_env.sh

run: setup
	$(PY) pipelines/items.py --config configs/headline.yaml $(ARGS)

test: setup
	$(PY) -m pytest -n $(JOBS) -q $(ARGS)

bench: setup
	$(PY) benchmarks/run_all.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
