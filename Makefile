# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast test-systemd lint screenshots clean

$(BIN)/channel-bridge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-deps: $(BIN)/channel-bridge
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/channel-bridge
	$(BIN)/channel-bridge --config config.toml run --once

test: $(VENV)/.test-deps
	$(BIN)/ruff check bridge tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The unit and integration layers only (tests/conftest.py): no test runs the bridge command.
test-fast: $(VENV)/.test-deps
	$(BIN)/ruff check bridge tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -m "unit or integration"

# channel-bridge under a real systemd 252 in a container (root; see tests/systemd/run.sh).
test-systemd: $(BIN)/channel-bridge
	PYTHON=$(abspath $(BIN)/python) tests/systemd/run.sh

# The console's screenshots in docs/ (console-*.png), taken in Debian's headless Chromium.
screenshots: $(VENV)/.test-deps
	cd tests && ../$(BIN)/python -m console.screens ../docs

lint: $(VENV)/.test-deps
	$(BIN)/ruff check bridge tests
	$(BIN)/mypy

# Forgets the state of a checkout run (state/ keeps only its .gitkeep) and deletes the
# virtual environment (.venv): the next `make run` or `make test` creates it again.
clean:
	@echo "removing $(VENV) and the state under state/"
	rm -rf $(VENV) state/feeds state/*.json state/*.jsonl state/lock state/*.corrupt-*
