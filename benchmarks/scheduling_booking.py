"""Booking under contention, uncontended booking throughput and free-slot search, over real HTTP against daphne.

Run: ``.venv/bin/python benchmarks/scheduling_booking.py`` (``make bench`` runs it with the other benchmarks).
Prints one JSON line per figure on stdout; progress goes to stderr. See docs/benchmarks.md for the figures.

The world (seeded afresh on every run into the database ``consulta_sched_bench``; its scheduling tables are
emptied first): one clinic in Europe/Lisbon with 50 practitioners (Mon-Fri 09:00-17:00), 12 exam rooms and 8 ECG
carts (08:00-19:00), and an in-person "ECG visit" type needing a practitioner, an exam room and an ECG cart
(30 minutes plus a 10-minute turnover). The search month (starting next week) is filled to about half with
synthetic bookings: video visits holding only the practitioner, ECG visits holding all three resources. The
booking weeks (five weeks later) start empty. Staff clients are scheduler users, each signed in like the SPA
(GET /api/v1/auth/csrf/, POST /api/v1/auth/login/, then the session cookie and the X-CSRFToken header).

- ``scheduling_booking_race``: ``attempts`` POST /api/v1/scheduling/appointments/ in rounds. Each round fires
  ``per_round`` attempts at once (one per client, spread over two daphne processes) at ``slots_per_round`` fresh
  contested slots, each slot a fixed practitioner + room + ECG cart at one time. Afterwards SQL counts double
  bookings (blocking slots of one schedule that overlap: must be 0), partial bookings (a booked appointment
  without all three slots: must be 0) and winners per contested slot (must be exactly 1), next to what HTTP said.
  Losers must get 409 ``slot_unavailable`` naming one of the slot's resources; anything else is ``unexpected``.
- ``scheduling_booking_uncontended``: ``bookings`` POSTs of distinct free slots by ``concurrency`` clients in a
  closed loop: bookings per second and latency.
- ``scheduling_slot_search``: every free start of the ECG visit over 30 days for all 50 practitioners (and for
  one), timed in-process (``scheduling.selectors.free_slot_search``) and over HTTP (GET /slots/).

Everything runs on 127.0.0.1; request loops are bounded in count and time. Internal subcommands (``setup``,
``search``) are the child processes the run starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCRIPT = Path(__file__).resolve()


def _sibling_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


# A database of its own (next to consulta_bench): ehr_reads sizes its data by counting patients, and this
# benchmark adds patients and thousands of bookings on every run.
DATABASE_URL = os.environ.get("BENCH_SCHED_DATABASE_URL") or _sibling_database(
    os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/consulta_bench"), "consulta_sched_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
KEY_PREFIX = "consulta-sched-bench"  # Redis pub/sub channels are server-wide: a prefix of our own
HARD_LIMIT_S = 840  # bench.sh gives each script 900 s

TIME_ZONE = "Europe/Lisbon"
PRACTITIONERS = 50
ROOMS = 12
CARTS = 8  # also the number of parallel "lanes" of booking cells (room i + cart i)
SEARCH_DAYS = 30
BOOKING_WEEKS = 12
HOURS = range(9, 17)  # booking cells start on the hour, 09:00-16:00 local
# Race rounds, "attempts:per_round:slots_per_round[,...]": per_round attempts are fired at once (one per client) at
# slots_per_round fresh contested slots. The first is the headline (10 000 attempts, 10 in flight, 5 per slot);
# the second a burst of 50 in flight, where 2 cores queue requests; the third pairs of racers, which shows what a
# loser waits for (the winner's commit) with next to no queueing for CPU; the fourth four racers for one slot.
DEFAULT_RACE = "10000:10:2,1000:50:10,600:2:1,1200:4:1"
DEFAULT_UNCONTENDED = "1000:8"  # bookings : concurrent clients
TARGET_LOSER_P99_MS = 100.0
TARGET_SEARCH_P95_MS = 50.0


def log(msg: str) -> None:
    print(f"[scheduling_booking {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line, separators=(",", ":")), flush=True)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return round(sorted_values[min(rank, len(sorted_values)) - 1], 2)


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


def host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    )
    ticks = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq
    return busy / ticks, (busy + idle + iowait + steal) / ticks


def wait_for_quiet_host(threshold: float = 0.3, timeout: float = 15) -> float:
    """Wait (bounded) until the machine is mostly idle; return the busy share of the last second. The two cores
    may be shared with other work, which every figure here is sensitive to: the share is printed with them."""
    deadline = time.monotonic() + timeout
    share = 1.0
    while time.monotonic() < deadline:
        b0, t0 = host_cpu()
        time.sleep(1)
        b1, t1 = host_cpu()
        share = (b1 - b0) / max(t1 - t0, 1e-9)
        if share < threshold:
            break
    else:
        log(f"host still {share:.0%} busy after {timeout}s; measuring anyway")
    return round(share, 2)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


class Child:
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
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
        keys = ("ERROR", "Traceback", "CRITICAL", "Exception")
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


# --- the world: dates and booking cells --------------------------------------------------------------------------


def search_month_start(today: date) -> date:
    """The Monday at least a week ahead: bookings there are in the future whatever the hour of the run."""
    monday = today + timedelta(days=7 - today.weekday())
    return monday + timedelta(days=7) if (monday - today).days < 7 else monday


def booking_weeks_start(today: date) -> date:
    return search_month_start(today) + timedelta(days=35)


def local_utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, dtime(hour, minute), tzinfo=ZoneInfo(TIME_ZONE)).astimezone(UTC)


@dataclass(frozen=True)
class Cell:
    """One bookable ECG visit nobody else's cell touches: a practitioner, room ``lane`` and cart ``lane``."""

    start: datetime
    practitioner: int  # index into the world's practitioners
    lane: int


