"""Event latency and fan-out throughput of ``/ws/v1/events/``, next to a bare ``websockets`` broadcast server.

Run: ``.venv/bin/python benchmarks/ws_latency.py`` (``make bench`` runs it with the other benchmarks).

Prints one JSON line per figure on stdout; progress goes to stderr. For every client count N of the plan:

- ``{"bench": "ws_event_latency", "server": "consulta", ...}``: N browser-like sockets (session cookie + Origin),
  half on each of two daphne processes sharing Redis, all subscribed to ``role:patient``. A separate publisher
  process calls ``core.realtime.services.publish_to_role`` E times at a steady rate with ``data.t`` = send time
  (ns); every client records ``receive time - t``. The figure therefore covers the PostgreSQL insert + commit,
  the channel-layer pub/sub through Redis, daphne's fan-out to its sockets and the client's read.
- ``{"bench": "ws_event_latency", "server": "bare_websockets", ...}``: the same N clients, E events, rate and
  frame size against two processes of a minimal ``websockets`` server that broadcasts every frame received on
  its ``/pub`` connection to its subscribers; the publisher sends each frame to both processes.
- ``{"bench": "ws_event_latency_ratio", ...}``: consulta / bare for p50, p99, delivered throughput and server CPU.

``lost`` is expected deliveries minus those received within the drain time after the last publish: a late
message counts as lost. Everything listens on and connects to 127.0.0.1 only. The benchmark uses its own
database (``consulta_bench``, created and migrated if missing) and Redis database 14 with its own key and
channel prefix, so it never touches dev or test data. Internal subcommands (``setup``, ``publish-consulta``,
``bare-server``, ``publish-bare``) are the child processes the run starts; they are not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import math
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCRIPT = Path(__file__).resolve()

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/consulta_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
# Redis pub/sub channels are global to the server (not per database): a prefix of our own keeps the bench's
# groups apart from a test run's ("consulta-test") or `make run`'s ("consulta") on the same Redis.
KEY_PREFIX = "consulta-bench"

# N clients : E events : rate (events/s). See docs/benchmarks.md for why N=1000 runs at a lower rate.
DEFAULT_PLAN = "100:200:20,1000:40:2,1000:50:20"
CONNECT_BATCH = 50
DRAIN_S = 5.0  # after the last publish; what has not arrived by then counts as lost
LATE_WAIT_S = 30.0  # then keep listening (while messages still arrive) to tell late from never delivered
HARD_LIMIT_S = 600  # the whole run, whatever happens
STREAM = "role:patient"
EVENT_TYPE = "bench.tick"


def log(msg: str) -> None:
    print(f"[ws_latency {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line, separators=(",", ":")), flush=True)


# --- small process helpers -------------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=DATABASE_URL,
        TEST_REDIS_URL=REDIS_URL,
        TEST_KEY_PREFIX=KEY_PREFIX,
        CELERY_QUEUE=f"{KEY_PREFIX}-celery",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    )
    return env


def _die_with_parent() -> None:
    """Children get SIGTERM if this process dies without cleaning up (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (0.0 if it is gone or unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_cpu() -> tuple[float, float, float]:
    """(busy, total, stolen) CPU seconds of the whole machine, all cores, from /proc/stat.

    Stolen time is time the hypervisor gave this VM's virtual CPUs to someone else.
    """
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    )
    ticks = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq
    return busy / ticks, (busy + idle + iowait + steal) / ticks, steal / ticks


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """pid -> (command name, CPU seconds) for every process on the machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        table[int(entry.name)] = (head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / ticks)
    return table


def busiest(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], exclude: set[int]) -> str:
    """The processes (other than ours) that used the most CPU between two snapshots, by command name."""
    by_name: dict[str, float] = {}
    for pid, (name, cpu) in after.items():
        if pid not in exclude:
            by_name[name] = by_name.get(name, 0.0) + cpu - before.get(pid, (name, 0.0))[1]
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:4]
    return ", ".join(f"{name} {cpu:.1f}s" for name, cpu in top if cpu >= 0.1) or "none"


def settle(servers: list[Child], timeout: float = 30) -> None:
    """Wait (bounded) until the servers are idle again, so one round's backlog does not bleed into the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = sum(proc_cpu_s(s.proc.pid) for s in servers)
        time.sleep(0.5)
        if sum(proc_cpu_s(s.proc.pid) for s in servers) - before < 0.05:
            return
    log(f"servers still busy after {timeout}s; going on")


def wait_for_quiet_host(threshold: float = 0.25, timeout: float = 15) -> float:
    """Wait (bounded) until the machine is mostly idle before a round; return the last busy share seen.

    The cores may be shared with other workloads; a busy host is waited out for a while, then reported.
    """
    deadline = time.monotonic() + timeout
    share = 1.0
    while time.monotonic() < deadline:
        b0, t0, _ = host_cpu()
        procs0 = cpu_by_process()
        time.sleep(1)
        b1, t1, _ = host_cpu()
        share = (b1 - b0) / max(t1 - t0, 1e-9)
        if share < threshold:
            return share
    top = busiest(procs0, cpu_by_process(), {os.getpid()})
    log(f"host still {share:.0%} busy after waiting {timeout}s ({top} in the last second); measuring anyway")
    return share


def raise_nofile(minimum: int = 4096) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < minimum:
        target = minimum if hard == resource.RLIM_INFINITY else min(max(minimum, soft), hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < minimum:
        raise SystemExit(f"open-file limit {soft} < {minimum}: run `ulimit -n 8192` first")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Child:
    """A server process of ours with its output in a log file; stopped by pid, never by name."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, port: int) -> None:
        self.name = name
        self.port = port
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=child_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # safe: this process starts no threads before its children
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            if port_open(self.port):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not listen on 127.0.0.1:{self.port} within {timeout}s")

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def problems_since(self, offset: int) -> list[str]:
        """Log lines since ``offset`` that look like trouble (warnings, errors, tracebacks)."""
        with self.log_path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        keys = ("ERROR", "WARNING", "Traceback", "CRITICAL", "Exception")
        return [line for line in text.splitlines() if any(k in line for k in keys)]

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._log.close()


# --- setup: database, users, sessions --------------------------------------------------------------------------


def ensure_database() -> None:
    import psycopg

    parts = urllib.parse.urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    if not name.endswith("bench"):
        raise SystemExit(f"refusing to use database {name!r}: the benchmark writes only to a *bench database")
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def run_child(argv: list[str], timeout: float) -> str:
    done = subprocess.run(argv, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def cmd_setup(count: int) -> None:
    """Child: N patient users (bulk, one password hash), one fresh signed-in session each; prints the keys."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.contrib.sessions.models import Session

    if not str(settings.DATABASES["default"]["NAME"]).endswith("bench"):
        raise SystemExit("refusing to create benchmark users outside a *bench database")
    user_model = get_user_model()
    names = [f"bench-patient-{i:05d}" for i in range(count)]
    existing = set(user_model.objects.filter(username__in=names).values_list("username", flat=True))
    missing = [n for n in names if n not in existing]
    if missing:
        password = make_password(secrets.token_urlsafe(16))  # hashed once: Argon2 per user would take minutes
        user_model.objects.bulk_create(
            [user_model(username=n, password=password, roles=["patient"]) for n in missing], batch_size=500
        )
    users = list(user_model.objects.filter(username__in=names).order_by("username"))
    Session.objects.all().delete()  # the bench database's sessions are all ours, from earlier runs
    keys = []
    for user in users:
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        keys.append(session.session_key)
    print(json.dumps({"created_users": len(missing), "sessions": keys}))


# --- publishers (child processes) ------------------------------------------------------------------------------


def _paced(events: int, rate: float) -> list[float]:
    start = time.monotonic() + 0.05
    return [start + k / rate for k in range(events)]


def cmd_publish_consulta(events: int, rate: float) -> None:
    """Child: publish ``events`` events to role:patient through the real service, at ``rate`` per second."""
    import django

    django.setup()
    from django.db import connection

    from core.realtime.services import publish_to_role

    class Count(logging.Handler):
        n = 0

        def emit(self, record: logging.LogRecord) -> None:
            Count.n += 1

    counter = Count(level=logging.WARNING)
    logging.getLogger("core.realtime").addHandler(counter)

    # Warm up the DB connection and the push thread's Redis connection on a stream nobody receives.
    publish_to_role(role="bench-warmup", type="bench.warmup", data={})
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])
    cpu0, pg0 = time.process_time(), proc_cpu_s(backend)
    calls = []
    first = last = 0
    for k, due in enumerate(_paced(events, rate)):
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = time.time_ns()
        publish_to_role(role="patient", type=EVENT_TYPE, data={"t": t, "i": k})
        last = time.time_ns()
        first = first or t
        calls.append((last - t) / 1e6)
    calls.sort()
    summary = {
        "published": len(calls),
        "window_s": (last - first) / 1e9,
        "call_p50_ms": percentile(calls, 0.5),
        "call_p99_ms": percentile(calls, 0.99),
        "cpu_s": time.process_time() - cpu0,
        "pg_backend_cpu_s": proc_cpu_s(backend) - pg0,
        "push_warnings": Count.n,
    }
    print(json.dumps(summary))


