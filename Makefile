# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip --disable-pip-version-check -q
CONSTRAINTS := requirements/constraints.txt
STAMP := $(VENV)/.etviz-installed
TEST_STAMP := $(VENV)/.etviz-test-installed
DEMO_DIR := build/demo

.PHONY: demo test setup setup-test setup-browser lint typecheck pytest clean vsix ext-test setup-vscode-e2e

# The main job on the bundled example: run an export script (export, PT2E quantize, XNNPACK
# lowering) in the worker and write one graph per stage it makes.
demo: $(STAMP)
	mkdir -p $(DEMO_DIR)
	$(BIN)/etviz-lsp --once examples/export_convnet.py -o $(DEMO_DIR)/convnet.json

test: $(TEST_STAMP) lint typecheck ext-test setup-vscode-e2e pytest

setup: $(STAMP)
setup-test: $(TEST_STAMP) setup-vscode-e2e

$(PY):
	$(PYTHON) -m venv $(VENV)

# Pins come from the constraints file: torch 2.13.0 is the CPU wheel, never a CUDA build.
# torch and ExecuTorch are not etviz's dependencies (a user's own stay untouched): working
# on etviz installs them through the `export` extra, in the same pip command as the rest.
$(STAMP): $(PY) pyproject.toml $(CONSTRAINTS)
	$(PIP) install -c $(CONSTRAINTS) -e '.[export]'
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP) install -c $(CONSTRAINTS) -e '.[export,test]'
	touch $@

# Debian chromium + playwright-core for the real-browser tests (idempotent, no browser download).
setup-browser:
	scripts/setup-browser.sh

lint: $(TEST_STAMP)
	$(BIN)/ruff check etviz_lsp tests examples bench

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected no test; make treats that as the failure it is.
pytest: $(TEST_STAMP) setup-browser
	$(PY) -m pytest $(PYTEST_ARGS)

# ---- VS Code extension (vscode-extension/): npm, esbuild, vsce; Node 20+ ----
# The .vsix carries its language server (vscode-extension/bundled/: this checkout's
# etviz_lsp + pygls, msgspec, watchdog... for CPython 3.10-3.14, from PyPI at the pins of
# the constraints file). msgspec is compiled, so each .vsix is for one platform:
# `make vsix VSIX_TARGET=win32-x64` builds another (linux-x64, linux-arm64, darwin-x64,
# darwin-arm64, win32-x64; only linux-x64 is run here, the others' bundles are checked).
EXT := vscode-extension
EXT_VERSION := $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' $(EXT)/package.json)
VSIX_TARGET ?= linux-x64
VSIX := $(EXT)/etviz-lsp-$(VSIX_TARGET)-$(EXT_VERSION).vsix
EXT_STAMP := $(EXT)/node_modules/.etviz-installed
EXT_SOURCES := $(wildcard $(EXT)/src/*.ts) $(EXT)/package.json $(EXT)/esbuild.mjs $(EXT)/.vscodeignore $(EXT)/README.md
BUNDLE := $(EXT)/bundled
BUNDLE_STAMP := build/bundled-$(VSIX_TARGET).stamp
PY_SOURCES := $(shell find etviz_lsp -name '*.py')

# The extension's copy of the kinds table, written from etviz_lsp/graph/inputs.py (and
# package.json's menus checked against it): fails when they differ.
$(EXT)/src/input_kinds_table.ts: etviz_lsp/graph/inputs.py scripts/write_input_kinds.py $(EXT)/package.json
	$(PYTHON) scripts/write_input_kinds.py

$(EXT_STAMP): $(EXT)/package.json $(EXT)/package-lock.json
	cd $(EXT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(BUNDLE_STAMP): $(STAMP) $(CONSTRAINTS) scripts/bundle_server.py $(BUNDLE)/launch.py $(PY_SOURCES)
	mkdir -p build && rm -f build/bundled-*.stamp
	$(PY) scripts/bundle_server.py --target $(VSIX_TARGET)
	touch $@

vsix: $(VSIX)
$(VSIX): $(EXT_STAMP) $(EXT_SOURCES) $(BUNDLE_STAMP)
	cd $(EXT) && npm run -s package -- --target $(VSIX_TARGET)

# TypeScript strict over sources and tests, then the unit tests (node --test).
ext-test: $(EXT_STAMP) $(EXT)/src/input_kinds_table.ts
	cd $(EXT) && npm run -s typecheck && npm test --silent

# code-server, Node 24 and chromium for the end-to-end test (idempotent, under build/tools/).
setup-vscode-e2e: vsix
	scripts/setup-code-server.sh >/dev/null

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
