# ketch — build, run and test entry points.
#
# Every target works from a fresh clone and is idempotent. Expensive steps are
# guarded by stamp files under .make/ (gitignored): a stamp is rebuilt only
# when one of its input files is newer than it, so `make install` is a no-op
# (well under a second) when nothing changed.
#
#   .make/python <- pyproject.toml, requirements/lock.txt, .venv/pyvenv.cfg
#                   pip install torch (alone), then -c lock.txt -e '.[all,serving-frameworks,test]'
#   .make/npm-ci <- ui/package.json, ui/package-lock.json  npm ci
#   .make/ui     <- .make/npm-ci, everything under ui/src and ui/public (files
#                   and directories, so added/removed files count too),
#                   ui/index.html, ui/vite.config.ts, ui/tsconfig*.json
#                                                          npm run build -> src/ketch/server/static/
#                   (also rebuilt when src/ketch/server/static/ is empty/missing)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-print-directory

PYTHON      ?= python3
VENV        := .venv
VPY         := $(VENV)/bin/python
STAMPS      := .make
STATIC_DIR  := src/ketch/server/static
PORT        ?=
HOST        ?=
PYTEST_ARGS ?=
LOCK        := requirements/lock.txt
EXTRAS      := all,serving-frameworks,test
# PyTorch's CPU build (its local version +cpu is on no index but PyTorch's own CPU one
# and this machine's wheel directory, so nothing else can satisfy it).
TORCH       ?= torch==2.13.0+cpu

# apt needs root: use sudo when we are not root and sudo exists.
SUDO := $(if $(filter 0,$(shell id -u)),,$(shell command -v sudo 2>/dev/null))
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

# --- UI inputs (evaluated at parse time; missing files simply drop out) -------
UI_PRESENT := $(wildcard ui/package.json)
UI_LOCK    := $(wildcard ui/package-lock.json)
UI_SOURCES := $(shell find ui/src ui/public 2>/dev/null) \
              $(wildcard ui/index.html ui/vite.config.ts ui/vite.config.js ui/tsconfig*.json)
