# Two commands: `make run` (set up, run the demo pipeline) and `make test` (set up, run the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export ASTRO_HOME ?= $(CURDIR)/.astro
# Real benchmark files beside the checkout (tests and benchmarks use them when present).
export ASTRO_DATA_DIR ?= $(if $(wildcard $(CURDIR)/../shared/data/math500.jsonl),$(abspath $(CURDIR)/../shared/data),)

.PHONY: setup run test test-fast ui bench clean

setup: $(STAMP)

# Reinstall only when the project's install inputs change; torch first so that the
# torch requirement of other packages is already met by the local CPU build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/astro run --recipe demo

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

ui: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/astro ui

clean:
	rm -rf .astro .dagster_home
