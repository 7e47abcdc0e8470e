# capture-bridge: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CODEX_VERSION := 0.169.0
PEERS_DIR ?= $(HOME)/.cache/capture-bridge/peers
CODEX_DIR := $(PEERS_DIR)/codex-$(CODEX_VERSION)
CLAUDE_VERSION := 2.1.197
CLAUDE_DIR := $(PEERS_DIR)/claude-code-$(CLAUDE_VERSION)
export CAPTURE_BRIDGE_PEERS_DIR := $(PEERS_DIR)

.PHONY: install dist-tools ts-tools peers demo test test-fast lint schemas dist bench bench-quick bench-profile fixtures clean fuzz

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# PyInstaller, for `make dist` and the tests of the frozen build (tests/dist).
dist-tools: $(VENV)/.dist-installed

$(VENV)/.dist-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev,dist]'
	touch $@

# TypeScript and the Tauri JS packages for examples/tauri-host, whose client `make test` type-checks
# (outside the fence: npm needs the registry). Without npm the check is skipped, and says so.
TAURI_EXAMPLE := examples/tauri-host
ts-tools:
	@if command -v npm >/dev/null 2>&1; then \
		[ $(TAURI_EXAMPLE)/node_modules/.installed -nt $(TAURI_EXAMPLE)/package.json ] || { \
		npm install --prefix $(TAURI_EXAMPLE) --no-audit --no-fund --loglevel=error --omit=optional && \
		touch $(TAURI_EXAMPLE)/node_modules/.installed; }; \
	else echo "npm not found: the TypeScript check of $(TAURI_EXAMPLE) will be skipped"; fi

peers: $(CODEX_DIR)/.installed $(CLAUDE_DIR)/.installed

$(CODEX_DIR)/.installed:
	mkdir -p $(CODEX_DIR)
	npm install --prefix $(CODEX_DIR) --no-audit --no-fund --loglevel=error @openai/codex@$(CODEX_VERSION)
	touch $@

$(CLAUDE_DIR)/.installed:
	mkdir -p $(CLAUDE_DIR)
	npm install --prefix $(CLAUDE_DIR) --no-audit --no-fund --loglevel=error @anthropic-ai/claude-code@$(CLAUDE_VERSION)
	touch $@

demo: install peers
	$(PY) -m bridge drill

lint: install
	$(VENV)/bin/ruff check bridge tests benchmarks packaging examples
	$(VENV)/bin/mypy

schemas: install
	$(PY) -m bridge.host.schemas schemas/host

# dist/capture-bridge-<version>-<target triple>/: the onedir Tauri bundles (docs/tauri.md).
dist: dist-tools
	$(PY) packaging/build.py

# The whole suite runs inside a loopback-only network namespace (the fence).
test: install dist-tools ts-tools peers lint
	$(PY) -m bridge.peers.fence -- $(PY) -m pytest -q

# The hypothesis properties of tests/reliability/test_fuzz_*.py with the long budget (thousands of examples).
fuzz: install peers
	HYPOTHESIS_PROFILE=long $(PY) -m bridge.peers.fence -- $(PY) -m pytest -q -p no:cacheprovider \
		-o timeout=0 tests/reliability/test_fuzz_framing.py tests/reliability/test_fuzz_transport.py \
		tests/reliability/test_fuzz_codex.py tests/reliability/test_fuzz_otlp.py tests/reliability/test_fuzz_config.py

# The performance table (docs/performance.md): exit 1 when a target is missed; rows in benchmarks/results/latest.json.
bench: install dist-tools
	$(PY) -m bridge.peers.fence -- $(PY) benchmarks/run.py

bench-quick: install dist-tools
	$(PY) -m bridge.peers.fence -- $(PY) benchmarks/run.py --size quick

# Quick sizes with every scenario's bridge recorded by py-spy into benchmarks/results/profiles/.
bench-profile: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bridge.peers.fence -- $(PY) benchmarks/run.py --size quick --profile benchmarks/results/profiles

# Re-record fixtures/transcripts and fixtures/otlp from the real peers (fenced).
fixtures: install peers
	$(PY) -m bridge.peers.fence -- $(PY) -m tests.transcript.codex_fixtures --out fixtures/transcripts
	$(PY) -m bridge.peers.fence -- $(PY) -m tests.transcript.otlp_fixtures --out fixtures/otlp

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
