# The README's two commands. Both set up the virtual environment first
# (tools/bootstrap_venv.sh: seconds when it is already up to date).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PLACE_BENCH := $(VENV)/bin/place-bench
DEMO_DIR ?= work/demo

.PHONY: setup demo test

setup:
	VENV=$(VENV) bash tools/bootstrap_venv.sh

## The main job on the embedded default (synthetic data, CPU).
demo: setup
	VENV=$(VENV) DEMO_DIR=$(DEMO_DIR) bash tools/demo.sh

## The test suite.
test: setup
	$(PYTHON) -m pytest -q
