# synthact: `make demo` (the whole pipeline on the embedded demo world) and `make test` (pytest, CPU).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DATA ?= data/demo
DEMO_RUNS ?= runs/demo
export HF_HUB_OFFLINE := 1

.PHONY: install test demo demo-data smoke smoke-data clean

install: $(VENV)/.installed

# Re-installs when pyproject.toml changes; torch comes from the machine's local wheel cache where present.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

test: install
	$(PY) -m pytest

# Synthetic phases train with UL (eps_i = 0.3 u_i), which needs scored clips. The demo world has no pretrained
# CLIP, so its sets are scored with the tiny random one: the code path runs, the uncertainties are noise.
SCORE_TINY = $(PY) -m generation score --arch synthact-tiny --pretrained none --frames 4 --no-progress

smoke-data: install
	$(PY) -m generation demo --out data/smoke --preset smoke
	$(SCORE_TINY) --manifest data/smoke/synthetic/ie/manifest.jsonl --labels data/smoke/labels.csv

# The headline command on tiny models and the demo world, in seconds.
smoke: smoke-data
	$(PY) train.py fit --config tasks/few_shot_k4.yaml --config configs/smoke.yaml

demo-data: install
	$(PY) -m generation demo --out $(DEMO_DATA) --preset demo
	for strategy in basic ie; do \
	  $(SCORE_TINY) --manifest $(DEMO_DATA)/synthetic/$$strategy/manifest.jsonl --labels $(DEMO_DATA)/labels.csv \
	    || exit 1; \
	done

# Prompts -> clips (Basic and IE) -> pre-train -> fine-tune 4-shot -> test on the held-out "real" style,
# next to a baseline without synthetic pre-training ("none": the pre-train phase runs 0 epochs).
DEMO_FIT = $(PY) train.py fit --config tasks/few_shot_k4.yaml --config configs/demo.yaml
demo: demo-data
	$(DEMO_FIT) --task.root $(DEMO_RUNS)/none --task.epochs.pretrain 0
	for strategy in basic ie; do \
	  $(DEMO_FIT) --task.root $(DEMO_RUNS)/$$strategy \
	    --data.synthetic_manifest $(DEMO_DATA)/synthetic/$$strategy/manifest.jsonl || exit 1; \
	done
	$(PY) -m tasks report $(DEMO_RUNS)/none/few_shot_k4 $(DEMO_RUNS)/basic/few_shot_k4 $(DEMO_RUNS)/ie/few_shot_k4
	@echo "TensorBoard logs: $(DEMO_RUNS)    view: $(VENV)/bin/tensorboard --logdir $(DEMO_RUNS)"

clean:
	rm -rf $(DEMO_RUNS) runs/smoke
