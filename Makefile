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

.PHONY: install peers demo test test-fast lint schemas bench fixtures clean fuzz

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

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
	$(VENV)/bin/ruff check bridge tests benchmarks
	$(VENV)/bin/mypy

schemas: install
	$(PY) -m bridge.host.schemas schemas/host

# The whole suite runs inside a loopback-only network namespace (the fence).
test: install peers lint
	$(PY) -m bridge.peers.fence -- $(PY) -m pytest -q

# The hypothesis properties of tests/reliability/test_fuzz_*.py with the long budget (thousands of examples).
fuzz: install peers
	HYPOTHESIS_PROFILE=long $(PY) -m bridge.peers.fence -- $(PY) -m pytest -q -p no:cacheprovider \
		-o timeout=0 tests/reliability/test_fuzz_framing.py tests/reliability/test_fuzz_transport.py \
		tests/reliability/test_fuzz_codex.py tests/reliability/test_fuzz_otlp.py tests/reliability/test_fuzz_config.py

bench: install peers
	$(PY) -m bridge.peers.fence -- $(PY) benchmarks/run.py

# Re-record fixtures/transcripts and fixtures/otlp from the real peers (fenced).
fixtures: install peers
	$(PY) -m bridge.peers.fence -- $(PY) -m bridge.transcript.fixtures --out fixtures/transcripts
	$(PY) -m bridge.peers.fence -- $(PY) -m tests.transcript.otlp_fixtures --out fixtures/otlp

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
