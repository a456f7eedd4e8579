# The two commands of a fresh clone: `make run` and `make test` (each creates .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-faults lint format bench bench-quick install

# The environment: pinned by constraints.txt so a fresh install is reproducible.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/lrbench train

# The HTML report's test renders it in Debian's Chromium: installed here where we can (root
# with apt-get); elsewhere that one test skips and says why.
$(VENV)/.chromium: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: the report's screenshot test will skip"
	touch $@

# Lint first (CI runs `make test`, so it enforces ruff), then everything, the
# fault-injection suite included, on 2 pytest-xdist workers (pyproject.toml's addopts).
test: lint $(VENV)/.chromium
	$(BIN)/python -m pytest -q

# Only the real processes killed and interrupted, then resumed (docs/resuming.md "Checkpoints and
# resuming"), when working on them.
test-faults: $(STAMP)
	$(BIN)/python -m pytest -q -m faults

lint: $(STAMP)
	$(BIN)/ruff check lrbench tests bench
	$(BIN)/ruff format --check lrbench tests bench

format: $(STAMP)
	$(BIN)/ruff format lrbench tests bench
	$(BIN)/ruff check --fix lrbench tests bench

# Benchmarks need PyTorch (a bench-only dependency: the CPU build, pinned to the wheel this
# machine ships) and are never part of `make test`.
$(VENV)/.bench: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python bench/run.py

bench-quick: $(VENV)/.bench
	$(BIN)/python bench/run.py --quick
