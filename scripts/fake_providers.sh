#!/usr/bin/env bash
# Local fake SMS/email providers for `make run` demo mode (a Procfile entry): tests/fakes' Twilio REST API and SMTP
# server on loopback, so demo reminders really arrive somewhere. One log line per message, recipient masked.
#
#   FAKE_TWILIO_PORT   fake Twilio REST API on 127.0.0.1 (default 8025); what arrived: GET /_fake/messages
#   FAKE_SMTP_PORT     fake SMTP server on 127.0.0.1 (default 8026)
#   TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN   the credentials the fake accepts and signs callbacks with (the app must
#                      use the same; defaults are the fake's synthetic ones)
#   FAKE_TWILIO_STATE / FAKE_SMTP_STATE   state files (default .data/fake-twilio.json, .data/fake-smtp.json)
#   FAKE_PROVIDERS=0   start neither
#
# A provider is faked unless something else is configured: Twilio is real when TWILIO_ACCOUNT_SID is set and
# TWILIO_API_BASE is empty, and another API when TWILIO_API_BASE names anything but this fake; email is real when
# EMAIL_HOST names a host other than loopback, and another local server when EMAIL_PORT is not this fake's port.
# scripts/run.sh picks free ports and sets the app's settings to match (demo mode). With nothing to fake the script
# idles instead of exiting, because honcho stops every process as soon as one of them exits (as turn.sh does).
set -euo pipefail

cd "$(dirname "$0")/.."
mkdir -p .data
py=.venv/bin/python

twilio_port="${FAKE_TWILIO_PORT:-8025}"
smtp_port="${FAKE_SMTP_PORT:-8026}"

fake_twilio=1
fake_smtp=1
if [ "${FAKE_PROVIDERS:-1}" = 0 ]; then
    fake_twilio=0
    fake_smtp=0
fi
if [ -n "${TWILIO_ACCOUNT_SID:-}" ] && [ -z "${TWILIO_API_BASE:-}" ]; then
    echo "fake-providers: real Twilio configured; fake Twilio not started"
    fake_twilio=0
fi
if [ -n "${TWILIO_API_BASE:-}" ] && [ "${TWILIO_API_BASE%/}" != "http://127.0.0.1:$twilio_port" ]; then
    echo "fake-providers: TWILIO_API_BASE names another server; fake Twilio not started"
    fake_twilio=0
fi
if [ -n "${EMAIL_PORT:-}" ] && [ "$EMAIL_PORT" != "$smtp_port" ]; then
    echo "fake-providers: EMAIL_PORT names another mail server; fake SMTP not started"
    fake_smtp=0
fi
case "${EMAIL_HOST:-}" in
    "" | 127.0.0.1 | localhost | ::1) ;;
    *)
        echo "fake-providers: real SMTP host configured; fake SMTP not started"
        fake_smtp=0
        ;;
esac

pids=()
if [ "$fake_twilio" = 1 ]; then
    args=(--port "$twilio_port" --state-file "${FAKE_TWILIO_STATE:-.data/fake-twilio.json}" --log)
    [ -n "${TWILIO_ACCOUNT_SID:-}" ] && args+=(--account-sid "$TWILIO_ACCOUNT_SID")
    [ -n "${TWILIO_AUTH_TOKEN:-}" ] && args+=(--auth-token "$TWILIO_AUTH_TOKEN")
    "$py" -m tests.fakes.twilio_server "${args[@]}" &
    pids+=("$!")
fi
if [ "$fake_smtp" = 1 ]; then
    "$py" -m tests.fakes.smtp_server --port "$smtp_port" --state-file "${FAKE_SMTP_STATE:-.data/fake-smtp.json}" --log &
    pids+=("$!")
fi

if [ "${#pids[@]}" = 0 ]; then
    echo "fake-providers: nothing to fake; idling"
    exec tail -f /dev/null
fi

stop() {
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop; exit 0' TERM INT
# Either fake exiting ends the entry (and so honcho's run), like any other Procfile process dying.
status=0
wait -n "${pids[@]}" || status=$?
stop
exit "$status"
