# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test install dev lint bench clean serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(DEVSTAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,prefect]"
	touch $(DEVSTAMP)

install: $(STAMP)

dev: $(DEVSTAMP)

## Run the main job on built-in synthetic data into ./outputs and the embedded warehouse.
demo: $(STAMP)
	$(BIN)/storecast demo --out outputs

## Install the dev extras and run the whole suite.
test: $(DEVSTAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(DEVSTAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/accuracy.py

serve: $(STAMP)
	$(BIN)/storecast serve

clean:
	rm -rf outputs .pytest_cache
