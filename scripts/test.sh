#!/usr/bin/env bash
# `make test`: every check CI runs, against the real PostgreSQL, Redis, Celery worker, coturn and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE=config.settings.test
mkdir -p .data
eval "$(.venv/bin/python scripts/services.py)"
trap '.venv/bin/python scripts/services.py stop' EXIT
step() { printf '\n==> %s\n' "$*"; }

step "ruff check + format"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
step "mypy"
.venv/bin/mypy .
step "import-linter"
.venv/bin/lint-imports
step "migrations are up to date"
.venv/bin/python manage.py makemigrations --check --dry-run
step "OpenAPI schema matches frontend/openapi.json"
.venv/bin/python manage.py spectacular --format openapi-json --file .data/openapi.json
diff -q .data/openapi.json frontend/openapi.json || { echo "schema changed: run 'make schema' and commit"; exit 1; }
step "front end: type-check, lint, unit tests"
(cd frontend && npm run --silent typecheck && npm run --silent lint && npm run --silent test)
step "pytest (unit, integration, websocket, browser)"
.venv/bin/pytest
step "make run smoke test"
scripts/smoke_run.sh
