#!/usr/bin/env bash
# `make run`: services, migrations, demo data, then web + worker + beat + TURN under honcho. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .data
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
export PORT="${PORT:-8000}"
eval "$(.venv/bin/python scripts/services.py)"
trap '.venv/bin/python scripts/services.py stop' EXIT

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed_demo
.venv/bin/python manage.py seed_demo_scheduling
.venv/bin/python manage.py seed_demo_telehealth

cat <<MSG

  Consulta is starting on http://127.0.0.1:${PORT}
  API docs:   http://127.0.0.1:${PORT}/api/v1/docs/
  Demo logins (password: ${DEMO_PASSWORD:-consulta-demo}):
    admin, doctor, doctor2, nurse, scheduler, billing, patient, patient2
  Ctrl-C stops everything.

MSG
.venv/bin/honcho start -f Procfile
