#!/usr/bin/env sh
# Local TURN server for `make run` (a Procfile entry) and the tests: coturn with turn/turnserver.local.conf.
#
#   TURN_PORT    listening port on 127.0.0.1 (default 3478)
#   TURN_SECRET  TURN REST shared secret (default "local-turn-secret"; production sets a real one)
#   TURN_PIDFILE where coturn writes its pid (default .data/turnserver.pid)
#
# coturn stays in the foreground and logs to stdout, so honcho supervises it like any other process.
# Without coturn installed the script idles instead of exiting, because honcho stops every process as soon as
# one of them exits.
set -eu

cd "$(dirname "$0")/.."

if command -v turnserver >/dev/null 2>&1; then
    pidfile="${TURN_PIDFILE:-.data/turnserver.pid}"
    mkdir -p "$(dirname "$pidfile")"
    exec turnserver \
        -c turn/turnserver.local.conf \
        --listening-ip=127.0.0.1 \
        --relay-ip=127.0.0.1 \
        --listening-port="${TURN_PORT:-3478}" \
        --static-auth-secret="${TURN_SECRET:-local-turn-secret}" \
        --pidfile="$pidfile" \
        --log-file=stdout
fi

echo "coturn not installed; TURN disabled"
exec tail -f /dev/null
