"""Visit signaling under load: many simultaneous video visits negotiating across two daphne processes.

Reproduce: ``.venv/bin/python benchmarks/signaling_visits.py`` (``make bench`` runs it with the others; 3-5
minutes). Options: ``--visits 500`` (simultaneous visits), ``--rounds 30,10,1`` (one round per value: the
seconds over which the visits start negotiating), ``--candidates 10`` (per side). It needs
PostgreSQL and Redis as ``scripts/bench.sh`` provides them; on its own it uses 127.0.0.1:5432 and :6379.
Environment: ``BENCH_SIGNAL_VISITS`` and ``BENCH_SIGNAL_SPREADS`` (defaults of the two options),
``BENCH_SIGNAL_DATABASE_URL``, ``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/14``), ``BENCH_LOG_LEVEL``.

What happens:

1. A database of its own, ``consulta_signal_bench`` (created and migrated if missing; ``BENCH_SIGNAL_DATABASE_URL``
   overrides it), is seeded by a child process: one clinic, ``visits`` practitioners and as many portal patients
   (registered once through ``ehr.services.patient_register``, reused by later runs), one visit *in progress* per
   pair (the telehealth tables are emptied first), and a fresh signed-in session per user.
2. Two daphne processes (``config.asgi``, test settings, the production channel layer
   ``BoundedRedisPubSubChannelLayer`` on Redis database 14 with the prefix ``consulta-signal-bench``) start.
3. One asyncio client process opens every socket, like a browser (session cookie + Origin): for each visit the
   doctor on daphne A and the patient on daphne B, at ``/ws/v1/visits/<uuid>/``, and waits for every ``welcome``
   and peer announcement. All ``2 * visits`` sockets then stay open for the whole round.
4. The visits start negotiating at evenly spaced moments over ``spread`` seconds. Each doctor sends an offer and
   ``candidates`` ICE candidates (``seq`` 0..n, a trickle burst); the patient answers each frame it receives with
   its own (the answer for the offer, candidate k for candidate k). A realistic offer SDP (~3 KB) and answer
   (~2.5 KB), real-looking candidates.

Figures (one JSON line per round on stdout; progress on stderr):

- ``rtt_p50_ms`` / ``rtt_p99_ms`` / ``rtt_max_ms``: message round trip, from the doctor sending frame k to the
  doctor receiving the patient's frame k (two relays through daphne A → Redis → daphne B and back, and the
  patient client's turn-around). ``visits * (candidates + 1)`` samples.
- ``one_way_p50_ms`` / ``one_way_p99_ms``: send → receive of every relayed frame, both directions.
- ``rtt_p99_ms_by_window``: the round trip's p99 per 5 s of the round (a stall of the host versus steady queueing).
- ``sockets_closed``: sockets the server closed during the run, by side and close code (must be empty).
- ``lost``: frames not received within ``DRAIN_S`` after the round's last send; of those, ``late`` arrived while
  the run kept listening (up to ``LATE_WAIT_S``) and ``undelivered`` never did. ``reordered``: frames received with
  a lower number than one already received on that socket; ``duplicates``; ``echoed``: frames that came back to
  their sender. All must be 0. ``seq`` carries the round number, so a late frame never counts in a later round.
- ``messages``, ``messages_per_s`` (relayed frames / negotiation window), ``server_cpu_s`` (both daphnes),
  ``client_cpu_share``, ``host_busy_before``, ``connect_s``, ``server_log_problems``.

Sender and receiver clocks are the same process's ``time.perf_counter_ns``. Everything stays on 127.0.0.1.
Internal subcommand ``setup`` is the seeding child.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
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
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCRIPT = Path(__file__).resolve()


def _sibling_database(url: str, name: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{name}"))


DATABASE_URL = os.environ.get("BENCH_SIGNAL_DATABASE_URL") or _sibling_database(
    os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/consulta_bench"), "consulta_signal_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
KEY_PREFIX = "consulta-signal-bench"  # Redis pub/sub channels are server-wide: a prefix of our own
HARD_LIMIT_S = 840
CONNECT_BATCH = 50
DRAIN_S = 10.0  # after the last send; what has not arrived by then counts as lost
LATE_WAIT_S = 30.0  # then keep listening (while frames still arrive) to tell late from never delivered
WINDOW_S = 5.0  # rtt_p99_ms_by_window: one p99 per this many seconds of the round (stalls versus steady queueing)
SEQ_STRIDE = 1000  # seq = round * SEQ_STRIDE + k: a late frame of an earlier round is never mistaken for a new one
TARGET_RTT_P99_MS = 50.0
ORIGIN_HOST = "127.0.0.1"

OFFER_SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "a=extmap-allow-mixed\r\na=msid-semantic: WMS stream\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:Ab3d\r\na=ice-pwd:Zx9y8w7v6u5t4s3r2q1p0o9n\r\na=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 " + ":".join(["7B"] * 32) + "\r\na=setup:actpass\r\na=mid:0\r\n"
    "a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
) + "".join(
    f"a=rtpmap:{96 + i} VP8/90000\r\na=rtcp-fb:{96 + i} nack\r\na=rtcp-fb:{96 + i} nack pli\r\n" for i in range(24)
)
ANSWER_SDP = OFFER_SDP.replace("a=setup:actpass", "a=setup:active")[:2500]


def log(msg: str) -> None:
    print(f"[signaling_visits {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line, separators=(",", ":")), flush=True)


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
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_busy_share(seconds: float = 1.0) -> float:
    def sample() -> tuple[float, float]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        user, nice, system, idle, iowait, irq, softirq, steal = values
        busy = user + nice + system + irq + softirq
        return busy, busy + idle + iowait + steal

    b0, t0 = sample()
    time.sleep(seconds)
    b1, t1 = sample()
    return (b1 - b0) / max(t1 - t0, 1e-9)


def wait_for_quiet_host(threshold: float = 0.3, timeout: float = 20) -> float:
    """Wait (bounded) until the shared 2-core machine is mostly idle; return the last busy share seen."""
    deadline = time.monotonic() + timeout
    share = 1.0
    while time.monotonic() < deadline:
        share = host_busy_share()
        if share < threshold:
            break
    else:
        log(f"host still {share:.0%} busy after {timeout}s; measuring anyway")
    return round(share, 2)


def raise_nofile(minimum: int = 4096) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < minimum:
        target = minimum if hard == resource.RLIM_INFINITY else min(minimum, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return round(sorted_values[min(rank, len(sorted_values)) - 1], 2)


class Daphne:
    """A daphne of ours with its output in a log file; stopped by pid, never by name."""

    def __init__(self, name: str, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        argv = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=child_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # safe: this process starts no threads before its children
        )

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

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

    def problems(self) -> list[str]:
        keys = ("ERROR", "WARNING", "Traceback", "CRITICAL", "Exception")
        return [line for line in self.log_path.read_text(errors="replace").splitlines() if any(k in line for k in keys)]

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._log.close()


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


# --- child: seed the world -----------------------------------------------------------------------------------------


def cmd_setup(visits: int) -> None:
    """Child: practitioners, portal patients, one in-progress visit per pair, a session per user; prints JSON."""
    import django

    django.setup()
    from django.apps import apps
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.cached_db import SessionStore
    from django.contrib.sessions.models import Session
    from django.db import connection
    from django.utils import timezone

    from ehr.models import Location, Organization, Patient, User
    from ehr.services.patients import PatientInput, patient_register
    from telehealth.models import Visit, VisitStatus

    if not str(settings.DATABASES["default"]["NAME"]).endswith("bench"):
        raise SystemExit("refusing to seed outside a *bench database")
    tables = [m._meta.db_table for m in apps.get_app_config("telehealth").get_models()]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")

    org, _ = Organization.objects.get_or_create(name="Signaling Bench Health")
    clinic, _ = Location.objects.get_or_create(
        organization=org, name="Signal Bench Clinic", defaults={"timezone": "Europe/Lisbon"}
    )
    hashed = make_password(secrets.token_urlsafe(16))  # one hash: nobody signs in with a password here

    def users(prefix: str, role: str) -> list[User]:
        names = [f"{prefix}-{i:04d}" for i in range(visits)]
        have = set(User.objects.filter(username__in=names).values_list("username", flat=True))
        User.objects.bulk_create(
            [
                User(username=n, password=hashed, roles=[role], organization=org, first_name="Bench", last_name=n)
                for n in names
                if n not in have
            ],
            batch_size=500,
        )
        return list(User.objects.filter(username__in=names).order_by("username"))

    doctors = users("signal-bench-dr", "practitioner")
    through = User.locations.through
    through.objects.bulk_create(
        [through(user_id=d.pk, location_id=clinic.pk) for d in doctors], ignore_conflicts=True, batch_size=500
    )
    patient_users = users("signal-bench-pt", "patient")
    registrar = User.objects.filter(username="signal-bench-registrar").first() or User.objects.create(
        username="signal-bench-registrar", password=hashed, roles=["admin"], organization=org
    )
    linked = dict(Patient.objects.filter(user_id__in=[u.pk for u in patient_users]).values_list("user_id", "pk"))
    for i, user in enumerate(patient_users):
        if user.pk not in linked:
            ref = patient_register(
                actor=registrar,
                data=PatientInput(
                    given_name=f"Synthetic{i}",
                    family_name="Signalbench",
                    birth_date=date(1950, 1, 1) + timedelta(days=i * 29),
                    sex="unknown",
                    user_id=user.pk,
                ),
                allow_duplicate=True,
            )
            linked[user.pk] = ref.id

    now = timezone.now()
    rows = Visit.objects.bulk_create(
        [
            Visit(
                appointment_id=9_000_000 + i,
                patient_id=linked[pt.pk],
                patient_user=pt,
                practitioner=dr,
                location_id=clinic.pk,
                status=VisitStatus.IN_PROGRESS,
                consent_at=now,
                checked_in_at=now,
                queue_key=now,
                admitted_at=now,
                patient_connected=True,
            )
            for i, (dr, pt) in enumerate(zip(doctors, patient_users, strict=True))
        ]
    )
    Session.objects.all().delete()  # the bench database's sessions are all ours, from earlier runs

    def session_key(user: User) -> str:
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        assert session.session_key is not None
        return session.session_key

    print(
        json.dumps(
            {
                "cookie_name": settings.SESSION_COOKIE_NAME,
                "visits": [
                    {"id": str(v.pk), "doctor": session_key(dr), "patient": session_key(pt)}
                    for v, dr, pt in zip(rows, doctors, patient_users, strict=True)
                ],
            }
        )
    )


# --- the client ----------------------------------------------------------------------------------------------------


@dataclass
class Side:
    """One socket's bookkeeping in one round: what it sent (k -> send time) and received (k, receive time)."""

    sent: dict[int, int] = field(default_factory=dict)
    received: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class VisitRun:
    visit_id: str
    doctor: Any = None
    patient: Any = None
    rounds: dict[int, tuple[Side, Side]] = field(default_factory=dict)  # round -> (doctor's side, patient's side)
    echoed: int = 0
    other: int = 0
    closed: list[str] = field(default_factory=list)  # "doctor:<code>" / "patient:<code>" of sockets that closed


