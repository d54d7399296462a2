# Mnemo: `make run` starts the daemon on its embedded defaults, `make test` runs every test.
SWIFT ?= swift
PYTHON ?= python3
APT_PACKAGES := libsqlite3-dev libblas-dev libopenblas-dev socat systemd
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test build deps pydeps release clean bench fuzz

## deps: install the Debian packages the build and the walk-through need (only missing ones)
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

## pydeps: the schema checks need jsonschema and pytest; the Python adapters' tests need the
## real frameworks (LangGraph, the OpenAI Agents SDK) from PyPI
PY_TEST_DEPS := jsonschema referencing pytest 'langgraph>=1.0' 'openai-agents>=0.24'
pydeps:
	@$(PYTHON) -c "import jsonschema, referencing, pytest, langgraph, agents" 2>/dev/null || $(PYTHON) -m pip install -q $(PY_TEST_DEPS)

release: deps
	$(SWIFT) build -c release

## run: build release and start mnemod in the foreground on the default socket
run: release
	.build/release/mnemod

build: deps
	$(SWIFT) build --build-tests

## test: schema and contract checks, the Python client, then unit and end-to-end tests against real daemons
test: build pydeps
	$(PYTHON) -m pytest -q schemas/
	$(PYTHON) -m pytest -q -p no:cacheprovider -p no:benchmark clients/python/tests
	$(SWIFT) test --skip-build

clean:
	rm -rf .build

## fuzz: libFuzzer + AddressSanitizer on the frame decoder, the request decoder and the
## dispatcher: saved crashes replayed, then FUZZ_SECONDS (default 60) of fuzzing per target
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

## bench: short benchmark run (release builds of mnemod and mnemo-bench; Redis from Debian)
bench: deps
	@command -v redis-server >/dev/null || $(SUDO) apt-get install -y -qq redis-server
	$(SWIFT) build -c release
	cd benchmarks && $(SWIFT) build -c release && \
	  .build/release/mnemo-bench --mnemod ../.build/release/mnemod --out results/latest.json | tee results/latest.md