def bare_frame(k: int, t: int) -> str:
    """The same JSON shape, field order and size as a consulta event frame."""
    at = datetime.now(UTC).isoformat()
    event = {"kind": "event", "stream": STREAM, "seq": k + 1, "type": EVENT_TYPE, "data": {"t": t, "i": k}, "at": at}
    return json.dumps(event, separators=(",", ":"))


async def publish_bare(ports: list[int], events: int, rate: float) -> None:
    from websockets.asyncio.client import connect

    conns = [
        await connect(f"ws://127.0.0.1:{p}/pub", compression=None, proxy=None, ping_interval=None, open_timeout=10)
        for p in ports
    ]
    cpu0 = time.process_time()
    calls = []
    first = last = 0
    for k, due in enumerate(_paced(events, rate)):
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = time.time_ns()
        frame = bare_frame(k, t)
        for ws in conns:
            await ws.send(frame)
        last = time.time_ns()
        first = first or t
        calls.append((last - t) / 1e6)
    for ws in conns:
        await ws.close()
    calls.sort()
    summary = {
        "published": len(calls),
        "window_s": (last - first) / 1e9,
        "call_p50_ms": percentile(calls, 0.5),
        "call_p99_ms": percentile(calls, 0.99),
        "cpu_s": time.process_time() - cpu0,
    }
    print(json.dumps(summary))