def candidate(k: int, side: str) -> dict[str, Any]:
    octet = 10 + k
    return {
        "candidate": f"candidate:{k} 1 udp {2122260223 - k} 192.0.2.{octet} {40000 + k} typ host generation 0 "
        f"ufrag {side[:4]} network-id 1",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": side[:4],
    }


def frame_for(k: int, *, doctor: bool, round_no: int = 0) -> str:
    """Frame k of a side's negotiation (0: the offer or answer, then candidates), ``seq`` tagged with the round."""
    seq = round_no * SEQ_STRIDE + k
    if k == 0:
        kind = "offer" if doctor else "answer"
        return json.dumps({"kind": "signal", "type": kind, "sdp": OFFER_SDP if doctor else ANSWER_SDP, "seq": seq})
    side = "doctor" if doctor else "patient"
    return json.dumps({"kind": "signal", "type": "candidate", "candidate": candidate(k, side), "seq": seq})


async def open_socket(url: str, cookie: str, origin: str) -> Any:
    import websockets

    for attempt in range(2):
        try:
            return await websockets.connect(
                url,
                additional_headers=[("Cookie", cookie), ("Origin", origin)],
                open_timeout=60,
                max_size=2**20,
                compression=None,
                ping_interval=None,
            )
        except (OSError, TimeoutError):
            if attempt:
                raise
            await asyncio.sleep(0.5)  # one retry after a refused connect under a connect storm
    raise AssertionError("unreachable")


