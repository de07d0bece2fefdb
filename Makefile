# flower-dagster: `make dev` runs the product on the demo warehouse, `make test` tests it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 3000
DEV_DAGSTER_HOME ?= $(CURDIR)/dagster_home
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
# The demo's calendar ends where its data ends (flower_dagster/demo/data.py DEMO_END), so the UI's
# partition lists and Materialize dialog, which open on the last 90 days, open on the demo data.
# Only the demo targets set it; a team's flower.yaml has no partitions.end.
DEMO_PARTITION_END ?= 2024-03-31
# Two workers, one test file each at a time: every worker builds its own demo warehouse. Files
# go out in collection order, which tests/conftest.py sorts longest first (LONGEST_FILES_FIRST):
# xdist's default order, most tests first, would leave the long one-test suites for the end.
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder --durations=15

.PHONY: help setup prepare demo-data dev demo test test-fast lint format lock test-latest clean test-spark \
	lint-models pr-body ci-base-manifest ci-build-modified admin docs-screenshots bench

help:
	@echo "make dev        set up, build the dbt manifest, load the demo data, start Dagster at http://$(HOST):$(PORT)"
	@echo "make demo       the repair story with the real Dagster daemon (a few minutes, then it stops)"
	@echo "make admin      the backfill admin for model authors, next to make dev (docs/backfills.md)"
	@echo "make test       set up and run the whole test suite (with lint)"
	@echo "make test-fast  the tests without the slow end-to-end suites"
	@echo "make test-operations  random sequences of operations against the repair rule (FLOWER_OPERATIONS_SEEDS=20, FLOWER_OPERATIONS_DEMO_SEEDS=3)"
	@echo "make bench      the benchmarks: docs/benchmarks.md and its figures (~15 minutes)"
	@echo "make test-latest  the tests on the newest allowed Dagster/dbt releases (.venv-latest)"
	@echo "make test-spark the demo on Spark (dbt-spark session, a local JVM), compared with DuckDB"
	@echo "make lint       ruff check and ruff format --check"
	@echo "make lint-models  flower lint of the dbt models (CHANGED_SINCE=origin/main, LINT_FORMAT=github)"
	@echo "make pr-body PR_BODY_FILE=body.md   check a PR description against the PR template"

# uv installs the exact versions of uv.lock into .venv. A machine without uv gets it in
# .tools/ from the package registry (a fresh machine has Python, pip, make and git).
UV_VERSION := 0.13.8
UV ?= $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
EXTRAS ?= --extra dev --extra spark

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet uv==$(UV_VERSION)

# The venv follows the lock file: re-synced when pyproject.toml or uv.lock change.
$(BIN)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen $(EXTRAS)
	@touch $@

setup: $(BIN)/.installed

prepare: setup
	$(BIN)/flower prepare

demo-data: setup
	$(BIN)/flower demo load

