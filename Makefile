# Consulta: two commands on a fresh machine. `make run` serves the platform with demo data; `make test` checks it.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: help run test bench bootstrap python-deps frontend system-deps lint typecheck pytest frontend-check lock schema smoke clean

help:
	@echo "make run    - start the whole platform with demo data on http://127.0.0.1:$(PORT)"
	@echo "make test   - lint, type-check, migrations check, all Python and browser tests, front-end checks"
	@echo "make bench  - print benchmark figures (JSON lines)"

# --- bootstrap -------------------------------------------------------------------------------------------------
$(VENV)/.installed: requirements/base.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/base.txt -r requirements/dev.txt
	touch $@

python-deps: $(VENV)/.installed

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

FRONTEND_SOURCES := $(shell find frontend/src frontend/index.html frontend/vite.config.ts frontend/public -type f 2>/dev/null)
frontend/dist/index.html: frontend/node_modules/.installed $(FRONTEND_SOURCES)
	cd frontend && npm run --silent build
	touch $@

frontend: frontend/dist/index.html

bootstrap: python-deps frontend

# Chromium (browser tests) and coturn (TURN relay) come from Debian; installed only when missing and run as root.
system-deps:
	@missing=""; command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v turnserver >/dev/null || missing="$$missing coturn"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing:$$missing (install them, or run as root so make can)"; exit 1; fi; \
	fi

# --- run ---------------------------------------------------------------------------------------------------------
run: bootstrap
	scripts/run.sh

# --- test --------------------------------------------------------------------------------------------------------
test: system-deps bootstrap
	scripts/test.sh

lint: python-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: python-deps
	$(VENV)/bin/mypy .

# Regenerate the OpenAPI schema the front end's types are generated from (commit the result).
schema: python-deps
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py spectacular --format openapi-json --file frontend/openapi.json
	cd frontend && npm run --silent gen:api

bench: bootstrap
	scripts/bench.sh

lock:
	$(VENV)/bin/pip-compile -q --strip-extras --allow-unsafe --no-emit-find-links --no-emit-index-url -o requirements/base.txt requirements/base.in
	$(VENV)/bin/pip-compile -q --strip-extras --allow-unsafe --no-emit-find-links --no-emit-index-url -o requirements/dev.txt requirements/dev.in

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist .data staticfiles
