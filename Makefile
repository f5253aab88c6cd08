# Two entry points a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: run test lint unit e2e bench bench-apiserver capture-fixtures clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Offline run: the example config stands in for the cluster, and a dev CA is made in ./certs.
run: $(BIN)/python
	$(PIP) -e .
	$(BIN)/tenant-guard serve --config examples/config.yaml

lint: $(BIN)/python
	$(PIP) -e '.[test]'
	$(BIN)/ruff check webhook tests benchmarks
	$(BIN)/ruff format --check webhook tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/tenant-guard check --config examples/config.yaml
	$(BIN)/tenant-guard check --config deploy/base/config.yaml

unit: $(BIN)/python
	$(PIP) -e '.[test]'
	$(BIN)/pytest

# The whole suite: static checks, then every test (the e2e suite runs when KUBEBUILDER_ASSETS
# names a directory with kube-apiserver and etcd, and says why it is skipped otherwise).
test: lint unit

e2e: $(BIN)/python
	$(PIP) -e '.[test]'
	$(BIN)/pytest tests/e2e -v

bench: $(BIN)/python
	$(PIP) -e '.[test]'
	$(BIN)/python -m benchmarks.run

# Latency added per write through a real API server (needs KUBEBUILDER_ASSETS, as e2e does).
bench-apiserver: $(BIN)/python
	$(PIP) -e '.[test]'
	$(BIN)/python -m benchmarks.apiserver_load

# The AdmissionReviews the tests read, captured anew from a real API server into
# tests/fixtures/admission (needs KUBEBUILDER_ASSETS as e2e does; TENANT_GUARD_CRDS names
# published CRDs to capture with, else stand-ins are used).
capture-fixtures: $(BIN)/python
	$(PIP) -e '.[test]'
	$(BIN)/python -m tests.fixtures.capture

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# `tenant-guard analyze` on 10,000 generated objects with the 10,000-tenant config (about a minute).
.PHONY: bench-analyze
bench-analyze: $(BIN)/python
	$(PIP) -e '.[test]'
	$(BIN)/python -m benchmarks.analyze

# One in-server audit pass over 50,000 cached objects with the 10,000-tenant config.
.PHONY: bench-audit
bench-audit: $(BIN)/python
	$(PIP) -e '.[test]'
	$(BIN)/python -m benchmarks.audit

# deploy/components/monitoring/prometheusrule.yaml from the plain rule file beside it (after an
# edit of tenant-guard.rules.yaml; tests/test_monitoring.py fails while they differ).
.PHONY: prometheusrule
prometheusrule: $(BIN)/python
	$(BIN)/python -m tests.monitoring

# The gateway pod cache with 100,000 pods: memory, initial list and watch cost (a few minutes).
.PHONY: bench-gateway-pods
bench-gateway-pods: $(BIN)/python
	$(PIP) -e '.[test]'
	$(BIN)/python -m benchmarks.gateway_pods

# 10,000 Tenant objects on a real API server: creation, start-up, RSS, change-to-effect latency,
# admission latency against the config-file source (needs KUBEBUILDER_ASSETS, as e2e does).
.PHONY: bench-tenants
bench-tenants: $(BIN)/python
	$(PIP) -e '.[test]'
	$(BIN)/python -m benchmarks.tenants
