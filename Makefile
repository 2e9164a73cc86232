# Ketamine Evidence Atlas — every install step lives here (fresh machine = CI).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KEA := $(VENV)/bin/kea
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format bench browser-deps portability clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

## make run: crawl (NCBI, or the offline stand-in when NCBI is unreachable), classify, open the dashboard
run: install
	$(KEA) crawl --offline-fallback
	$(KEA) classify
	$(KEA) dashboard

## Debian's chromium for the one end-to-end browser test (Playwright never downloads a browser)
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; \
	fi

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: install browser-deps
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n 2 --dist loadfile

## make portability: the shipped model predicts identically under other library versions inside
## pyproject's ranges (ALT_VERSIONS); a separate venv, so the main one keeps constraints.txt
ALT_VERSIONS ?= scikit-learn==1.7.* numpy==2.2.* scipy==1.15.*
portability:
	@test -x .venv-alt/bin/python || $(PYTHON) -m venv .venv-alt
	.venv-alt/bin/python -m pip install --quiet $(foreach v,$(ALT_VERSIONS),'$(v)')
	.venv-alt/bin/python -m pip install --quiet -e '.[dev]'
	.venv-alt/bin/python -c "import numpy, scipy, sklearn; print('numpy', numpy.__version__, 'scipy', scipy.__version__, 'scikit-learn', sklearn.__version__)"
	.venv-alt/bin/python -m pytest -q -p no:cacheprovider tests/test_classify_model.py -k reproduces_its_recorded_predictions

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .venv-alt .pytest_cache build *.egg-info
