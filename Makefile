# Optimization for Deep Learning: build and test.
#
#   make book      build both editions: _build/html/en and _build/html/ja (sets everything up)
#   make test      every check CI runs, in order (sets everything up)
#   make execute   re-run all notebooks in book/ and store their outputs
#   make reruns    re-run the long experiments the chapters quote (book/data/reruns)
#   make lab       open the notebooks in JupyterLab with live widgets
#   make pdf       one PDF of the whole book (_build/pdf)
#   make catalogs  extract the English text into the Japanese catalogs (locales/ja)
#   make bench     benchmarks; writes docs/measurements.md
#   make test-<stage>  one stage of make test: pins unit nbval kernels build site browser pdf
#
# Setup is automatic and incremental: .venv is created with `python3 -m venv`
# and filled from requirements.txt and tests/requirements.txt (the unit tests'
# oracles; versions of every dependency fixed by constraints.txt) + `pip install
# -e .` (stamp file .venv/.installed, redone when one of those files or
# pyproject.toml changes);
# MathJax comes from npm (package-lock.json) into node_modules.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
FIGURES_JS := book/_static/optbook-figures.js
CHROMIUM := /usr/bin/chromium
# jupyter-book build -W -n --keep-going, once per language (scripts/build_book.py):
# _build/html/en, _build/html/ja, and the root that picks one by the browser's language.
BUILD_BOOK := $(BIN)/python scripts/build_book.py --lang all
PYTEST := $(BIN)/pytest

# The numeric envelope (numerics.env: threads, hash seed and, on x86-64, the
# AVX2 kernel set) under which every stored number is produced (make execute,
# make reruns) and checked (make test). Exported to every recipe, overriding
# the caller's shell: a reader's CPU must not choose the kernels. conftest.py
# and scripts/execute_notebooks.py apply the same file when run directly.
# (scripts/numerics.py prints NAME=VALUE words, '~' for a space in a value.)
# KERNEL_SET=alternate (make test-kernels) picks the second kernel set.
KERNEL_SET ?= standard
$(foreach kv,$(shell python3 scripts/numerics.py --make --set $(KERNEL_SET)),$(eval export $(subst ~, ,$(kv))))
# Benchmarks measure the machine's own kernels: these names are unset there.
KERNEL_VARIABLES := $(shell python3 -c 'import sys; sys.path.insert(0, "scripts"); import numerics; print(*sorted(numerics.kernel_variables()))')
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup book execute reruns lab test test-pins test-unit test-nbval test-kernels \
        test-build test-site test-browser test-pdf test-pythons bench pdf pdf-deps chromium \
        screenshot clean distclean catalogs msgfmt pdf-ja

help:
	@sed -n '3,11p' Makefile | sed 's/^# \{0,1\}//'

# --- setup ------------------------------------------------------------------

# torch is installed first, alone: from PyTorch's CPU wheel index when that
# answers (the CPU build; a plain PyPI torch on Linux is the multi-GB CUDA
# build), else from the other sources pip knows (a machine's own wheel folder,
# PyPI). An unreachable index costs a warning and ~15 s, never a failure.
# `make book TORCH_INDEX=` skips that index.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PIN := $(shell grep -E '^torch==' requirements.txt)
PIP_PIN := $(shell grep -E '^pip==' requirements.txt)

# The repository's public address, one setting: make book REPOSITORY=https://github.com/OWNER/NAME
# (also make pdf / make test). Unset (the default): no GitHub, issue, Binder or Colab
# button, no Colab install line, no address on the PDF's title page.
# scripts/book_site.py, scripts/build_pdf.py and the tests read OPTBOOK_REPOSITORY.
REPOSITORY ?= $(OPTBOOK_REPOSITORY)
export OPTBOOK_REPOSITORY := $(REPOSITORY)

$(VENV_STAMP): requirements.txt tests/requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(PIP_PIN)"
	$(BIN)/python -m pip install --quiet --timeout 15 --retries 1 \
	  $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -r requirements.txt -r tests/requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# MathJax and the figure runtime's build tools come from npm (lock file); the
# runtime (js/) is bundled into book/_static/optbook-figures.js, which every
# page loads (generated, not committed).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(FIGURES_JS): $(NODE_STAMP) $(shell find js -type f 2>/dev/null)
	npm run --silent build --if-present
	@test -f $@ || { echo "npm run build did not write $@" >&2; exit 1; }

setup: $(VENV_STAMP) $(NODE_STAMP) $(FIGURES_JS)