dev: prepare demo-data
	@echo "Dagster UI: http://$(HOST):$(PORT)  (DAGSTER_HOME=$(DEV_DAGSTER_HOME))"
	FLOWER_PARTITION_END=$(DEMO_PARTITION_END) DAGSTER_HOME=$(DEV_DAGSTER_HOME) \
	  $(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

demo: setup
	$(BIN)/flower demo run

# The backfill admin (docs/backfills.md), in another terminal next to `make dev`: it talks to
# that Dagster (admin.dagster_graphql_url), reads why runs failed from its instance
# (DAGSTER_HOME) and listens on admin.host:admin.port of flower.yaml. It prints a new token for
# the demo author jimin and serves a copy of access.yaml with it (the tracked file unchanged).
DEMO_ACCESS := $(DEV_DAGSTER_HOME)/demo-access.yaml
DEMO_AUTHOR ?= jimin
admin: setup
	$(BIN)/flower admin demo-token $(DEMO_AUTHOR) --out $(DEMO_ACCESS)
	FLOWER_PARTITION_END=$(DEMO_PARTITION_END) DAGSTER_HOME=$(DEV_DAGSTER_HOME) \
	  $(BIN)/flower admin --access-file $(DEMO_ACCESS)

# The screenshots of docs/backfills.md, from the running demo in headless Chromium.
docs-screenshots: setup
	FLOWER_SCREENSHOTS=$(CURDIR)/docs/images $(BIN)/python -m pytest -q tests/test_admin_browser.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# `flower lint` (docs/lint.md). CI: make lint-models CHANGED_SINCE=origin/main LINT_FORMAT=github
CHANGED_SINCE ?=
LINT_FORMAT ?= text
lint-models: setup
	$(BIN)/flower lint $(if $(CHANGED_SINCE),--changed-since $(CHANGED_SINCE)) --format $(LINT_FORMAT)

PR_BODY_FILE ?= pr_body.md
pr-body: setup
	$(BIN)/flower lint --pr-body $(PR_BODY_FILE) --format $(LINT_FORMAT)

# `dbt build --select state:modified+` compares the project with a manifest of what is deployed.
# That state is the manifest of the merge base with BASE (main is what is deployed), parsed
# from a git worktree of that commit, so CI needs no artifact store. The build runs on a fresh
# DuckDB with the demo raw data; `+state:modified+` also builds the modified models' parents,
# which an empty warehouse does not have yet.
BASE ?= origin/main
CI_DIR ?= /tmp/flower-ci-state
DBT_DIR := $(CURDIR)/dbt_project
ci-base-manifest: setup
	rm -rf $(CI_DIR) && mkdir -p $(CI_DIR)
	git worktree add --detach $(CI_DIR)/base $$(git merge-base $(BASE) HEAD)
	cd $(CI_DIR)/base/dbt_project && $(BIN)/dbt parse --target-path $(CI_DIR)/state --profiles-dir $(DBT_DIR) --quiet
	git worktree remove --force $(CI_DIR)/base

ci-build-modified: ci-base-manifest
	FLOWER_DUCKDB_PATH=$(CI_DIR)/warehouse.duckdb $(BIN)/flower demo load
	cd $(DBT_DIR) && FLOWER_DUCKDB_PATH=$(CI_DIR)/warehouse.duckdb $(BIN)/dbt build \
	  --select +state:modified+ --state $(CI_DIR)/state --profiles-dir $(DBT_DIR) --target-path $(CI_DIR)/target

# pytest exits 5 when it collected no test: that is a failure here, said plainly.
test: setup lint
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# The randomized operations tests with many seeds (`make test` runs a few); a failure prints its
# seed and operations. The Python graph first (seconds a sequence), then the demo project with
# real dbt and concurrent run processes (minutes a sequence).
FLOWER_OPERATIONS_SEEDS ?= 20
FLOWER_OPERATIONS_STEPS ?= 10
FLOWER_OPERATIONS_DEMO_SEEDS ?= 3
FLOWER_OPERATIONS_DEMO_STEPS ?= 8
test-operations: setup
	FLOWER_OPERATIONS_SEEDS=$(FLOWER_OPERATIONS_SEEDS) FLOWER_OPERATIONS_STEPS=$(FLOWER_OPERATIONS_STEPS) \
	  $(BIN)/python -m pytest tests/test_operations_random.py -p no:xdist -s -q
	FLOWER_OPERATIONS_DEMO_SEEDS=$(FLOWER_OPERATIONS_DEMO_SEEDS) \
	  FLOWER_OPERATIONS_DEMO_STEPS=$(FLOWER_OPERATIONS_DEMO_STEPS) \
	  $(BIN)/python -m pytest tests/test_operations_demo.py -p no:xdist -s -q -p no:logging

# The Spark suite alone (`make test` runs it too): Java 17 and pyspark, no server.
test-spark: setup
	$(BIN)/python -m pytest -m spark

# Re-resolve uv.lock after changing dependencies in pyproject.toml (`make lock UPGRADE=1`
# moves every package to its newest allowed release).
lock: | $(UV)
	$(UV) lock $(if $(UPGRADE),--upgrade)

# The tests on the newest releases that pyproject.toml allows, in .venv-latest (uv.lock and
# .venv untouched): how to find out what the next Dagster or dbt release breaks.
LATEST_VENV := .venv-latest
test-latest: | $(UV)
	rm -rf $(LATEST_VENV)
	$(UV) venv --quiet --python $(PYTHON) $(LATEST_VENV)
	echo "dbt-core-experimental-parser; sys_platform == 'never'" > $(LATEST_VENV)/overrides.txt
	VIRTUAL_ENV=$(CURDIR)/$(LATEST_VENV) $(UV) pip install --quiet --upgrade \
	  --overrides $(LATEST_VENV)/overrides.txt -e '.[dev,spark]'
	$(LATEST_VENV)/bin/python -c "import dagster, dagster_dbt, dbt.version; \
	  print('dagster', dagster.__version__, 'dagster-dbt', dagster_dbt.__version__, 'dbt-core', dbt.version.__version__)"
	PATH=$(CURDIR)/$(LATEST_VENV)/bin:$$PATH $(LATEST_VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The benchmarks of docs/benchmarks.md (bench/run_all.py): generated projects of 200, 1,000 and
# 3,000 models in $(BENCH_WORK), results in bench/out/, the document and docs/images/bench_*.png.
BENCH_WORK ?= /tmp/flower-bench
bench: setup
	$(UV) sync --frozen $(EXTRAS) --extra bench
	FLOWER_BENCH_WORK=$(BENCH_WORK) $(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) $(LATEST_VENV) .tools dbt_project/target dbt_project/state dbt_project/logs
