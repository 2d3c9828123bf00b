# The two commands of the README: `make demo` and `make test`. Each sets up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast ui lint bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/recon demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

ui: $(STAMP)
	$(BIN)/recon ui

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check . || true

clean:
	rm -rf .recon dbt_project/target dbt_project/logs dbt_project/models/staging/_generated