async def recv_json(ws: Any, timeout: float = 60) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def connect_visit(run: VisitRun, a: str, b: str, cookie_name: str, keys: dict[str, str]) -> None:
    origin = "http://127.0.0.1"
    run.doctor = await open_socket(f"{a}/ws/v1/visits/{run.visit_id}/", f"{cookie_name}={keys['doctor']}", origin)
    welcome = await recv_json(run.doctor)
    assert welcome["kind"] == "welcome", welcome
    run.patient = await open_socket(f"{b}/ws/v1/visits/{run.visit_id}/", f"{cookie_name}={keys['patient']}", origin)
    welcome = await recv_json(run.patient)
    assert welcome["kind"] == "welcome", welcome
    # Each side learns of the other once (peer-joined or peer-present).
    for ws in (run.doctor, run.patient):
        frame = await recv_json(ws)
        assert frame["kind"] in ("peer-joined", "peer-present"), frame


async def read_side(run: VisitRun, *, doctor: bool) -> None:
    """Record every relayed frame on one of the visit's sockets until it closes or the task is cancelled; the
    patient answers each of the doctor's frames with its own frame of the same number."""
    import websockets

    ws = run.doctor if doctor else run.patient
    me = "practitioner" if doctor else "patient"
    try:
        async for text in ws:
            now = time.perf_counter_ns()
            frame = json.loads(text)
            if frame.get("kind") != "signal":
                run.other += 1
                continue
            if frame.get("from") == me:
                run.echoed += 1
                continue
            round_no, k = divmod(frame["seq"], SEQ_STRIDE)
            sides = run.rounds.get(round_no)
            if sides is None:
                run.other += 1
                continue
            mine = sides[0] if doctor else sides[1]
            mine.received.append((k, now))
            if not doctor:
                mine.sent[k] = time.perf_counter_ns()
                await ws.send(frame_for(k, doctor=False, round_no=round_no))
    except websockets.ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else "none"
        run.closed.append(f"{'doctor' if doctor else 'patient'}:{code}")


