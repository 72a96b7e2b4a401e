#!/usr/bin/env bash
# `make bench`: run every benchmarks/*.py in turn; each prints one JSON line per figure on stdout (progress on
# stderr). See docs/benchmarks.md. Benchmarks use their own database (consulta_bench) and Redis database 14.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 8192 || true

PY=.venv/bin/python
[ -x "$PY" ] || { echo "no $PY: run 'make bootstrap' first" >&2; exit 1; }

# Find (or start) PostgreSQL and Redis the way `make test` does, but never aim at the dev or test data:
# the benchmark database is consulta_bench on that server, and Redis database 14.
before="$(cat .data/started 2>/dev/null || true)"
eval "$(env -u DATABASE_URL -u REDIS_URL CONSULTA_DB_NAME=consulta_bench "$PY" scripts/services.py)"
if [ "$(cat .data/started 2>/dev/null || true)" != "$before" ]; then
  trap '"$PY" scripts/services.py stop' EXIT  # stop only when this run had to start something
fi
export BENCH_DATABASE_URL="${BENCH_DATABASE_URL:-$DATABASE_URL}"
export BENCH_REDIS_URL="${BENCH_REDIS_URL:-${REDIS_URL%/*}/14}"
# scheduling_booking.py seeds and books into a database of its own on the same server (docs/benchmarks.md).
export BENCH_SCHED_DATABASE_URL="${BENCH_SCHED_DATABASE_URL:-${BENCH_DATABASE_URL%/*}/consulta_sched_bench}"
# telehealth_admit_to_frame.py: a database of its own too (demo-seeded), plus coturn and the system Chromium.
export BENCH_VIDEO_DATABASE_URL="${BENCH_VIDEO_DATABASE_URL:-${BENCH_DATABASE_URL%/*}/consulta_video_bench}"
# notifications_dispatch.py: a database of its own (its outbox is emptied on every run) and Redis database 12.
export BENCH_NOTIFY_DATABASE_URL="${BENCH_NOTIFY_DATABASE_URL:-${BENCH_DATABASE_URL%/*}/consulta_notify_bench}"
export BENCH_NOTIFY_REDIS_URL="${BENCH_NOTIFY_REDIS_URL:-${REDIS_URL%/*}/12}"
unset DATABASE_URL REDIS_URL

status=0
for script in benchmarks/*.py; do
  [ -e "$script" ] || continue
  case "$(basename "$script")" in _*) continue ;; esac  # helper modules, not benchmarks
  echo "==> $script" >&2
  if ! timeout 900 "$PY" "$script"; then
    echo "!! $script failed" >&2
    status=1
  fi
done
exit "$status"
