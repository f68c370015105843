# Portalis: every command a developer or CI needs. `make test` works on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
STAMP := $(VENV)/.installed
APT_PACKAGES := redis-server prometheus prometheus-alertmanager jq
# the real node (runc, CNI plugins, iptables for kube-proxy) and the image builds (buildah, mmdebstrap)
NODE_APT_PACKAGES := runc containernetworking-plugins iptables buildah mmdebstrap
PYTEST_ARGS ?=
BENCH ?=

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml devcluster/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -e ./devcluster
	@touch $@

venv: $(STAMP) ## the virtualenv at .venv with Portalis and its dev tools

apt-deps: ## Debian packages the tests need (redis-server; prometheus and alertmanager; runc, CNI, iptables, buildah, mmdebstrap for the real node)
	@missing=""; for p in $(APT_PACKAGES) $(NODE_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends $$missing; \
	fi

control-plane: venv ## build (once, cached under ~/.cache/portalis) the local control plane, the real node and the S3 server from Go modules
	$(PY) -m portalis_devcluster.build

images: venv apt-deps ## build the operator and worker images with buildah (cached by content) and load them into the real node
	$(PY) -m portalis_devcluster.images

toolchains: venv ## the workers' compile checks: fetch and build the Rust crate set (crates.io), warm the Go and C++ checks
	$(PY) -m portalis.worker.verify.prepare --fetch

deps: venv apt-deps control-plane toolchains ## everything the tests need

test: deps test-images ## the whole suite: unit, integration and end-to-end, on one shared local cluster
	$(PYTEST) tests e2e $(PYTEST_ARGS)

test-images: venv apt-deps
	@$(PY) -m portalis_devcluster.images --if-real-node

test-unit: venv ## unit tests only (no servers, no cluster)
	$(PYTEST) tests/unit $(PYTEST_ARGS)

lint: venv ## ruff, mypy --strict and the import-linter layer contracts
	$(VENV)/bin/ruff check operator devcluster tests e2e bench conftest.py
	$(VENV)/bin/ruff format --check operator devcluster tests e2e bench conftest.py
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: venv ## apply ruff's formatting and fixes
	$(VENV)/bin/ruff format operator devcluster tests e2e bench conftest.py
	$(VENV)/bin/ruff check --fix operator devcluster tests e2e bench conftest.py

crds: venv ## generate crds/, the chart's crds/ and docs/api-reference.md from the API models
	$(PY) -m portalis.api.crdgen --out crds --chart-crds charts/portalis/crds --chart-crds manifests/base/crds --api-docs docs/api-reference.md

verify-generated: venv ## fail when generated files drift from their source
	$(PY) -m portalis.api.crdgen --out crds --chart-crds charts/portalis/crds --chart-crds manifests/base/crds --api-docs docs/api-reference.md --check

cluster-up: deps ## start the local GPU cluster (idempotent) and print its KUBECONFIG
	$(VENV)/bin/portalis devcluster up

cluster-down: venv ## stop the local GPU cluster
	$(VENV)/bin/portalis devcluster down

demo: deps ## bring up the local GPU cluster and run Portalis on it
	$(PY) -m portalis_devcluster.demo

bench: deps ## run the benchmarks (BENCH=name for one); results in bench/results/
	$(PY) -m bench.run $(BENCH)

# The runtime dependency closure of the `portalis` distribution and its `ray` extra, pinned from the venv.
define LOCK_PY
import importlib.metadata as md, subprocess, sys
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as canon
names, seen, todo = set(), set(), [("portalis", frozenset({"ray"}))]
while todo:
    name, extras = todo.pop()
    if (name, extras) in seen:
        continue
    seen.add((name, extras))
    for line in md.distribution(name).requires or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            names.add(canon(req.name))
            todo.append((canon(req.name), frozenset(req.extras)))
freeze = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
                        capture_output=True, text=True, check=True).stdout.splitlines()
pins = {canon(l.split("==")[0]): l.strip() for l in freeze if "==" in l and canon(l.split("==")[0]) in names}
missing = sorted(names - pins.keys())
if missing:
    sys.exit("not installed in the venv: " + ", ".join(missing))
print("# Exact versions of Portalis' runtime dependencies: everything the `portalis` distribution and its `ray`")
print("# extra need, as installed in .venv (Linux, CPython 3.11). Generated; do not edit by hand.")
print("# Regenerate with `make lock` after changing dependencies in pyproject.toml; audit with `make audit`.")
print("\n".join(pins[n] for n in sorted(pins)))
endef
export LOCK_PY

lock: venv ## pin the runtime dependency closure (with the ray extra) from the venv into requirements.lock
	$(PY) -c "$$LOCK_PY" > requirements.lock.tmp && mv requirements.lock.tmp requirements.lock

audit: venv ## check requirements.lock against PyPI's vulnerability data (pip-audit; needs network access)
	$(VENV)/bin/pip-audit --no-deps --disable-pip -r requirements.lock

clean: ## remove the virtualenv and caches in the tree (the control-plane cache stays)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: help venv apt-deps control-plane images test-images toolchains deps test test-unit lint format crds verify-generated cluster-up cluster-down demo bench lock audit clean
