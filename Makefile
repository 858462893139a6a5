# Two commands do all set-up: `make run` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint typecheck pytest bench soak demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## make run: install, migrate, load demo data into its own database, serve on :8000.
## The demo database is ./tokenledger-demo.db, never the real one (TOKENLEDGER_DATABASE_URL).
DEMO_DB := --database-url sqlite:///./tokenledger-demo.db
run: $(STAMP)
	$(BIN)/tokenledger $(DEMO_DB) migrate
	$(BIN)/tokenledger $(DEMO_DB) demo --if-empty
	$(BIN)/tokenledger $(DEMO_DB) serve

## make test: install test tools (and Chromium / PostgreSQL if missing), run every check
test: $(TEST_STAMP)
	scripts/ensure-test-deps.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadgroup --durations=25

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

pytest: $(TEST_STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup

## make bench: the 10M-event benchmark (see docs/benchmarks.md)
bench: $(TEST_STAMP)
	scripts/ensure-test-deps.sh
	$(BIN)/python -m bench $(BENCH_ARGS)

## make soak: the long reliability variants
soak: $(TEST_STAMP)
	scripts/ensure-test-deps.sh
	TOKENLEDGER_SOAK=1 $(BIN)/pytest tests/reliability -m "slow or not slow" -p no:xdist --durations=25

demo: $(STAMP)
	$(BIN)/tokenledger $(DEMO_DB) demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