async def bare_server(port: int, max_seconds: float) -> None:
    """Child: the baseline. Subscribers get a hello, then every frame the publisher connection sends."""
    from websockets.asyncio.server import broadcast, serve

    subscribers: set[Any] = set()

    async def handler(ws: Any) -> None:
        if ws.request.path == "/pub":
            async for message in ws:
                broadcast(subscribers, message)
            return
        subscribers.add(ws)
        try:
            await ws.send(json.dumps({"kind": "hello", "streams": {STREAM: 0}}, separators=(",", ":")))
            await ws.wait_closed()
        finally:
            subscribers.discard(ws)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, backlog=1024):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max_seconds)


# --- the clients and one measured round ------------------------------------------------------------------------


@dataclass
class Target:
    url: str
    origin: str | None = None
    cookie: str | None = None


@dataclass
class Recorder:
    events: int
    latencies_ms: list[float] = field(default_factory=list)
    received: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    unexpected_close: int = 0
    last_recv_ns: int = 0
    first_sent_ns: int = 0
    complete: int = 0  # clients that got every event


async def open_client(target: Target, timeout: float = 30) -> Any:
    from websockets.asyncio.client import connect

    headers = [("Cookie", f"consulta_session={target.cookie}")] if target.cookie else None
    ws = await connect(
        target.url,
        origin=target.origin,
        additional_headers=headers,
        compression=None,
        proxy=None,
        ping_interval=None,
        open_timeout=timeout,
        close_timeout=2,
    )
    try:
        hello = json.loads(await asyncio.wait_for(ws.recv(), timeout=timeout))
    except BaseException:
        await ws.close()
        raise
    if hello.get("kind") != "hello" or STREAM not in hello.get("streams", {}):
        await ws.close()
        raise RuntimeError(f"unexpected first frame: {hello!r}")
    return ws


