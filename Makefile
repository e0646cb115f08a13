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

.PHONY: demo test setup setup-test setup-browser lint typecheck pytest clean

# The main job on the bundled example: run an export script (export, PT2E quantize, XNNPACK
# lowering) in the worker and write one graph per stage it makes.
demo: $(STAMP)
	mkdir -p $(DEMO_DIR)
	$(BIN)/etviz-lsp --once examples/export_convnet.py -o $(DEMO_DIR)/convnet.json

test: $(TEST_STAMP) lint typecheck pytest

setup: $(STAMP)
setup-test: $(TEST_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Pins come from the constraints file: torch 2.13.0 is the CPU wheel, never a CUDA build.
$(STAMP): $(PY) pyproject.toml $(CONSTRAINTS)
	$(PIP) install -c $(CONSTRAINTS) -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP) install -c $(CONSTRAINTS) -e '.[test]'
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

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