# CI runs as root on Debian; elsewhere install chromium yourself.
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "$(CHROMIUM) is missing: run 'apt-get install -y chromium' as root" >&2; exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi; \
	$(CHROMIUM) --version

# The catalogs' check (tests/test_catalogs.py) runs GNU gettext's msgfmt -c.
msgfmt:
	@if ! command -v msgfmt >/dev/null; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "msgfmt is missing: run 'apt-get install -y gettext' as root" >&2; exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext; \
	fi

# --- the book ---------------------------------------------------------------

book: setup
	$(BUILD_BOOK)

# The Japanese edition's message catalogs: one .po per page in
# locales/ja/LC_MESSAGES/book/ (gettext_compact: false in _config.yml). The
# gettext builder extracts every translatable string of the English pages
# into _build/gettext/*.pot (scripts/book_i18n.py keeps display math, cell
# outputs and strings with nothing to translate out); sphinx-intl then adds
# new strings to the .po files (sphinx-intl update), marks changed ones fuzzy
# (keeping the old translation as a suggestion) and drops removed ones. A .po file is
# rewritten only when its set of strings changes. Translators edit the .po
# files; run this after every change to the English text. (scripts/catalogs.py)
catalogs: $(VENV_STAMP)
	$(BIN)/python scripts/catalogs.py update

execute: $(VENV_STAMP)
	$(BIN)/python scripts/execute_notebooks.py

# The reruns the chapters quote (other seeds, 10x horizons, retuned grids):
# minutes to hours of CPU, so not part of make test. Each writes
# book/data/reruns/<name>.json, which the notebooks print. `make reruns
# RERUNS="name ..."` runs some; `scripts/reruns.py --list` names them.
RERUNS ?=
reruns: $(VENV_STAMP)
	$(BIN)/python scripts/reruns.py $(RERUNS)

