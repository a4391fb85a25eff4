# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.biolens-installed

.PHONY: demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/biolens train --data builtin:splice --out runs/demo-splice --epochs 20 --overwrite
	$(VENV)/bin/biolens evaluate runs/demo-splice

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/bench_encoding.py
	$(PY) benchmarks/bench_models.py

clean:
	rm -rf runs .pytest_cache build src/*.egg-info
