# flower-dagster: `make dev` runs the product on the demo warehouse, `make test` tests it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 3000
DEV_DAGSTER_HOME ?= $(CURDIR)/dagster_home
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
# Two workers, one test file each at a time: every worker builds its own demo warehouse.
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: help setup prepare demo-data dev demo test test-fast lint format constraints clean

help:
	@echo "make dev        set up, build the dbt manifest, load the demo data, start Dagster at http://$(HOST):$(PORT)"
	@echo "make demo       the repair story with the real Dagster daemon (a few minutes, then it stops)"
	@echo "make test       set up and run the whole test suite (with lint)"
	@echo "make test-fast  the tests without the slow end-to-end suites"
	@echo "make lint       ruff check and ruff format --check"

# The venv is rebuilt when the dependency list changes.
$(BIN)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

setup: $(BIN)/.installed

prepare: setup
	$(BIN)/flower prepare

demo-data: setup
	$(BIN)/flower demo load

dev: prepare demo-data
	@echo "Dagster UI: http://$(HOST):$(PORT)  (DAGSTER_HOME=$(DEV_DAGSTER_HOME))"
	DAGSTER_HOME=$(DEV_DAGSTER_HOME) $(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

demo: setup
	$(BIN)/flower demo run

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# pytest exits 5 when it collected no test: that is a failure here, said plainly.
test: setup lint
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Regenerate the pinned set after changing dependencies in pyproject.toml.
constraints: setup
	{ head -2 constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^flower-dagster'; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/state dbt_project/logs