def booking_cells(today: date) -> list[Cell]:
    """Every weekday of the booking weeks, every hour, every lane; at one time the lanes use different
    practitioners, rooms and carts, so cells never conflict with each other."""
    first = booking_weeks_start(today)
    cells = []
    for offset in range(BOOKING_WEEKS * 7):
        day = first + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for h_index, hour in enumerate(HOURS):
            for lane in range(CARTS):
                cells.append(Cell(local_utc(day, hour), (lane + CARTS * h_index + 3 * offset) % PRACTITIONERS, lane))
    return cells


# --- child: seed the world ---------------------------------------------------------------------------------------


def cmd_setup(clients: int, patients: int, today: date) -> None:
    """Child: empty the scheduling tables, create the clinic, resources, type, staff users and patients, fill the
    search month to about half; print what the clients need as JSON."""
    import django

    django.setup()
    from django.apps import apps
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from psycopg.types.range import TimestamptzRange

    from ehr.models import Location, Organization, Patient, User
    from ehr.services.patients import PatientInput, patient_register
    from scheduling.models import (
        Appointment,
        AppointmentType,
        AvailabilityRule,
        ResourceRequirement,
        Schedule,
        Slot,
    )

    if not str(settings.DATABASES["default"]["NAME"]).endswith("bench"):
        raise SystemExit("refusing to seed outside a *bench database")
    rng = random.Random(20310303)
    tables = [m._meta.db_table for m in apps.get_app_config("scheduling").get_models()]
    with connection.cursor() as cursor:
        # Ids keep counting: the EHR's planned encounters of earlier runs stay, each linked to its appointment id
        # (one encounter per appointment), so a reused id would be refused as already planned.
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")

    org, _ = Organization.objects.get_or_create(name="Scheduling Bench Health")
    clinic, _ = Location.objects.get_or_create(organization=org, name="Bench Clinic", defaults={"timezone": TIME_ZONE})
    password = secrets.token_urlsafe(16)
    hashed = make_password(password)
    names = [f"sched-bench-{i:03d}" for i in range(clients)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    User.objects.bulk_create(
        [User(username=n, roles=["scheduler"], organization=org) for n in names if n not in existing]
    )
    User.objects.filter(username__in=names).update(password=hashed)  # a fresh password per run, hashed once
    staff = list(User.objects.filter(username__in=names).order_by("username"))
    for user in staff:
        user.locations.add(clinic)
    doctor_names = [f"bench-dr-{i:02d}" for i in range(PRACTITIONERS)]
    existing = set(User.objects.filter(username__in=doctor_names).values_list("username", flat=True))
    User.objects.bulk_create(
        [
            User(username=n, roles=["practitioner"], organization=org, first_name="Bench", last_name=f"Doctor {n[-2:]}")
            for n in doctor_names
            if n not in existing
        ]
    )
    doctors = list(User.objects.filter(username__in=doctor_names).order_by("username"))
    for doctor in doctors:
        doctor.locations.add(clinic)

    registrar = staff[0]
    have = list(Patient.objects.filter(family_name="Benchpatient").values_list("pk", flat=True)[:patients])
    for i in range(len(have), patients):
        patient = patient_register(
            actor=registrar,
            data=PatientInput(
                given_name=f"Synthetic{i}",
                family_name="Benchpatient",
                birth_date=date(1950, 1, 1) + timedelta(days=i * 37),
                sex="unknown",
            ),
            allow_duplicate=True,
        )
        have.append(patient.pk)

    with transaction.atomic():
        practitioner_schedules = [
            Schedule.objects.create(
                kind="practitioner", name=d.display_name, practitioner=d, location=clinic, time_zone=TIME_ZONE
            )
            for d in doctors
        ]
        rooms = [
            Schedule.objects.create(
                kind="room", category="exam", name=f"Exam room {i + 1}", location=clinic, time_zone=TIME_ZONE
            )
            for i in range(ROOMS)
        ]
        carts = [
            Schedule.objects.create(
                kind="equipment", category="ecg", name=f"ECG cart {i + 1}", location=clinic, time_zone=TIME_ZONE
            )
            for i in range(CARTS)
        ]
        rules = []
        for schedule in practitioner_schedules + rooms + carts:
            start, end = (dtime(9), dtime(17)) if schedule.kind == "practitioner" else (dtime(8), dtime(19))
            rules += [
                AvailabilityRule(
                    schedule=schedule, weekday=d, start_time=start, end_time=end, effective_from=date(2020, 1, 1)
                )
                for d in range(5)
            ]
        AvailabilityRule.objects.bulk_create(rules)
        ecg = AppointmentType.objects.create(
            code="bench-ecg",
            name="ECG visit",
            modality="in-person",
            duration_minutes=30,
            buffer_after_minutes=10,
            slot_interval_minutes=15,
            min_notice_minutes=0,
            horizon_days=180,
            patient_bookable=False,
        )
        video = AppointmentType.objects.create(
            code="bench-video",
            name="Video visit",
            modality="video",
            duration_minutes=30,
            slot_interval_minutes=15,
            horizon_days=180,
            patient_bookable=True,
        )
        ResourceRequirement.objects.bulk_create(
            [
                ResourceRequirement(appointment_type=ecg, kind="practitioner"),
                ResourceRequirement(appointment_type=ecg, kind="room", category="exam"),
                ResourceRequirement(appointment_type=ecg, kind="equipment", category="ecg"),
                ResourceRequirement(appointment_type=video, kind="practitioner"),
            ]
        )

    # Fill the search month: every practitioner, every weekday, a 15-minute grid from 09:00; at each free start a
    # booking with probability 0.35 (about half the working time ends up booked): an ECG visit (three resources,
    # 40 minutes busy) 30% of the time when a room and a cart are free, else a 30-minute video visit.
    first = search_month_start(today)
    appointments: list[Appointment] = []
    plans: list[list[tuple[Schedule, datetime, datetime]]] = []
    for offset in range(SEARCH_DAYS):
        day = first + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        room_busy: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
        cart_busy: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)

        def free(busy: list[tuple[datetime, datetime]], s: datetime, e: datetime) -> bool:
            return all(e <= bs or be <= s for bs, be in busy)

        for doctor, schedule in zip(doctors, practitioner_schedules, strict=True):
            t = local_utc(day, 9)
            day_end = local_utc(day, 17)
            while t + timedelta(minutes=30) <= day_end:
                if rng.random() >= 0.35:
                    t += timedelta(minutes=15)
                    continue
                busy_end = t + timedelta(minutes=40)
                room = next((r for r in rooms if free(room_busy[r.pk], t, busy_end)), None)
                cart = next((c for c in carts if free(cart_busy[c.pk], t, busy_end)), None)
                if rng.random() < 0.3 and room is not None and cart is not None and busy_end <= day_end:
                    room_busy[room.pk].append((t, busy_end))
                    cart_busy[cart.pk].append((t, busy_end))
                    kind, end, held = ecg, t + timedelta(minutes=30), [schedule, room, cart]
                else:
                    kind, end, busy_end, held = video, t + timedelta(minutes=30), t + timedelta(minutes=30), [schedule]
                appointments.append(
                    Appointment(
                        patient_id=rng.choice(have),
                        appointment_type=kind,
                        practitioner=doctor,
                        location=clinic,
                        modality=kind.modality,
                        start=t,
                        end=end,
                        booked_by=registrar,
                    )
                )
                plans.append([(s, t, busy_end) for s in held])
                t = busy_end + timedelta(minutes=(-busy_end.minute) % 15)
    Appointment.objects.bulk_create(appointments, batch_size=2000)
    Slot.objects.bulk_create(
        [
            Slot(schedule=s, period=TimestamptzRange(start, end, "[)"), status="busy", appointment=appointment)
            for appointment, held in zip(appointments, plans, strict=True)
            for s, start, end in held
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE scheduling_slot; ANALYZE scheduling_appointment; ANALYZE scheduling_schedule")
    print(
        json.dumps(
            {
                "password": password,
                "usernames": names,
                "patient_ids": have,
                "ecg_type_id": ecg.pk,
                "practitioners": [
                    {"user_id": d.pk, "schedule_id": s.pk} for d, s in zip(doctors, practitioner_schedules, strict=True)
                ],
                "rooms": [r.pk for r in rooms],
                "carts": [c.pk for c in carts],
                "names": {str(s.pk): s.name for s in practitioner_schedules + rooms + carts},
                "search_start": local_utc(first, 0).isoformat(),
                "seeded_appointments": len(appointments),
                "seeded_slots": sum(len(p) for p in plans),
            }
        )
    )


# --- child: slot search in-process -------------------------------------------------------------------------------


def cmd_search(runs: int) -> None:
    """Child: time ``free_slot_search`` over the search month, for all practitioners and for one."""
    import django

    django.setup()
    import gc

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ehr.models import User
    from scheduling.models import AppointmentType, Schedule
    from scheduling.selectors import free_slot_search

    actor = User.objects.get(username="sched-bench-000")
    type_id = AppointmentType.objects.get(code="bench-ecg").pk
    one = Schedule.objects.filter(kind="practitioner").order_by("name").first()
    assert one is not None
    start = datetime.fromisoformat(json.loads(sys.stdin.read())["search_start"])
    end = start + timedelta(days=SEARCH_DAYS)
    gc.freeze()  # as the server does after startup (config/asgi.py): full collections skip the startup objects
    out = []
    for scope, practitioner_id in (("all", None), ("one", one.practitioner_id)):

        def call(practitioner_id: int | None = practitioner_id) -> list[Any]:
            return free_slot_search(
                actor=actor,
                appointment_type_id=type_id,
                window_start=start,
                window_end=end,
                practitioner_id=practitioner_id,
            )

        for _ in range(3):
            call()
        with CaptureQueriesContext(connection) as queries:
            results = call()
        timings, cpu = [], []
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            call()
            timings.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            connection.close()  # back to the pool, as a request would; the next call takes it again
        timings.sort()
        cpu.sort()
        out.append(
            {
                "scope": scope,
                "python_cpu_p50_ms": percentile(cpu, 0.5),
                "python_cpu_p95_ms": percentile(cpu, 0.95),
                "runs": runs,
                "results": len(results),
                "queries": len(queries),
                "p50_ms": percentile(timings, 0.5),
                "p95_ms": percentile(timings, 0.95),
                "max_ms": round(timings[-1], 2),
            }
        )
    print(json.dumps(out))


# --- HTTP clients --------------------------------------------------------------------------------------------------


@dataclass
class Client:
    base: str
    session: Any
    csrf: str = ""


async def sign_in(base: str, username: str, password: str) -> Client:
    import aiohttp
    from yarl import URL

    session = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies of 127.0.0.1 (an IP address) are kept only when unsafe
        connector=aiohttp.TCPConnector(limit=1),
        timeout=aiohttp.ClientTimeout(total=60),
    )
    client = Client(base=base, session=session)
    async with session.get(f"{base}/api/v1/auth/csrf/") as response:
        token = (await response.json())["csrfToken"]
    headers = {"X-CSRFToken": token, "Origin": base}
    async with session.post(
        f"{base}/api/v1/auth/login/", json={"username": username, "password": password}, headers=headers
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"sign-in of {username} failed: {response.status} {await response.text()}")
    client.csrf = session.cookie_jar.filter_cookies(URL(base))["csrftoken"].value  # rotated by the sign-in
    return client


async def post_booking(client: Client, body: dict[str, Any]) -> tuple[int, float, dict[str, Any]]:
    headers = {"X-CSRFToken": client.csrf, "Origin": client.base}
    t0 = time.perf_counter()
    async with client.session.post(f"{client.base}/api/v1/scheduling/appointments/", json=body, headers=headers) as r:
        raw = await r.read()
        status = r.status
    elapsed = (time.perf_counter() - t0) * 1000
    try:
        data = json.loads(raw)
    except ValueError:
        data = {"raw": raw[:200].decode(errors="replace")}
    return status, elapsed, data


def cell_body(world: dict[str, Any], cell: Cell, rng: random.Random) -> dict[str, Any]:
    return {
        "appointment_type_id": world["ecg_type_id"],
        "patient_id": rng.choice(world["patient_ids"]),
        "start": cell.start.isoformat(),
        "practitioner_id": world["practitioners"][cell.practitioner]["user_id"],
        "resource_ids": [world["rooms"][cell.lane], world["carts"][cell.lane]],
    }


def cell_schedules(world: dict[str, Any], cell: Cell) -> set[int]:
    return {
        world["practitioners"][cell.practitioner]["schedule_id"],
        world["rooms"][cell.lane],
        world["carts"][cell.lane],
    }


@dataclass
class RaceLog:
    winners: list[float] = field(default_factory=list)
    losers: list[float] = field(default_factory=list)
    wins_per_cell: Counter[Cell] = field(default_factory=Counter)
    named: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)