async def connect_all(targets: list[Target]) -> tuple[list[Any], int]:
    """Open the sockets ``CONNECT_BATCH`` at a time, each batch waiting for its hellos; one retry per socket."""
    sockets: list[Any] = []
    failures = 0
    for start in range(0, len(targets), CONNECT_BATCH):
        batch = targets[start : start + CONNECT_BATCH]
        results = await asyncio.gather(*(open_client(t) for t in batch), return_exceptions=True)
        for target, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                failures += 1
                log(f"connect failed ({type(result).__name__}: {result}); retrying once")
                await asyncio.sleep(0.5)
                try:
                    result = await open_client(target)
                except Exception as err:
                    log(f"connect failed again: {type(err).__name__}: {err}")
                    continue
            sockets.append(result)
    return sockets, failures


async def reader(ws: Any, rec: Recorder) -> None:
    from websockets.exceptions import ConnectionClosed

    seen = bytearray(rec.events)
    got = 0
    last_i = -1
    try:
        async for raw in ws:
            now = time.time_ns()
            msg = json.loads(raw)
            if msg.get("kind") != "event" or msg.get("type") != EVENT_TYPE:
                continue
            data = msg["data"]
            i, t = int(data["i"]), int(data["t"])
            if not 0 <= i < rec.events or seen[i]:
                rec.duplicates += 1
                continue
            seen[i] = 1
            if i < last_i:
                rec.out_of_order += 1
            last_i = max(last_i, i)
            got += 1
            rec.received += 1
            rec.latencies_ms.append((now - t) / 1e6)
            rec.last_recv_ns = max(rec.last_recv_ns, now)
            rec.first_sent_ns = t if not rec.first_sent_ns else min(rec.first_sent_ns, t)
            if got == rec.events:
                rec.complete += 1
                return
    except ConnectionClosed:
        pass
    rec.unexpected_close += 1


async def close_all(sockets: list[Any]) -> None:
    for start in range(0, len(sockets), 100):
        batch = sockets[start : start + 100]
        await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in batch), return_exceptions=True), timeout=15)
        await asyncio.sleep(0.05)


def redis_cpu_s() -> float:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        info = client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    except Exception:
        return float("nan")
    finally:
        client.close()


