# Portalis: every command a developer or CI needs. `make test` works on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
STAMP := $(VENV)/.installed
APT_PACKAGES := redis-server prometheus
PYTEST_ARGS ?=
BENCH ?=

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP) ## the virtualenv at .venv with Portalis and its dev tools

apt-deps: ## Debian packages the tests need (redis-server, prometheus for promtool)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

control-plane: venv ## build (once, cached under ~/.cache/portalis) the local control plane from Go modules
	$(PY) -m portalis.devcluster.build

deps: venv apt-deps control-plane ## everything the tests need

test: deps ## the whole suite: unit, integration and end-to-end, on one shared local cluster
	@set +e; $(PYTEST) tests e2e $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

test-unit: venv ## unit tests only (no servers, no cluster)
	@set +e; $(PYTEST) tests/unit $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

lint: venv ## ruff, mypy --strict and the import-linter layer contracts
	$(VENV)/bin/ruff check operator tests e2e bench conftest.py
	$(VENV)/bin/ruff format --check operator tests e2e bench conftest.py
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: venv ## apply ruff's formatting and fixes
	$(VENV)/bin/ruff format operator tests e2e bench conftest.py
	$(VENV)/bin/ruff check --fix operator tests e2e bench conftest.py

crds: venv ## generate crds/, the chart's crds/ and docs/api-reference.md from the API models
	$(PY) -m portalis.api.crdgen --out crds --chart-crds charts/portalis/crds --chart-crds manifests/base/crds --api-docs docs/api-reference.md

verify-generated: venv ## fail when generated files drift from their source
	$(PY) -m portalis.api.crdgen --out crds --chart-crds charts/portalis/crds --chart-crds manifests/base/crds --api-docs docs/api-reference.md --check

cluster-up: deps ## start the local GPU cluster (idempotent) and print its KUBECONFIG
	$(VENV)/bin/portalis devcluster up

cluster-down: venv ## stop the local GPU cluster
	$(VENV)/bin/portalis devcluster down

demo: deps ## bring up the local GPU cluster and run Portalis on it
	$(PY) -m portalis.devcluster.demo

bench: deps ## run the benchmarks (BENCH=name for one); results in bench/results/
	$(PY) -m bench.run $(BENCH)

clean: ## remove the virtualenv and caches in the tree (the control-plane cache stays)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: help venv apt-deps control-plane deps test test-unit lint format crds verify-generated cluster-up cluster-down demo bench clean