async def negotiate(run: VisitRun, round_no: int, start_at: float, candidates: int) -> None:
    """The doctor trickles the offer and its candidates at ``start_at`` (a burst, as a browser does)."""
    delay = start_at - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    doc = run.rounds[round_no][0]
    for k in range(candidates + 1):
        text = frame_for(k, doctor=True, round_no=round_no)
        doc.sent[k] = time.perf_counter_ns()
        await run.doctor.send(text)


def received_count(runs: list[VisitRun], round_no: int) -> int:
    return sum(len(r.rounds[round_no][0].received) + len(r.rounds[round_no][1].received) for r in runs)


async def run_round(
    runs: list[VisitRun], servers: list[Daphne], round_no: int, spread: float, candidates: int
) -> dict[str, Any]:
    for run in runs:
        run.rounds[round_no] = (Side(), Side())
    expected = 2 * len(runs) * (candidates + 1)
    cpu0 = sum(proc_cpu_s(s.proc.pid) for s in servers)
    own0 = time.process_time()
    t0 = time.perf_counter() + 0.2
    step = spread / max(len(runs), 1)
    await asyncio.gather(*(negotiate(run, round_no, t0 + i * step, candidates) for i, run in enumerate(runs)))
    deadline = time.perf_counter() + DRAIN_S
    while time.perf_counter() < deadline and received_count(runs, round_no) < expected:
        await asyncio.sleep(0.05)
    in_time = received_count(runs, round_no)
    wall = time.perf_counter() - t0
    server_cpu = sum(proc_cpu_s(s.proc.pid) for s in servers) - cpu0
    client_cpu = time.process_time() - own0
    # Late or never? Keep listening while frames still arrive (bounded).
    late_deadline = time.perf_counter() + LATE_WAIT_S
    last, quiet_since = in_time, time.perf_counter()
    while time.perf_counter() < late_deadline and last < expected and time.perf_counter() - quiet_since < 5:
        await asyncio.sleep(0.2)
        now_count = received_count(runs, round_no)
        if now_count != last:
            last, quiet_since = now_count, time.perf_counter()

    rtt: list[float] = []
    one_way: list[float] = []
    by_window: dict[int, list[float]] = {}  # RTTs by when the doctor sent the frame, WINDOW_S buckets
    reordered = duplicates = undelivered = 0
    for run in runs:
        doc, pat = run.rounds[round_no]
        for sender, receiver in ((doc, pat), (pat, doc)):
            seen: set[int] = set()
            high = -1
            for k, at in receiver.received:
                if k in seen:
                    duplicates += 1
                    continue
                seen.add(k)
                if k < high:
                    reordered += 1
                high = max(high, k)
                if k in sender.sent:
                    one_way.append((at - sender.sent[k]) / 1e6)
            undelivered += len(set(sender.sent) - seen)
        answered = dict(doc.received)
        for k, sent in doc.sent.items():
            if k in answered:
                rtt.append((answered[k] - sent) / 1e6)
                by_window.setdefault(int((sent / 1e9 - t0) // WINDOW_S), []).append(rtt[-1])
        # A doctor frame the patient never got is never answered: count that reply as undelivered too.
        undelivered += len(doc.sent) - len(pat.sent)
    rtt.sort()
    one_way.sort()
    messages = len(one_way)
    return {
        "rtt_p50_ms": percentile(rtt, 0.5),
        "rtt_p99_ms": percentile(rtt, 0.99),
        "rtt_max_ms": round(rtt[-1], 2) if rtt else None,
        "one_way_p50_ms": percentile(one_way, 0.5),
        "one_way_p99_ms": percentile(one_way, 0.99),
        "rtt_samples": len(rtt),
        "rtt_p99_ms_by_window": [percentile(sorted(by_window[w]), 0.99) for w in sorted(by_window)],
        "messages": messages,
        "messages_expected": expected,
        "messages_per_s": round(in_time / max(wall, 1e-9), 1),
        "lost": expected - in_time,
        "late": last - in_time,
        "undelivered": undelivered,
        "reordered": reordered,
        "duplicates": duplicates,
        "echoed": sum(r.echoed for r in runs),
        "unexpected_frames": sum(r.other for r in runs),
        "sockets_closed": dict(Counter(c for r in runs for c in r.closed)),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_us_per_message": round(server_cpu / max(in_time, 1) * 1e6),
        "client_cpu_share": round(client_cpu / max(wall, 1e-9), 2),
    }


def settle(servers: list[Daphne], timeout: float = 60) -> None:
    """Wait (bounded) until the servers are idle, so one round's backlog does not bleed into the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = sum(proc_cpu_s(s.proc.pid) for s in servers)
        time.sleep(0.5)
        if sum(proc_cpu_s(s.proc.pid) for s in servers) - before < 0.05:
            return
    log(f"servers still busy after {timeout}s; going on")


async def client_main(plan: dict[str, Any], servers: list[Daphne], spreads: list[float], candidates: int) -> None:
    a, b = servers
    runs = [VisitRun(visit_id=v["id"]) for v in plan["visits"]]
    keys = {v["id"]: v for v in plan["visits"]}
    log(f"opening {2 * len(runs)} sockets (doctors on {a.name}, patients on {b.name})")
    t = time.perf_counter()
    for i in range(0, len(runs), CONNECT_BATCH):
        batch = runs[i : i + CONNECT_BATCH]
        await asyncio.gather(
            *(connect_visit(run, a.ws_url, b.ws_url, plan["cookie_name"], keys[run.visit_id]) for run in batch)
        )
    connect_s = round(time.perf_counter() - t, 2)
    log(f"all sockets open in {connect_s}s")
    readers = [asyncio.create_task(read_side(run, doctor=d)) for run in runs for d in (True, False)]
    try:
        for round_no, spread in enumerate(spreads):
            await asyncio.to_thread(settle, servers)
            busy = await asyncio.to_thread(wait_for_quiet_host)
            log(f"round {round_no}: {len(runs)} visits, negotiations spread over {spread}s")
            problems_before = [len(s.problems()) for s in servers]
            figures = await run_round(runs, servers, round_no, spread, candidates)
            problems = sum(len(s.problems()) - n for s, n in zip(servers, problems_before, strict=True))
            emit(
                {
                    "bench": "signaling_visits",
                    "visits": len(runs),
                    "sockets": 2 * len(runs),
                    "daphnes": 2,
                    "spread_s": spread,
                    "candidates_per_side": candidates,
                    **figures,
                    "target_rtt_p99_ms": TARGET_RTT_P99_MS,
                    "connect_s": connect_s,
                    "host_busy_before": busy,
                    "load_average": round(os.getloadavg()[0], 2),
                    "server_log_problems": problems,
                }
            )
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.gather(*(ws.close() for r in runs for ws in (r.doctor, r.patient) if ws is not None))


def _alarm(signum: int, frame: Any) -> None:
    raise TimeoutError(f"signaling_visits exceeded its hard limit of {HARD_LIMIT_S}s")


def orchestrate(visits: int, spreads: list[float], candidates: int) -> None:
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HARD_LIMIT_S)
    raise_nofile(4 * visits + 256)
    ensure_database()
    log("migrating the bench database")
    run_child([str(BIN / "python"), "manage.py", "migrate", "--noinput", "--skip-checks"], timeout=300)
    log(f"seeding {visits} visits")
    plan = json.loads(run_child([str(BIN / "python"), str(SCRIPT), "setup", "--visits", str(visits)], timeout=600))
    keep = os.environ.get("BENCH_SIGNAL_KEEP_LOGS")  # a folder to keep the daphne logs in
    with contextlib.nullcontext(keep) if keep else tempfile.TemporaryDirectory(prefix="signal-bench-") as tmp:
        Path(tmp).mkdir(parents=True, exist_ok=True)
        servers = [Daphne("daphne-a", Path(tmp)), Daphne("daphne-b", Path(tmp))]
        try:
            for server in servers:
                server.wait_ready()
            asyncio.run(client_main(plan, servers, spreads, candidates))
        finally:
            for server in servers:
                server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    setup = sub.add_parser("setup")
    setup.add_argument("--visits", type=int, required=True)
    parser.add_argument("--visits", type=int, default=int(os.environ.get("BENCH_SIGNAL_VISITS", "500")))
    parser.add_argument("--rounds", default=os.environ.get("BENCH_SIGNAL_SPREADS", "30,10,1"))
    parser.add_argument("--candidates", type=int, default=10)
    args = parser.parse_args()
    if args.cmd == "setup":
        sys.path.insert(0, str(ROOT))  # run as a script: make the project importable for django.setup()
        cmd_setup(args.visits)
        return
    orchestrate(args.visits, [float(s) for s in args.rounds.split(",")], args.candidates)


if __name__ == "__main__":
    main()
