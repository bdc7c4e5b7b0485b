# synthact: `make demo` (the whole pipeline on the embedded demo world) and `make test` (pytest, CPU).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_RUNS ?= runs/demo
export HF_HUB_OFFLINE := 1

.PHONY: install lint test demo demo-data smoke smoke-data clean

install: $(VENV)/.installed

# Re-installs when pyproject.toml changes; torch comes from the machine's local wheel cache where present.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# ruff (lint + format check) and the import-layer contract (import-linter), both configured in pyproject.toml,
# before the tests: a style slip or a forbidden import fails in seconds.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

test: lint
	$(PY) -m pytest

# Synthetic phases train with UL (the module default), which needs scored clips. The smoke world has no pretrained
# CLIP, so its set is scored with the tiny random one: the code path runs, the uncertainties are noise.
SCORE_TINY = $(PY) -m generation score --arch synthact-tiny --pretrained none --frames 4 --no-progress

smoke-data: install
	$(PY) -m generation demo --out data/smoke --preset smoke
	$(SCORE_TINY) --manifest data/smoke/synthetic/ie/manifest.jsonl --labels data/smoke/labels.csv

# The headline command on tiny models and the demo world, in seconds.
smoke: smoke-data
	$(PY) train.py fit --config tasks/few_shot_k4.yaml --config configs/smoke.yaml

# The embedded demo world (generation/demo.py): labels, the held-out "real" style, Basic / IE / unreliable-IE sets and
# the stand-in CLIP's web split. The demo tasks read it from data/demo (tasks/demo_*.yaml).
demo-data: install
	$(PY) -m generation demo --out data/demo --preset demo --workers 2

# Through the product, as a user would type it (tasks/demo.py prints each command): the stand-in CLIP
# (train.py fit tasks/demo_scorer.yaml) -> generation score --arch demo on the unreliable set -> for 3 seeds
# train.py fit tasks/demo_{none,basic,ie,ie_ce,ie_ul}.yaml -> python -m tasks report -> the table and the claims
# from the runs' results.json, $(DEMO_RUNS)/summary.json and summary.png. Starts from a fresh $(DEMO_RUNS).
demo: demo-data
	$(PY) -m tasks.demo --root $(DEMO_RUNS) --fresh

clean:
	rm -rf $(DEMO_RUNS) runs/smoke
