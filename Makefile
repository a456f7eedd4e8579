# The two commands of a fresh clone: `make run` and `make test` (each creates .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-all lint format bench bench-quick install

# The environment: pinned by constraints.txt so a fresh install is reproducible.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/lrbench train

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check lrbench tests
	$(BIN)/ruff format --check lrbench tests

format: $(STAMP)
	$(BIN)/ruff format lrbench tests
	$(BIN)/ruff check --fix lrbench tests

# Benchmarks need PyTorch (a bench-only dependency: the CPU build, pinned to the wheel this
# machine ships) and are never part of `make test`.
$(VENV)/.bench: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python bench/run.py

bench-quick: $(VENV)/.bench
	$(BIN)/python bench/run.py --quick
