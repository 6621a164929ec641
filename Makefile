# Optimization for Deep Learning: build and test.
#
#   make book      build the HTML book into _build/html (sets everything up)
#   make test      every check CI runs, in order (sets everything up)
#   make execute   re-run all notebooks in book/ and store their outputs
#   make lab       open the notebooks in JupyterLab with live widgets
#
# Setup is automatic and incremental: .venv is created with `python3 -m venv`
# and filled from requirements.txt (versions of every dependency fixed by
# constraints.txt) + `pip install -e .` (stamp file .venv/.installed, redone
# when requirements.txt, constraints.txt or pyproject.toml change);
# MathJax comes from npm (package-lock.json) into node_modules.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
MATHJAX := node_modules/mathjax/es5/tex-svg.js
CHROMIUM := /usr/bin/chromium
JB_BUILD := $(BIN)/jupyter-book build -W -n --keep-going
PYTEST := $(BIN)/pytest

# The conditions under which notebook outputs are produced (make execute) and
# checked (nbval) must match; scripts/execute_notebooks.py sets the same.
export PYTHONHASHSEED := 0
export OMP_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup book execute lab test test-unit test-nbval test-build \
        test-site test-browser chromium screenshot clean distclean

help:
	@sed -n '3,7p' Makefile | sed 's/^# \{0,1\}//'

# --- setup ------------------------------------------------------------------

$(VENV_STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(MATHJAX): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV_STAMP) $(MATHJAX)

# CI runs as root on Debian; elsewhere install chromium yourself.
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "$(CHROMIUM) is missing: run 'apt-get install -y chromium' as root" >&2; exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi; \
	$(CHROMIUM) --version

# --- the book ---------------------------------------------------------------

book: setup
	$(JB_BUILD) .

execute: $(VENV_STAMP)
	$(BIN)/python scripts/execute_notebooks.py

lab: $(VENV_STAMP)
	$(BIN)/jupyter lab book/

# A screenshot of the built landing page for the README (docs/screenshot.png).
screenshot: book chromium
	mkdir -p docs
	$(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	  --disable-background-networking --disable-component-update --disable-sync \
	  --user-data-dir="$$(mktemp -d)" --hide-scrollbars --virtual-time-budget=5000 \
	  --window-size=1280,900 --screenshot=docs/screenshot.png \
	  "file://$(CURDIR)/_build/html/book/intro.html"

# --- tests ------------------------------------------------------------------
# `make test` runs the stages in this order and stops at the first failure:
#   unit     optbook's unit and oracle tests (tests/, not browser/ or build/)
#   nbval    re-run every notebook, compare with its stored outputs (strict)
#   build    jupyter-book build of every page, warnings are errors
#   site     the built HTML requests nothing from other hosts
#   browser  Playwright + Debian chromium click through the built pages
STAGES := unit nbval build site browser

test: setup chromium
	@total_start=$$(date +%s); summary=""; \
	for stage in $(STAGES); do \
	  echo; echo "=== make test: stage $$stage ==="; \
	  start=$$(date +%s); \
	  $(MAKE) --no-print-directory test-$$stage \
	    || { echo "=== make test: stage $$stage FAILED ==="; exit 1; }; \
	  seconds=$$(( $$(date +%s) - start )); \
	  summary="$$summary  $$stage: $${seconds}s"; \
	  echo "=== stage $$stage passed in $${seconds}s ==="; \
	done; \
	echo; echo "make test: all stages passed in $$(( $$(date +%s) - total_start ))s ($$summary )"

test-unit: $(VENV_STAMP)
	$(PYTEST) tests --ignore=tests/browser --ignore=tests/build -n 2 -q

# Notebooks go to the two workers whole (--dist loadfile): a notebook's cells
# share one kernel and must run in order.
test-nbval: $(VENV_STAMP)
	@if ! compgen -G "book/*.ipynb" > /dev/null; then \
	  echo "nbval: book/ holds no notebooks yet; nothing to compare"; exit 0; \
	fi; \
	$(PYTEST) --nbval book/ --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  -n 2 --dist loadfile -q

test-build: setup
	$(JB_BUILD) --all .

test-site: $(VENV_STAMP)
	OPTBOOK_REQUIRE_SITE=1 $(PYTEST) tests/build -q

test-browser: $(VENV_STAMP) chromium
	@if ! compgen -G "tests/browser/test_*.py" > /dev/null; then \
	  echo "browser: tests/browser holds no tests yet; nothing to run"; exit 0; \
	fi; \
	OPTBOOK_REQUIRE_SITE=1 $(PYTEST) tests/browser -q

# --- cleaning -----------------------------------------------------------------

clean:
	rm -rf _build

distclean: clean
	rm -rf $(VENV) node_modules .pytest_cache
