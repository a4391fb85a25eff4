# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.biolens-installed

.PHONY: demo test browser bench bench-suite clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,tracking]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/biolens train --data builtin:splice --out runs/demo-splice --epochs 20 --overwrite
	$(VENV)/bin/biolens evaluate runs/demo-splice
	$(VENV)/bin/biolens report runs/demo-splice
	$(VENV)/bin/biolens doctor run runs/demo-splice
	$(VENV)/bin/biolens export runs/demo-splice --format onnx
	$(VENV)/bin/biolens train --data builtin:pneumoniamnist --out runs/demo-pneumonia --overwrite
	$(VENV)/bin/biolens evaluate runs/demo-pneumonia --target-sensitivity 0.95
	$(VENV)/bin/biolens report runs/demo-pneumonia

test: $(STAMP) browser
	$(PY) -m pytest

# Debian's Chromium for the real-browser test of the serve page (tests/deploy/test_web_browser.py), installed when
# missing and apt-get can run as root; without it that test is skipped with the reason. NO_BROWSER=1 skips this.
browser:
	@if [ -n "$(NO_BROWSER)" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "could not install chromium: the browser test will be skipped"; \
	else \
	  echo "no chromium, and apt-get cannot run as root here: the browser test will be skipped"; \
	fi

bench: $(STAMP)
	$(PY) benchmarks/bench_encoding.py
	$(PY) benchmarks/bench_models.py
	$(PY) benchmarks/bench_trainer.py
	$(PY) benchmarks/bench_images.py

# guide recipe vs biolens vs Lightning (if installed) vs the resident limit; on a GPU: $(PY) benchmarks/suite.py --device cuda
bench-suite: $(STAMP)
	$(PY) benchmarks/suite.py --small --out runs/bench-suite.json

clean:
	rm -rf runs .pytest_cache build src/*.egg-info
