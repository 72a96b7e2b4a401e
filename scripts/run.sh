#!/usr/bin/env bash
# `make run`: services, migrations, demo data, then web + worker + relay + beat + TURN under honcho. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .data
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
export PORT="${PORT:-8000}"
eval "$(.venv/bin/python scripts/services.py)"
trap '.venv/bin/python scripts/services.py stop' EXIT

# Demo mode (docs/notifications.md): without real providers, SMS and email go to the local fakes that the Procfile's
# `fakes` entry (scripts/fake_providers.sh) starts on these ports. Real Twilio = TWILIO_ACCOUNT_SID set; real email =
# EMAIL_HOST set. Ports: FAKE_TWILIO_PORT/FAKE_SMTP_PORT if set (must be free), else 8025/8026 when free, else any
# free port, so a second run (scripts/smoke_run.sh during `make test`) never collides with a developer's `make run`.
port_free() { .venv/bin/python -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null; }
pick_port() { # <variable> <preferred>
    local value="${!1:-}"
    if [ -n "$value" ]; then
        port_free "$value" || { echo "$1=$value is already in use; choose another or unset it" >&2; exit 1; }
    elif port_free "$2"; then
        value=$2
    else
        value=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    fi
    export "$1=$value"
}
demo_providers=""
if [ -z "${TWILIO_ACCOUNT_SID:-}" ]; then
    pick_port FAKE_TWILIO_PORT 8025
    export TWILIO_API_BASE="http://127.0.0.1:${FAKE_TWILIO_PORT}"
    export TWILIO_ACCOUNT_SID="ACdemo0000000000000000000000000000" TWILIO_AUTH_TOKEN="demo-auth-token"
    export TWILIO_FROM_NUMBER="+15005550006"
    demo_providers+="  SMS:   fake Twilio, what arrived: http://127.0.0.1:${FAKE_TWILIO_PORT}/_fake/messages"$'\n'
fi
if [ -z "${EMAIL_HOST:-}" ]; then
    pick_port FAKE_SMTP_PORT 8026
    export EMAIL_HOST=127.0.0.1 EMAIL_PORT="$FAKE_SMTP_PORT"
    demo_providers+="  Email: fake SMTP on 127.0.0.1:${FAKE_SMTP_PORT}, what arrived: ${FAKE_SMTP_STATE:-.data/fake-smtp.json}"$'\n'
fi
export NOTIFICATIONS_PUBLIC_BASE_URL="${NOTIFICATIONS_PUBLIC_BASE_URL:-http://127.0.0.1:${PORT}}"

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py seed_demo
.venv/bin/python manage.py seed_demo_scheduling
# The telehealth demo prints the demo interpreter's join link (issue 7) on a line of its own for the banner.
demo_guest_link="$(.venv/bin/python manage.py seed_demo_telehealth | tee /dev/stderr | sed -n 's/^demo-guest-link: //p')"
.venv/bin/python manage.py seed_demo_notifications
.venv/bin/python manage.py reminders_backfill

cat <<MSG

  Consulta is starting on http://127.0.0.1:${PORT}
  API docs:   http://127.0.0.1:${PORT}/api/v1/docs/
  Demo logins (password: ${DEMO_PASSWORD:-consulta-demo}):
    admin, doctor, doctor2, nurse, scheduler, billing, patient, patient2
${demo_guest_link:+  Three-party visit: sign in as patient and check in, as doctor admit; then open this interpreter link in
  a private window (doctor admits the guest from the visit page): http://127.0.0.1:${PORT}${demo_guest_link}
}${demo_providers:+  Reminders go to local fakes (demo mode); the first ones arrive within a minute:
${demo_providers}}  Ctrl-C stops everything.

MSG
.venv/bin/honcho start -f Procfile