async def run_round(
    server: str, targets: list[Target], events: int, rate: float, publisher: list[str], servers: list[Child]
) -> dict[str, Any]:
    n = len(targets)
    busy_before = wait_for_quiet_host()
    log(f"{server}: opening {n} sockets ({CONNECT_BATCH} at a time)")
    t0 = time.monotonic()
    sockets, failures = await connect_all(targets)
    connect_s = time.monotonic() - t0
    log(f"{server}: {len(sockets)}/{n} open in {connect_s:.1f}s; publishing {events} events at {rate}/s")
    rec = Recorder(events=events)
    readers = [asyncio.create_task(reader(ws, rec)) for ws in sockets]
    log_offsets = [s.log_size() for s in servers]
    cpu0 = [proc_cpu_s(s.proc.pid) for s in servers]
    client0, redis0, host0 = time.process_time(), redis_cpu_s(), host_cpu()
    procs0 = cpu_by_process()
    expected = n * events
    pub_summary: dict[str, Any] = {}
    proc = None
    try:
        proc = await asyncio.create_subprocess_exec(
            *publisher,
            cwd=ROOT,
            env=child_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=events / rate + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"{server} publisher failed ({proc.returncode}):\n{err.decode()[-4000:]}")
        pub_summary = json.loads(out.decode().strip().splitlines()[-1])
        drain_until = time.monotonic() + DRAIN_S
        while rec.received < expected and time.monotonic() < drain_until:
            await asyncio.sleep(0.02)
        in_time = rec.received
        if in_time < expected:
            log(f"{server}: {expected - in_time} deliveries missing {DRAIN_S}s after the last publish; listening on")
            late_until = time.monotonic() + LATE_WAIT_S
            seen, progress_at = rec.received, time.monotonic()
            while rec.received < expected and time.monotonic() < late_until and time.monotonic() - progress_at < 3:
                await asyncio.sleep(0.1)
                if rec.received != seen:
                    seen, progress_at = rec.received, time.monotonic()
        client_cpu = time.process_time() - client0
        server_cpu = sum(proc_cpu_s(s.proc.pid) - c for s, c in zip(servers, cpu0, strict=True))
        redis_cpu = redis_cpu_s() - redis0
        host1 = host_cpu()
        others = busiest(procs0, cpu_by_process(), {os.getpid()} | {s.proc.pid for s in servers})
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        log(f"{server}: closing sockets")
        await close_all(sockets)
    problems = [line for s, off in zip(servers, log_offsets, strict=True) for line in s.problems_since(off)]
    for line in problems[:10]:
        log(f"{server} log: {line}")
    lat = sorted(rec.latencies_ms)
    window_s = (rec.last_recv_ns - rec.first_sent_ns) / 1e9 if rec.received else float("nan")
    result: dict[str, Any] = {
        "bench": "ws_event_latency",
        "server": server,
        "clients": n,
        "server_processes": len(servers),
        "events": events,
        "rate_eps": rate,
        "payload_bytes": len(bare_frame(events - 1, time.time_ns())),
        "p50_ms": round(percentile(lat, 0.5), 2),
        "p90_ms": round(percentile(lat, 0.9), 2),
        "p99_ms": round(percentile(lat, 0.99), 2),
        "max_ms": round(lat[-1], 2) if lat else None,
        "deliveries_per_s": round(rec.received / window_s, 1) if rec.received else 0.0,
        "offered_deliveries_per_s": n * rate,
        "window_s": round(window_s, 2),
        "expected": expected,
        "received": in_time,
        "lost": expected - in_time,
        "late": rec.received - in_time,
        "undelivered": expected - rec.received,
        "duplicates": rec.duplicates,
        "out_of_order": rec.out_of_order,
        "connected": len(sockets),
        "connect_failures": failures,
        "connect_s": round(connect_s, 2),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_us_per_delivery": round(server_cpu / rec.received * 1e6, 1) if rec.received else None,
        "client_cpu_s": round(client_cpu, 2),
        "client_cpu_share": round(client_cpu / window_s, 2) if rec.received else None,
        "redis_cpu_s": round(redis_cpu, 2),
        "host_cpu_busy_share": round((host1[0] - host0[0]) / max(host1[1] - host0[1], 1e-9), 2),
        "host_cpu_s": round(host1[0] - host0[0], 2),
        "host_cpu_steal_share": round((host1[2] - host0[2]) / max(host1[1] - host0[1], 1e-9), 3),
        # CPU the machine spent outside this benchmark's processes (other workloads sharing the 2 cores).
        "other_cpu_s": round(
            (host1[0] - host0[0])
            - server_cpu
            - client_cpu
            - redis_cpu
            - pub_summary.get("cpu_s", 0.0)
            - pub_summary.get("pg_backend_cpu_s", 0.0),
            2,
        ),
        "other_top": others,
        "host_busy_before": round(busy_before, 2),
        "publisher": {k: round(v, 2) if isinstance(v, float) else v for k, v in pub_summary.items()},
        "server_log_problems": len(problems),
    }
    if server == "consulta":
        result["daphne_processes"] = len(servers)
    log(f"{server}: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, lost {result['lost']}")
    return result


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return round(a / b, 2)


# --- orchestration ---------------------------------------------------------------------------------------------


def parse_plan(text: str) -> list[tuple[int, int, float]]:
    plan = []
    for item in text.split(","):
        n, e, r = item.split(":")
        plan.append((int(n), int(e), float(r)))
    return plan


def _alarm(signum: int, frame: Any) -> None:
    raise TimeoutError(f"benchmark exceeded its hard limit of {HARD_LIMIT_S}s")


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(f"terminated by signal {signum}")


