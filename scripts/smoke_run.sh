#!/usr/bin/env bash
# Start `make run` on a free port, wait until /api/v1/health/ says ok (web, database, Redis, a worker), stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=.data/smoke-run.log
mkdir -p .data
env -u DJANGO_SETTINGS_MODULE PORT="$port" setsid scripts/run.sh >"$log" 2>&1 &
pid=$!
cleanup() { kill -INT -- -"$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap cleanup EXIT
deadline=$((SECONDS + 180))
fetch() { .venv/bin/python -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }
until body=$(fetch "http://127.0.0.1:$port/api/v1/health/" 2>/dev/null) && [[ $body == *'"status":"ok"'* ]]; do
  if ! kill -0 "$pid" 2>/dev/null || (( SECONDS > deadline )); then
    echo "make run did not become healthy; last log lines:"; tail -40 "$log"; exit 1
  fi
  sleep 1
done
echo "make run smoke test: healthy on port $port: $body"
fetch "http://127.0.0.1:$port/" | grep -q '<div id="app"' || { echo "SPA not served at /"; exit 1; }
echo "make run smoke test: SPA served at /"