async def race(
    world: dict[str, Any], clients: list[Client], cells: list[Cell], attempts: int, per_round: int, per_slot: int
) -> tuple[RaceLog, list[Cell], float]:
    rng = random.Random(7)
    log_ = RaceLog()
    rounds = attempts // per_round
    used: list[Cell] = []
    started = time.perf_counter()
    for r in range(rounds):
        contested = cells[r * per_slot : (r + 1) * per_slot]
        used += contested
        bodies = [(contested[k % per_slot], cell_body(world, contested[k % per_slot], rng)) for k in range(per_round)]
        rng.shuffle(bodies)
        chosen = [clients[(r * per_round + k) % len(clients)] for k in range(per_round)]
        results = await asyncio.gather(*(post_booking(c, b) for c, (_, b) in zip(chosen, bodies, strict=True)))
        for (cell, _), (status, ms, data) in zip(bodies, results, strict=True):
            if status == 201:
                log_.winners.append(ms)
                log_.wins_per_cell[cell] += 1
            elif status == 409 and data.get("code") == "slot_unavailable":
                log_.losers.append(ms)
                resource = data.get("conflicting_resource", {}).get("schedule_id")
                if resource in cell_schedules(world, cell):
                    log_.named[world["names"][str(resource)].rsplit(" ", 1)[0]] += 1
                else:
                    log_.unexpected["409 naming another resource"] += 1
            else:
                log_.unexpected[f"{status} {data.get('code', '')}".strip()] += 1
                if len(log_.samples) < 5:
                    log_.samples.append(json.dumps(data)[:300])
        if (r + 1) % max(1, rounds // 10) == 0:
            log(f"race: {r + 1}/{rounds} rounds, {len(log_.winners)} winners, {len(log_.losers)} losers")
    return log_, used, time.perf_counter() - started


async def uncontended(
    world: dict[str, Any], clients: list[Client], cells: list[Cell], concurrency: int
) -> tuple[list[float], Counter[str], float]:
    rng = random.Random(11)
    queue: asyncio.Queue[Cell] = asyncio.Queue()
    for cell in cells:
        queue.put_nowait(cell)
    latencies: list[float] = []
    failures: Counter[str] = Counter()

    async def worker(client: Client) -> None:
        while True:
            try:
                cell = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            status, ms, data = await post_booking(client, cell_body(world, cell, rng))
            if status == 201:
                latencies.append(ms)
            else:
                failures[f"{status} {data.get('code', '')}".strip()] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients[:concurrency]))
    return latencies, failures, time.perf_counter() - started