# Rebuild the dashboard if its output was deleted even though the stamp is fresh.
UI_FORCE   := $(if $(wildcard $(STATIC_DIR)/*),,FORCE)

.PHONY: help install install-python install-ui check-venv lock up test test-fast test-ui test-deps lint lint-ui ui-types bench clean FORCE

help: ## list targets
	@echo "ketch make targets:"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-11s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: PORT=9000 (make up), HOST=0.0.0.0 (make up), PYTEST_ARGS='-k foo -x' (make test/test-fast)"

# --- install -----------------------------------------------------------------

install: install-python install-ui ## create .venv, install ketch[all,serving-frameworks,test] editable, build the dashboard

install-python: $(STAMPS)/python

$(VENV)/pyvenv.cfg:
	$(PYTHON) -m venv $(VENV)

# Two steps, so pip never re-resolves torch: first PyTorch alone (the CPU build by
# default; a bare `torch==2.13.0` asked for with other packages can resolve to the
# multi-GB CUDA build while pip backtracks), then everything else pinned by the lock
# file, so the resolver has nothing to search. A GPU user runs
# `make install TORCH=torch==2.13.0` for the CUDA build. --no-compile: byte-compiling every
# file of every wheel up front (torch alone has thousands) costs about 60% of the install;
# tools/precompile.py then compiles what the platform imports to start (about 1000
# modules, 10 s), which Python would never cache where PYTHONDONTWRITEBYTECODE=1 is set.
$(STAMPS)/python: pyproject.toml $(LOCK) $(VENV)/pyvenv.cfg
	@mkdir -p $(@D)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --no-compile '$(TORCH)'
	$(VPY) -m pip install --no-compile -c $(LOCK) -e '.[$(EXTRAS)]' '$(TORCH)'
	$(VPY) tools/precompile.py
	$(MAKE) check-venv
	@touch $@

check-venv: ## pip check, and (with the CPU torch) no CUDA libraries in .venv
	$(VPY) -m pip check
	@if [[ '$(TORCH)' == *+cpu ]] && $(VPY) -m pip list --format=freeze | grep -i '^nvidia-'; then \
	  echo "error: .venv holds NVIDIA CUDA wheels although TORCH=$(TORCH)"; exit 1; fi
	@echo "check-venv: pip check passed, no nvidia-* packages"

lock: ## refresh requirements/lock.txt from a fresh venv (unpinned resolve of pyproject.toml)
	rm -rf $(STAMPS)/lock-venv
	$(PYTHON) -m venv $(STAMPS)/lock-venv
	$(STAMPS)/lock-venv/bin/pip install --quiet --upgrade pip
	$(STAMPS)/lock-venv/bin/pip install '$(TORCH)'
	$(STAMPS)/lock-venv/bin/pip install -e '.[$(EXTRAS)]' '$(TORCH)'
	{ echo '# pip constraints for make install: the resolved set of .[$(EXTRAS)], torch excluded'; \
	  echo '# (installed first, alone; see TORCH in the Makefile). Refresh with: make lock'; \
	  $(STAMPS)/lock-venv/bin/pip freeze --exclude-editable | grep -v '^torch=='; } > $(LOCK)
	rm -rf $(STAMPS)/lock-venv

ifeq ($(UI_PRESENT),)
install-ui:
	@echo "NOTE: ui/package.json not found - skipping the dashboard build (src/ketch/server/static/ not built)."
else
install-ui: $(STAMPS)/ui

$(STAMPS)/npm-ci: ui/package.json $(UI_LOCK)
	@mkdir -p $(@D)
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "npm not found - installing Debian nodejs and npm"; \
	  $(APT_GET) update; \
	  $(APT_GET) install -y --no-install-recommends nodejs npm; \
	fi
	cd ui && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; \
	         else npm install --no-audit --no-fund; fi
	@touch $@

$(STAMPS)/ui: $(STAMPS)/npm-ci $(UI_SOURCES) $(UI_FORCE)
	cd ui && npm run build
	@touch $@
endif

# --- run ---------------------------------------------------------------------

up: install ## start ketch (http://127.0.0.1:8080; PORT=9000 to change)
	$(VENV)/bin/ketch up $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST))

# --- checks ------------------------------------------------------------------

test: install ## lint, the dashboard's unit tests, install postgresql/chromium if missing, run the whole pytest suite
	$(MAKE) lint
	$(MAKE) test-ui
	$(MAKE) test-deps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-fast: install ## pytest -m "not slow and not postgres" (no apt)
	$(VENV)/bin/pytest -m "not slow and not postgres" $(PYTEST_ARGS)

test-deps: ## apt-get install postgresql and chromium where missing
	@missing=""; \
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then missing="$$missing postgresql"; fi; \
	if [ ! -x /usr/bin/chromium ]; then missing="$$missing chromium"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing system packages:$$missing"; \
	  $(APT_GET) update; \
	  $(APT_GET) install -y --no-install-recommends $$missing; \
	else \
	  echo "test-deps: postgresql and chromium already installed"; \
	fi

lint: install-python ## ruff check + mypy (strict) + lint-imports (layering contracts), configs in pyproject.toml + the dashboard's ESLint
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(MAKE) lint-ui

ifeq ($(UI_PRESENT),)
lint-ui test-ui ui-types:
	@echo "NOTE: ui/package.json not found - no dashboard to lint or test."
else
lint-ui: $(STAMPS)/npm-ci ## ESLint (typescript-eslint, react-hooks) over ui/, no warnings allowed
	cd ui && npm run --silent lint

test-ui: $(STAMPS)/npm-ci ## the dashboard's Vitest unit tests (ui/test/)
	cd ui && npm test --silent

# tests/server/test_openapi_types.py fails until the regenerated file is committed.
ui-types: $(STAMPS)/npm-ci ## regenerate ui/src/core/openapi.ts (the dashboard's API types) from /openapi.json
	$(VPY) ui/scripts/openapi_types.py
endif

bench: install ## run benchmarks/core.py and benchmarks/serving.py (installs wrk if missing)
	$(VPY) benchmarks/core.py
	@command -v wrk >/dev/null 2>&1 || { $(APT_GET) update; $(APT_GET) install -y --no-install-recommends wrk; }
	$(VPY) benchmarks/serving.py

clean: ## remove .venv, .make, ui/node_modules and the built dashboard
	rm -rf $(VENV) $(STAMPS) ui/node_modules $(STATIC_DIR) src/*.egg-info

FORCE:
