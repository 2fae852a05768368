# Simulation Config Service — developer commands.
# `make run` and `make test` work on a fresh clone: they create .venv first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
PROTO_FILES := $(wildcard protos/simulation/v1/*.proto)
GRPC_TOOLS_INCLUDE = $(shell $(BIN)/python -c "import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), '_proto'))")

.PHONY: help install run test test-slow test-all bench mutate lint generate check-generated descriptor openapi check-openapi gateway compose-config compose-config-tls compose-certs migrate docker-lint buf-lint buf-breaking clean

help:
	@echo "make run        start the server (embedded SQLite by default)"
	@echo "make test       run the fast test suite (a few minutes)"
	@echo "make test-slow  run the slow suite: real binaries, faults, floods (CI runs both)"
	@echo "make bench      measure the server against a bare grpcio server (minutes)"
	@echo "make mutate     mutation checks of auth, pagination, repositories, lifecycle, retry (slow)"
	@echo "make lint       ruff, mypy, buf lint, hadolint"
	@echo "make generate   regenerate generated/ from protos/"
	@echo "make gateway    start the Envoy REST gateway in front of the server"

$(STAMP): pyproject.toml constraints.txt clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]' \
		-e ./clients/python
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/simconfig serve

migrate: $(STAMP)
	$(BIN)/simconfig migrate

# The fast suite (a few minutes); `make test-slow` runs the rest (tests/conftest.py SLOW_PATHS and SLOW_TESTS),
# `make test-all` both. CI runs `make test` and then `make test-slow`.
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

test-all: $(STAMP)
	$(BIN)/python -m pytest

# The benchmark's extra dependency (matplotlib, for the plot); `make install` stays lean.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Not part of `make test`: it takes minutes and loads a million rows. PostgreSQL when
# SIMCONFIG_DATABASE_URL is set, embedded SQLite otherwise; needs h2load
# (.ci/install-system-packages). Options go in BENCH_ARGS, e.g. BENCH_ARGS=--quick.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
# Mutation checks of the modules where a silent bug costs most (docs/testing.md): mutmut runs
# the fast tests against every mutant, then the survivors and the kill rate are printed. Takes
# 15 minutes to an hour on 2 cores and needs PostgreSQL, so neither `make test` nor CI runs it.
mutate: $(STAMP)
	rm -rf mutants
	SIMCONFIG_REQUIRE_POSTGRES=1 $(BIN)/mutmut run --max-children 2
	@echo "Mutants the tests did not kill (docs/testing.md says why each one is equivalent):"
	@$(BIN)/mutmut results
	@$(BIN)/mutmut results --all true | $(BIN)/python tools/mutation_summary.py

lint: $(STAMP) buf-lint docker-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

buf-lint: $(STAMP)
	$(BIN)/buf lint

# Breaking-change check of protos/ against the previous commit; skipped when
# that commit has no proto tree yet.
buf-breaking: $(STAMP)
	@if git cat-file -e HEAD~1:buf.yaml 2>/dev/null; then \
		$(BIN)/buf breaking --against '.git#ref=HEAD~1' && echo "buf breaking: no breaking changes"; \
	else echo "buf breaking: no earlier proto tree, skipped"; fi

docker-lint: $(STAMP)
	$(BIN)/hadolint Dockerfile

# generated/ is made from protos/ by this one command and never edited; so are the Python
# client's copy of the stubs and its typed methods (clients/python/src/simconfig_client).
generate: $(STAMP)
	rm -rf generated/simulation
	mkdir -p generated
	$(BIN)/python -m grpc_tools.protoc -Iprotos -I$(GRPC_TOOLS_INCLUDE) \
		--python_out=generated --pyi_out=generated --grpc_python_out=generated \
		$(PROTO_FILES)
	touch generated/simulation/__init__.py generated/simulation/v1/__init__.py
	$(BIN)/python tools/generate_client.py

check-generated: generate
	@if [ -n "$$(git status --porcelain -- generated clients/python/src/simconfig_client)" ]; then \
		git status --short -- generated clients/python/src/simconfig_client; \
		echo "generated code is stale: run 'make generate' and commit the result"; exit 1; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache mutants

# --- REST gateway (Envoy grpc_json_transcoder), see deploy/README.md --------
# The descriptor set Envoy transcodes with is derived from protos/, so it is
# built on demand (gateway.py rebuilds it when a proto is newer) and ignored.
descriptor: $(STAMP)
	$(BIN)/python deploy/gateway.py descriptor

gateway: $(STAMP)
	$(BIN)/python deploy/gateway.py

# What the gateway of deploy/compose.yaml mounts: the descriptor set, and the Envoy config rendered
# with deploy/compose.gateway.env (both ignored by git, like the descriptor).
compose-config: $(STAMP)
	set -a && . deploy/compose.gateway.env && set +a && \
		$(BIN)/python deploy/gateway.py render deploy/envoy.compose.yaml
	@echo "wrote deploy/simconfig.binpb and deploy/envoy.compose.yaml for deploy/compose.yaml"

# The same, with the TLS settings of deploy/compose.tls.yaml (HTTPS, mutual TLS upstream).
compose-config-tls: $(STAMP)
	set -a && . deploy/compose.gateway.env && . deploy/compose.gateway-tls.env && set +a && \
		$(BIN)/python deploy/gateway.py render deploy/envoy.compose.yaml
	@echo "wrote deploy/envoy.compose.yaml with TLS for deploy/compose.tls.yaml"

# Development certificates for deploy/compose.tls.yaml (a CA of its own; not for production).
compose-certs:
	python3 deploy/certificates.py deploy/tls

# docs/openapi/ is generated from protos/ by protoc-gen-swagger (Debian package
# golang-grpc-gateway) and committed, like generated/; CI proves it is fresh.
openapi: $(STAMP)
	$(BIN)/python deploy/openapi.py

check-openapi: $(STAMP)
	@tmp=$$(mktemp -d); \
	$(BIN)/python deploy/openapi.py $$tmp >/dev/null && \
	diff -u docs/openapi/simulation.swagger.json $$tmp/simulation.swagger.json; \
	rc=$$?; rm -rf $$tmp; \
	[ $$rc -eq 0 ] || { echo "docs/openapi is stale: run 'make openapi' and commit the result"; exit 1; }