async def http_search(
    world: dict[str, Any], client: Client, practitioner_id: int | None, runs: int
) -> tuple[list[float], int, int]:
    start = datetime.fromisoformat(world["search_start"])
    params = {
        "appointment_type": str(world["ecg_type_id"]),
        "start": start.isoformat(),
        "end": (start + timedelta(days=SEARCH_DAYS)).isoformat(),
    }
    if practitioner_id is not None:
        params["practitioner"] = str(practitioner_id)
    timings, results, size = [], 0, 0
    for i in range(runs + 2):
        t0 = time.perf_counter()
        async with client.session.get(f"{client.base}/api/v1/scheduling/slots/", params=params) as response:
            raw = await response.read()
            if response.status != 200:
                raise RuntimeError(f"slot search failed: {response.status} {raw[:300]!r}")
        if i >= 2:  # two warm-ups
            timings.append((time.perf_counter() - t0) * 1000)
        results, size = len(json.loads(raw)["results"]), len(raw)
    return sorted(timings), results, size


# --- SQL checks ----------------------------------------------------------------------------------------------------


def sql_checks(world: dict[str, Any], cells: list[Cell]) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        # A blocking slot that starts before an earlier-starting slot of its schedule has ended: an overlap.
        double = conn.execute(
            """
            SELECT count(*) FROM (
              SELECT lower(period) < max(upper(period)) OVER (
                       PARTITION BY schedule_id ORDER BY lower(period), id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS clash
              FROM scheduling_slot WHERE status IN ('busy', 'busy-tentative') AND NOT override
            ) s WHERE clash
            """
        ).fetchone()[0]
        partial = conn.execute(
            """
            SELECT count(*) FROM scheduling_appointment a
            JOIN scheduling_appointmenttype t ON t.id = a.appointment_type_id AND t.code = 'bench-ecg'
            WHERE a.status = 'booked'
              AND (SELECT count(*) FROM scheduling_slot s WHERE s.appointment_id = a.id AND s.status = 'busy') <> 3
            """
        ).fetchone()[0]
        booked = Counter(
            (start, practitioner)
            for start, practitioner in conn.execute(
                "SELECT start, practitioner_id FROM scheduling_appointment WHERE start >= %s AND status = 'booked'",
                [min(c.start for c in cells)],
            ).fetchall()
        )
    per_cell = [booked[(c.start, world["practitioners"][c.practitioner]["user_id"])] for c in cells]
    return {
        "double_bookings": int(double),
        "partial_bookings": int(partial),
        "winners_db": sum(per_cell),
        "slots_without_winner": per_cell.count(0),
        "slots_with_several_winners": sum(1 for n in per_cell if n > 1),
    }