# Jupyter refuses to run as root unless told; containers and CI images are root.
# JupyterLab opens the reader's notebooks (scripts/reader_notebooks.py: the
# chapters with citations, terms, links and numbers resolved), written afresh
# into _build/lab/book beside the book's .md pages: edits there are the
# reader's own and are overwritten by the next `make lab`.
LAB_DIR := _build/lab/book
lab: setup
	$(BIN)/python scripts/reader_notebooks.py $(LAB_DIR) > /dev/null
	cp book/*.md $(LAB_DIR)/
	$(BIN)/jupyter lab $(LAB_DIR) $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# A screenshot of the built landing page for the README (docs/screenshot.png).
screenshot: book chromium
	mkdir -p docs
	$(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	  --disable-background-networking --disable-component-update --disable-sync \
	  --user-data-dir="$$(mktemp -d)" --hide-scrollbars --virtual-time-budget=5000 \
	  --window-size=1280,900 --screenshot=docs/screenshot.png \
	  "file://$(CURDIR)/_build/html/en/book/intro.html"

# One PDF of the whole book (scripts/build_pdf.py: the single-page build
# printed by Chromium). Needs Debian's Noto CJK fonts for the glossary's
# Japanese terms and poppler-utils for its test; installed here if root.
PDF := _build/pdf/optimization-for-deep-learning.pdf
PDF_PACKAGES := fonts-noto-cjk poppler-utils

# Both editions' PDFs: _build/pdf/optimization-for-deep-learning.pdf and
# optimization-for-deep-learning-ja.pdf (tests/pdf reads both).
pdf: setup chromium pdf-deps
	$(BIN)/python scripts/build_pdf.py
	$(BIN)/python scripts/build_pdf.py --lang ja

# One edition only (the Japanese PDF), for a quicker look.
pdf-ja: setup chromium pdf-deps
	$(BIN)/python scripts/build_pdf.py --lang ja

pdf-deps:
	@if ! dpkg -s $(PDF_PACKAGES) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "missing: run 'apt-get install -y $(PDF_PACKAGES)' as root" >&2; exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PDF_PACKAGES); \
	fi

# --- tests ------------------------------------------------------------------
# `make test` runs the stages in this order and stops at the first failure:
#   pins     the pinned set resolves from a public index on Python 3.11-3.13
#   unit     optbook's unit and oracle tests (tests/, not browser/ or build/)
#   nbval    re-run every notebook, compare with its stored outputs (strict)
#   kernels  unit tests and notebooks again under a second CPU kernel set:
#            untagged cells must not change, kernel-sensitive ones keep their verdict
#   build    both editions (en, ja) of every page, warnings are errors
#   site     the built HTML requests nothing from other hosts
#   browser  Playwright + Debian chromium click through the built pages
#   pdf      make pdf, then the PDF holds every chapter, typeset, all glyphs
STAGES := pins unit nbval kernels build site browser pdf

test: setup chromium msgfmt
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

test-pins: $(VENV_STAMP)
	$(BIN)/python scripts/check_pins.py

test-unit: $(VENV_STAMP) msgfmt
	@$(BIN)/python scripts/numerics.py --kernels
	$(PYTEST) tests --ignore=tests/browser --ignore=tests/build --ignore=tests/pdf -n 2 -q

# Notebooks go to the two workers whole (--dist loadfile): a notebook's cells
# share one kernel and must run in order.
test-nbval: $(VENV_STAMP)
	@if ! compgen -G "book/*.ipynb" > /dev/null; then \
	  echo "nbval: book/ holds no notebooks yet; nothing to compare"; exit 0; \
	fi; \
	$(BIN)/python scripts/numerics.py --kernels; \
	$(PYTEST) --nbval book/ --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  -n 2 --dist loadfile -q -rf

# The same unit tests and notebooks under the second kernel set of
# numerics.env (torch unvectorized, MKL/oneDNN on SSE4.2, NumPy on its
# baseline): on x86-64, a cell whose output changes there rests on rounding.
# Cells tagged kernel-sensitive are compared on their verdict lines only
# (conftest.py). Elsewhere than x86-64 there is no second set to pick.
test-kernels: $(VENV_STAMP)
	@if [ "$$(uname -m)" != x86_64 ]; then \
	  echo "kernels: not x86-64; the kernel sets of numerics.env do not apply here"; exit 0; \
	fi; \
	$(MAKE) --no-print-directory KERNEL_SET=alternate test-unit test-nbval

test-build: setup
	$(BIN)/python scripts/catalogs.py stat
	$(BUILD_BOOK) --all

test-site: $(VENV_STAMP)
	OPTBOOK_REQUIRE_SITE=1 $(PYTEST) tests/build -q
	OPTBOOK_REQUIRE_SITE=1 OPTBOOK_SITE_DIR=_build/html/ja $(PYTEST) tests/build -q

# The figure walk runs over the Japanese edition too (the runtime writes its
# readouts in the page's language; tests/browser/readout_i18n.py reads both).
# The other browser tests are the same code on either edition: English only.
BROWSER_JA := tests/browser/test_figures.py tests/browser/test_figure_divergence.py

test-browser: $(VENV_STAMP) chromium
	@if ! compgen -G "tests/browser/test_*.py" > /dev/null; then \
	  echo "browser: tests/browser holds no tests yet; nothing to run"; exit 0; \
	fi; \
	OPTBOOK_REQUIRE_SITE=1 $(PYTEST) tests/browser -q && \
	OPTBOOK_REQUIRE_SITE=1 OPTBOOK_HTML_DIR=_build/html/ja $(PYTEST) $(BROWSER_JA) -q

# The unit tests under another Python, each in a venv of its own
# (.venv-3.12, ...), set up exactly as .venv is. Not part of `make test`:
# without PyTorch's CPU index a Python other than this machine's wheel's
# takes PyPI's CUDA build of torch (several GB).
OTHER_PYTHONS ?= 3.12 3.13
test-pythons:
	@for v in $(OTHER_PYTHONS); do \
	  py=$$($(PYTHON) scripts/check_pins.py --which $$v) || exit 1; \
	  echo "=== unit tests under Python $$v ($$py) ==="; \
	  $(MAKE) --no-print-directory VENV=.venv-$$v PYTHON=$$py test-unit || exit 1; \
	done

# Benchmarks print figures; they assert nothing (bench/requirements.txt holds
# the competitors, which the book does not need). What they print is also
# written, dated and with the machine it ran on, to docs/measurements.md.
BENCH_OUT := _build/bench
bench: setup chromium
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT)
	env $(addprefix -u ,$(KERNEL_VARIABLES)) $(BIN)/python bench/optimizer_step.py | tee $(BENCH_OUT)/optimizer_step.txt
	env $(addprefix -u ,$(KERNEL_VARIABLES)) $(BIN)/python bench/clip_grad_norm.py | tee $(BENCH_OUT)/clip_grad_norm.txt
	$(BIN)/python bench/figure_latency.py | tee $(BENCH_OUT)/figure_latency.txt
	$(BIN)/python bench/measurements.py $(BENCH_OUT) docs/measurements.md

test-pdf: pdf
	OPTBOOK_REQUIRE_PDF=1 $(PYTEST) tests/pdf -q

# --- cleaning -----------------------------------------------------------------

clean:
	rm -rf _build

distclean: clean
	rm -rf $(VENV) .venv-3.* node_modules .pytest_cache
