# One command to run the pipeline end to end, one to test it.
#   make demo   set up, start the whole stack locally, replay a sample, print both queries, stop
#   make test   lint, type-check and run the whole suite (starts a real Kafka broker)
#   make up     run the stack in the foreground until Ctrl-C
#   make bench  run every benchmark in bench/ (a few minutes)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: all setup check-tools demo up test lint typecheck unit bench clean

all: test

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cefpipe needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	@touch $@

setup: $(VENV)/.installed

check-tools:
	@command -v java >/dev/null || { echo "Java 17+ is needed to run Kafka locally (Debian: apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is needed once to fetch Kafka's jars (Debian: apt-get install maven)"; exit 1; }

demo: setup check-tools
	$(BIN)/cefpipe demo

up: setup check-tools
	$(BIN)/cefpipe up

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -m "not broker"

test: setup check-tools lint typecheck
	$(BIN)/pytest

bench: setup check-tools
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