# --- orchestration -----------------------------------------------------------------------------------------------


def _alarm(signum: int, frame: Any) -> None:
    raise TimeoutError(f"benchmark exceeded its hard limit of {HARD_LIMIT_S}s")


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(f"terminated by signal {signum}")


async def http_part(
    world: dict[str, Any], daphnes: list[Child], race_plans: list[tuple[int, int, int]], unc_plan: tuple[int, int]
) -> None:
    bookings, concurrency = unc_plan
    n_clients = len(world["usernames"])
    log(f"signing in {n_clients} clients (CSRF + login, like the SPA) across {len(daphnes)} daphne processes")
    clients = []
    for start in range(0, n_clients, 25):
        clients += await asyncio.gather(
            *(
                sign_in(daphnes[i % len(daphnes)].url, world["usernames"][i], world["password"])
                for i in range(start, min(start + 25, n_clients))
            )
        )
    try:
        cells = booking_cells(world["today"])
        race_cells_needed = sum((attempts // per_round) * per_slot for attempts, per_round, per_slot in race_plans)
        if race_cells_needed + bookings > len(cells):
            raise SystemExit(f"plan needs {race_cells_needed + bookings} booking cells; the weeks hold {len(cells)}")

        # Slot search over HTTP first, on a quiet server.
        one = world["practitioners"][0]["user_id"]
        for scope, practitioner_id, runs in (("all", None, 40), ("one", one, 40)):
            quiet = wait_for_quiet_host()
            timings, results, size = await http_search(world, clients[0], practitioner_id, runs)
            emit(
                {
                    "bench": "scheduling_slot_search",
                    "where": "http",
                    "scope": scope,
                    "practitioners": PRACTITIONERS if scope == "all" else 1,
                    "resources_per_slot": 3,
                    "window_days": SEARCH_DAYS,
                    "runs": runs,
                    "results": results,
                    "response_bytes": size,
                    "p50_ms": percentile(timings, 0.5),
                    "p95_ms": percentile(timings, 0.95),
                    "max_ms": round(timings[-1], 2),
                    "target_p95_ms": TARGET_SEARCH_P95_MS,
                    "host_busy_before": quiet,
                    "load_avg_1m": load_average(),
                }
            )

        offset = 0
        for attempts, per_round, per_slot in race_plans:
            quiet = wait_for_quiet_host()
            log(f"race: {attempts} attempts, {per_round} at once, {per_slot} contested slots per round")
            cpu0, host0 = [proc_cpu_s(d.proc.pid) for d in daphnes], host_cpu()
            race_log, used, wall = await race(world, clients, cells[offset:], attempts, per_round, per_slot)
            offset += len(used)
            server_cpu = sum(proc_cpu_s(d.proc.pid) - c for d, c in zip(daphnes, cpu0, strict=True))
            host1 = host_cpu()
            checks = sql_checks(world, used)
            losers, winners = sorted(race_log.losers), sorted(race_log.winners)
            ok = (
                checks["double_bookings"] == 0
                and checks["partial_bookings"] == 0
                and checks["winners_db"] == len(winners) == len(used)
                and not race_log.unexpected
            )
            emit(
                {
                    "bench": "scheduling_booking_race",
                    "attempts": len(losers) + len(winners) + sum(race_log.unexpected.values()),
                    "concurrent_requests": per_round,
                    "contested_slots": len(used),
                    "attempts_per_slot": per_round // per_slot,
                    "resources_per_booking": 3,
                    "daphne_processes": len(daphnes),
                    "double_bookings": checks["double_bookings"],
                    "partial_bookings": checks["partial_bookings"],
                    "winners_http": len(winners),
                    "winners_db": checks["winners_db"],
                    "slots_without_winner": checks["slots_without_winner"],
                    "slots_with_several_winners": checks["slots_with_several_winners"],
                    "losers": len(losers),
                    "loser_p50_ms": percentile(losers, 0.5),
                    "loser_p90_ms": percentile(losers, 0.9),
                    "loser_p99_ms": percentile(losers, 0.99),
                    "loser_max_ms": round(losers[-1], 2) if losers else None,
                    "winner_p50_ms": percentile(winners, 0.5),
                    "winner_p99_ms": percentile(winners, 0.99),
                    "losers_named": dict(race_log.named),
                    "unexpected": dict(race_log.unexpected),
                    "unexpected_samples": race_log.samples,
                    "wall_s": round(wall, 1),
                    "attempts_per_s": round((len(losers) + len(winners)) / wall, 1),
                    "server_cpu_s": round(server_cpu, 1),
                    "server_cpu_ms_per_attempt": round(server_cpu * 1000 / max(1, len(losers) + len(winners)), 2),
                    "host_cpu_busy_share": round((host1[0] - host0[0]) / max(host1[1] - host0[1], 1e-9), 2),
                    "target_loser_p99_ms": TARGET_LOSER_P99_MS,
                    "host_busy_before": quiet,
                    "load_avg_1m": load_average(),
                    "correct": ok,
                }
            )

        quiet = wait_for_quiet_host()
        log(f"uncontended: {bookings} bookings of distinct free slots by {concurrency} clients")
        cpu0, host0 = [proc_cpu_s(d.proc.pid) for d in daphnes], host_cpu()
        free_cells = cells[offset : offset + bookings]
        latencies, failures, wall = await uncontended(world, clients, free_cells, concurrency)
        server_cpu = sum(proc_cpu_s(d.proc.pid) - c for d, c in zip(daphnes, cpu0, strict=True))
        host1 = host_cpu()
        latencies.sort()
        emit(
            {
                "bench": "scheduling_booking_uncontended",
                "bookings": len(latencies),
                "concurrency": concurrency,
                "daphne_processes": len(daphnes),
                "bookings_per_s": round(len(latencies) / wall, 1),
                "p50_ms": percentile(latencies, 0.5),
                "p99_ms": percentile(latencies, 0.99),
                "failures": dict(failures),
                "server_cpu_ms_per_booking": round(server_cpu * 1000 / max(1, len(latencies)), 2),
                "host_cpu_busy_share": round((host1[0] - host0[0]) / max(host1[1] - host0[1], 1e-9), 2),
                "double_bookings": sql_checks(world, free_cells)["double_bookings"],
                "host_busy_before": quiet,
                "load_avg_1m": load_average(),
            }
        )
    finally:
        await asyncio.gather(*(c.session.close() for c in clients), return_exceptions=True)


def orchestrate(args: argparse.Namespace) -> None:
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.alarm(HARD_LIMIT_S)
    started = time.monotonic()
    race_plans = [tuple(int(x) for x in plan.split(":")) for plan in args.race.split(",")]
    unc_plan = tuple(int(x) for x in args.uncontended.split(":"))
    if any(len(plan) != 3 for plan in race_plans) or len(unc_plan) != 2:
        raise SystemExit("--race attempts:per_round:slots_per_round, --uncontended bookings:concurrency")
    today = datetime.now(ZoneInfo(TIME_ZONE)).date()  # once: the seed and the clients must agree on the weeks
    log_dir = Path(tempfile.mkdtemp(prefix="consulta-sched-bench-"))
    daphnes: list[Child] = []
    clean = False
    try:
        ensure_database()
        log("migrating the bench database")
        run_child([str(BIN / "python"), "manage.py", "migrate", "--noinput", "--skip-checks"], timeout=300)
        n_clients = max(200, unc_plan[1], *(plan[1] for plan in race_plans))
        log(f"seeding: {PRACTITIONERS} practitioners, {ROOMS} rooms, {CARTS} ECG carts, {n_clients} staff clients")
        t0 = time.monotonic()
        setup = [sys.executable, str(SCRIPT), "setup", "--clients", str(n_clients), "--patients", "300"]
        out = run_child([*setup, "--today", today.isoformat()], timeout=300)
        world = json.loads(out.strip().splitlines()[-1])
        world["today"] = today
        log(
            f"seeded {world['seeded_appointments']} appointments / {world['seeded_slots']} slots in the search month "
            f"({time.monotonic() - t0:.0f}s)"
        )

        log("slot search in-process")
        quiet = wait_for_quiet_host()
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "search", "--runs", "40"],
            cwd=ROOT,
            env=child_env(),
            input=json.dumps({"search_start": world["search_start"]}),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"search failed:\n{done.stderr[-4000:]}")
        for row in json.loads(done.stdout.strip().splitlines()[-1]):
            emit(
                {
                    "bench": "scheduling_slot_search",
                    "where": "in_process",
                    **row,
                    "practitioners": PRACTITIONERS if row["scope"] == "all" else 1,
                    "resources_per_slot": 3,
                    "window_days": SEARCH_DAYS,
                    "target_p95_ms": TARGET_SEARCH_P95_MS,
                    "host_busy_before": quiet,
                    "load_avg_1m": load_average(),
                }
            )

        daphnes = [Child(f"daphne-{i}", log_dir) for i in range(args.daphnes)]
        for d in daphnes:
            d.wait_ready()
        log(f"daphne on {[d.port for d in daphnes]}")
        asyncio.run(http_part(world, daphnes, race_plans, unc_plan))  # type: ignore[arg-type]
        clean = True
    finally:
        signal.alarm(0)
        problems = []
        for d in daphnes:
            if d.proc.poll() is not None:
                clean = False
                log(f"{d.name} died during the run (exit {d.proc.returncode}):\n{d.tail()}")
            d.stop()
            problems += d.problems()
        for line in problems[:10]:
            log(f"server log: {line}")
        if clean and not problems:
            for d in daphnes:
                d.log_path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                log_dir.rmdir()
            log(f"done in {time.monotonic() - started:.0f}s; server logs were clean (removed)")
        else:
            log(f"done in {time.monotonic() - started:.0f}s; server logs kept in {log_dir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--race",
        default=os.environ.get("BENCH_SCHED_RACE", DEFAULT_RACE),
        help="attempts:per_round:slots_per_round[,...]",
    )
    parser.add_argument(
        "--uncontended",
        default=os.environ.get("BENCH_SCHED_UNCONTENDED", DEFAULT_UNCONTENDED),
        help="bookings:concurrency",
    )
    parser.add_argument("--daphnes", type=int, default=int(os.environ.get("BENCH_SCHED_DAPHNES", "2")))
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("setup")
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--patients", type=int, required=True)
    p.add_argument("--today", required=True)
    p = sub.add_parser("search")
    p.add_argument("--runs", type=int, required=True)
    args = parser.parse_args()
    if args.cmd is None:
        orchestrate(args)
        return
    sys.path.insert(0, str(ROOT))
    if args.cmd == "setup":
        cmd_setup(args.clients, args.patients, date.fromisoformat(args.today))
    elif args.cmd == "search":
        cmd_search(args.runs)


if __name__ == "__main__":
    main()
