# Quick start: `make demo` and `make test` on a fresh machine with Python 3.11, pip and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo seeds test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The default experiment on embedded synthetic data (a simulated reverberant 2-mic
# room): MNMF against AuxIVA and the mixture, 2 jobs in parallel, then its report.
demo: $(STAMP)
	$(BIN)/mnmf-run -m experiment=demo
	$(BIN)/mnmf-report outputs/sweeps/demo

# Every study of the seed documents as a preset, then one page: outputs/seeds/index.html
# (finished runs are reused; about 10 minutes on 2 cores from scratch).
seeds: $(STAMP)
	$(BIN)/python -m experiments.seeds

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_nmf.py

clean:
	rm -rf $(VENV) outputs .pytest_cache .hypothesis
