#!/usr/bin/env bash
# Start `make run` on a free port, wait until /api/v1/health/ says ok (web, database, Redis, a worker), check the SPA,
# then wait (bounded) until the beat's dispatcher has really handed a demo reminder to the fake Twilio or SMTP server;
# stop it. Its own database (<name>_smoke), Celery queue, Redis prefixes, beat schedule and fake-provider ports and
# state files, so it runs beside a developer's `make run` without either seeing the other's work.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
twilio_port=$(free_port)
smtp_port=$(free_port)
log=.data/smoke-run.log
mkdir -p .data
state=$(mktemp -d /tmp/consulta-smoke.XXXXXX)
smoke_db=$("$py" -c '
import os, urllib.parse as u
url = os.environ.get("DATABASE_URL", "")
if url:
    parts = u.urlsplit(url)
    print(u.urlunsplit(parts._replace(path="/" + (parts.path.lstrip("/") or "consulta") + "_smoke")))
')
env -u DJANGO_SETTINGS_MODULE -u TWILIO_ACCOUNT_SID -u TWILIO_API_BASE -u EMAIL_HOST -u EMAIL_PORT \
  -u NOTIFICATIONS_PUBLIC_BASE_URL \
  ${smoke_db:+DATABASE_URL="$smoke_db"} CONSULTA_DB_NAME="${CONSULTA_DB_NAME:-consulta}_smoke" \
  CELERY_QUEUE="consulta-smoke-$port" CACHE_KEY_PREFIX="consulta-smoke-$port" CHANNEL_LAYER_PREFIX="consulta-smoke-$port" \
  CELERY_BEAT_SCHEDULE_FILE=".data/celerybeat-schedule-smoke" \
  FAKE_TWILIO_PORT="$twilio_port" FAKE_SMTP_PORT="$smtp_port" \
  FAKE_TWILIO_STATE="$state/fake-twilio.json" FAKE_SMTP_STATE="$state/fake-smtp.json" \
  PORT="$port" setsid scripts/run.sh >"$log" 2>&1 &
pid=$!
cleanup() { kill -INT -- -"$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT
deadline=$((SECONDS + 180))
fetch() { "$py" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }
until body=$(fetch "http://127.0.0.1:$port/api/v1/health/" 2>/dev/null) && [[ $body == *'"status":"ok"'* ]]; do
  if ! kill -0 "$pid" 2>/dev/null || (( SECONDS > deadline )); then
    echo "make run did not become healthy; last log lines:"; tail -40 "$log"; exit 1
  fi
  sleep 1
done
echo "make run smoke test: healthy on port $port: $body"
# Read the whole page first: `fetch | grep -q` fails under pipefail when grep stops reading early.
page=$(fetch "http://127.0.0.1:$port/") && [[ $page == *'<div id="app"'* ]] || { echo "SPA not served at /"; exit 1; }
echo "make run smoke test: SPA served at /"
# The media relay (Procfile `relay`) logs this once it has joined its channel group and written its heartbeat.
deadline=$((SECONDS + 60))
until grep -q "relay: started" "$log"; do
  if ! kill -0 "$pid" 2>/dev/null || (( SECONDS > deadline )); then
    echo "the media relay did not start; last log lines:"; tail -40 "$log"; exit 1
  fi
  sleep 1
done
echo "make run smoke test: media relay started"

# The demo queues a reminder due now per demo patient; beat dispatches within its one-minute period (at once when
# its schedule file says the last tick is older than that).
arrived() {
  "$py" - "$state/fake-twilio.json" "$state/fake-smtp.json" <<'PY'
import json, sys
counts = []
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            counts.append(int(json.load(f).get("messages", 0)))
    except (OSError, ValueError):
        counts.append(0)
print(f"sms={counts[0]} email={counts[1]}")
sys.exit(0 if sum(counts) else 1)
PY
}
deadline=$((SECONDS + 100))
until counts=$(arrived); do
  if ! kill -0 "$pid" 2>/dev/null || (( SECONDS > deadline )); then
    echo "no demo reminder reached the fake providers; last log lines:"; tail -40 "$log"; exit 1
  fi
  sleep 1
done
echo "make run smoke test: demo reminders arrived at the fake providers ($counts)"