def orchestrate(plan: list[tuple[int, int, float]]) -> None:
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.alarm(HARD_LIMIT_S)
    started = time.monotonic()
    raise_nofile(4 * max(n for n, _, _ in plan) + 256)
    log_dir = Path(tempfile.mkdtemp(prefix="consulta-bench-"))
    children: list[Child] = []
    clean = False
    try:
        ensure_database()
        log("migrating the bench database")
        run_child([str(BIN / "python"), "manage.py", "migrate", "--noinput", "--skip-checks"], timeout=180)
        max_n = max(n for n, _, _ in plan)
        log(f"creating users and {max_n} sessions")
        setup = json.loads(
            run_child([sys.executable, str(SCRIPT), "setup", "--count", str(max_n)], timeout=180).splitlines()[-1]
        )
        keys: list[str] = setup["sessions"]

        daphnes = []
        for i in range(2):
            port = free_port()
            argv = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
            daphnes.append(Child(f"daphne-{i}", argv, log_dir, port))
        bares = []
        for i in range(2):
            port = free_port()
            argv = [sys.executable, str(SCRIPT), "bare-server", "--port", str(port), "--max-seconds", "900"]
            bares.append(Child(f"bare-{i}", argv, log_dir, port))
        children = daphnes + bares
        for child in children:
            child.wait_ready()
        log(f"daphne on {[d.port for d in daphnes]}, bare websockets on {[b.port for b in bares]}")

        for n, events, rate in plan:
            consulta_targets = [
                Target(
                    url=f"ws://127.0.0.1:{daphnes[j % 2].port}/ws/v1/events/",
                    origin=f"http://127.0.0.1:{daphnes[j % 2].port}",
                    cookie=keys[j],
                )
                for j in range(n)
            ]
            pub = [sys.executable, str(SCRIPT), "publish-consulta", "--events", str(events), "--rate", str(rate)]
            consulta = asyncio.run(run_round("consulta", consulta_targets, events, rate, pub, daphnes))
            emit(consulta)
            settle(daphnes)

            bare_targets = [Target(url=f"ws://127.0.0.1:{bares[j % 2].port}/sub") for j in range(n)]
            ports = ",".join(str(b.port) for b in bares)
            pub = [sys.executable, str(SCRIPT), "publish-bare", "--ports", ports]
            pub += ["--events", str(events), "--rate", str(rate)]
            bare = asyncio.run(run_round("bare_websockets", bare_targets, events, rate, pub, bares))
            emit(bare)
            settle(bares)
            emit(
                {
                    "bench": "ws_event_latency_ratio",
                    "clients": n,
                    "events": events,
                    "rate_eps": rate,
                    "p50_ratio": ratio(consulta["p50_ms"], bare["p50_ms"]),
                    "p99_ratio": ratio(consulta["p99_ms"], bare["p99_ms"]),
                    "throughput_ratio": ratio(consulta["deliveries_per_s"], bare["deliveries_per_s"]),
                    "server_cpu_per_delivery_ratio": ratio(
                        consulta["server_cpu_us_per_delivery"], bare["server_cpu_us_per_delivery"]
                    ),
                    "consulta_lost": consulta["lost"],
                    "bare_lost": bare["lost"],
                }
            )
        clean = True
    finally:
        signal.alarm(0)
        for child in children:
            if child.proc.poll() is not None:
                clean = False
                log(f"{child.name} died during the run (exit {child.proc.returncode}):\n{child.tail()}")
            child.stop()
        if clean and not any(c.problems_since(0) for c in children):
            for child in children:
                child.log_path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                log_dir.rmdir()
            log(f"done in {time.monotonic() - started:.0f}s; server logs were clean (removed)")
        else:
            log(f"done in {time.monotonic() - started:.0f}s; server logs kept in {log_dir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", default=os.environ.get("BENCH_WS_PLAN", DEFAULT_PLAN), help="N:E:rate,...")
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("setup")
    p.add_argument("--count", type=int, required=True)
    for name in ("publish-consulta", "publish-bare"):
        p = sub.add_parser(name)
        p.add_argument("--events", type=int, required=True)
        p.add_argument("--rate", type=float, required=True)
        if name == "publish-bare":
            p.add_argument("--ports", required=True)
    p = sub.add_parser("bare-server")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args()

    if args.cmd is None:
        orchestrate(parse_plan(args.plan))
        return
    sys.path.insert(0, str(ROOT))
    if args.cmd == "setup":
        cmd_setup(args.count)
    elif args.cmd == "publish-consulta":
        cmd_publish_consulta(args.events, args.rate)
    elif args.cmd == "publish-bare":
        asyncio.run(publish_bare([int(p) for p in args.ports.split(",")], args.events, args.rate))
    elif args.cmd == "bare-server":
        asyncio.run(bare_server(args.port, args.max_seconds))


if __name__ == "__main__":
    main()
