# Hustle backend. The two commands that matter: `make run` and `make test` (see README.md).
# Each does its own set-up: .venv, packages, and private PostgreSQL+PostGIS / Redis / S3 under
# .dev/ when DATABASE_URL / REDIS_URL / S3_ENDPOINT_URL are unset.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
BUF := node_modules/.bin/buf
# The TypeScript client's packages (clients/ts: connect-es, protoc-gen-es, tsc, its own Node).
CLIENT_TS := clients/ts/node_modules/.installed
# The released contract (hustle.v1 and hustle.v2) that `buf breaking` guards; see
# docs/VERSIONING.md, "Accepting a breaking change".
BASELINE := protos/released.binpb
# Load the private services' variables (written by scripts/services.sh) into a recipe's shell.
WITH_SERVICES := scripts/services.sh up && . .dev/env && export PATH="$(BIN):$$PATH" &&

.PHONY: help run test bench lint lint-protos breaking baseline lint-python lint-ops typecheck fmt protos dashboards promtool venv services stop status migrate worker constraints clean

help:
	@echo "make run     bring everything up (services, migrations, server, worker) and serve"
	@echo "make test    run the whole test suite on real services"
	@echo "make bench   load-test with ghz on a seeded database (BENCH_TASKS=1000000 for the large run)"
	@echo "make lint    buf lint + format + breaking, ruff lint + format check, mypy, promtool"
	@echo "make protos  regenerate hustle/, clients/ts/src/gen/ and the API reference (docs/api/) from protos/"
	@echo "make baseline  record protos/ as the released contract (ACCEPT_BREAKING=1 for a break)"
	@echo "make stop    stop the private services that make run / make test started"

$(STAMP): pyproject.toml constraints.txt
	scripts/venv.sh
	@touch $@

venv: $(STAMP)

$(BUF): package.json package-lock.json
	scripts/node.sh
	@touch $@

$(CLIENT_TS): clients/ts/package.json clients/ts/package-lock.json
	scripts/node.sh clients/ts
	@touch $@

services: venv
	scripts/services.sh up

status:
	@scripts/services.sh status

stop:
	scripts/services.sh down

migrate: venv
	$(WITH_SERVICES) python -m server migrate

run: venv
	$(WITH_SERVICES) python -m server migrate && \
	  BUILD_COMMIT=$${BUILD_COMMIT:-$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)} \
	  exec honcho start -f Procfile.dev

worker: venv
	$(WITH_SERVICES) exec python -m server worker

# The suite runs in TEST_WORKERS pytest-xdist workers (each with its own databases, Redis db and
# bucket: tests/conftest.py); a module's tests stay on one worker. Tests marked `serial` (faults
# under load, whose bounds are about time) run afterwards, alone.
TEST_WORKERS ?= 2
test: venv $(BUF) $(CLIENT_TS) promtool
	$(WITH_SERVICES) pytest -n $(TEST_WORKERS) --dist loadfile -m "not serial" && pytest -m serial

# Load tests (README "Benchmarks"): seeds hustle_bench_<n> once, writes bench/results/<date>.md.
BENCH_TASKS ?= 100000
bench: venv
	$(WITH_SERVICES) python -m bench --tasks "$(BENCH_TASKS)" $(BENCH_ARGS)

lint: lint-protos lint-python typecheck lint-ops

lint-protos: $(BUF) breaking
	$(BUF) lint
	$(BUF) format --diff --exit-code

# Fails (exit 100) when protos/ breaks the released contract, on every branch (main included).
breaking: $(BUF)
	$(BUF) breaking --against $(BASELINE)

# Record protos/ as the released contract. A breaking change is refused unless ACCEPT_BREAKING=1
# (a reviewed decision: docs/VERSIONING.md); comments are left out, so only the contract counts.
baseline: $(BUF)
	@if [[ "$${ACCEPT_BREAKING:-}" != 1 ]] && ! $(BUF) breaking --against $(BASELINE); then \
	  echo "baseline: the change above breaks the released contract; see docs/VERSIONING.md" >&2; \
	  exit 1; \
	fi
	$(BUF) build --exclude-source-info -o $(BASELINE)

lint-python: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Prometheus rules and their unit tests (ops/prometheus/), offline, with Debian's promtool.
lint-ops: promtool
	scripts/promtool.sh check config ops/prometheus/prometheus.yml
	scripts/promtool.sh check rules ops/prometheus/rules/*.yml
	scripts/promtool.sh test rules ops/prometheus/tests/*.test.yml

promtool:
	@scripts/promtool.sh --path >/dev/null

typecheck: venv
	$(BIN)/mypy

fmt: venv $(BUF)
	$(BUF) format -w
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

protos: venv $(BUF) $(CLIENT_TS)
	$(BIN)/python scripts/gen_protos.py
	$(BIN)/python scripts/gen_ts.py
	$(BIN)/python scripts/gen_reference.py

dashboards: venv
	$(BIN)/python scripts/gen_dashboards.py

# Re-pin constraints.txt after changing dependencies in pyproject.toml.
constraints:
	rm -rf .constraints-venv
	python3 -m venv .constraints-venv
	.constraints-venv/bin/pip install -q -e '.[dev]'
	{ echo "# Exact versions installed by 'make venv' (pip -c). Regenerate after changing pyproject.toml:"; \
	  echo "#   make constraints"; \
	  .constraints-venv/bin/pip freeze --exclude-editable | grep -v '^-e'; } > constraints.txt
	rm -rf .constraints-venv

clean:
	scripts/services.sh clean
	rm -rf $(VENV) node_modules clients/ts/node_modules clients/ts/build
