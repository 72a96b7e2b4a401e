"""10,000 due reminders dispatched through the fake Twilio by real Celery workers: messages/s, time to drain,
duplicates (must be 0), lost (must be 0).

Run: ``.venv/bin/python benchmarks/notifications_dispatch.py [--messages 10000] [--workers 1]`` (``make bench`` /
``scripts/bench.sh`` runs it with the others). Prints one JSON line per figure on stdout; progress on stderr. See
docs/benchmarks.md for the figures and what they mean.

To reproduce: PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (``scripts/bench.sh`` finds or starts them),
then the command above. Everything stays on 127.0.0.1.

What runs, as ``make run`` runs it:

- the database ``consulta_notify_bench`` (``BENCH_NOTIFY_DATABASE_URL``; created and migrated on first use; its
  outbox tables are emptied on every run), Redis database 12 of ``BENCH_REDIS_URL``'s server
  (``BENCH_NOTIFY_REDIS_URL`` overrides) with the key prefix and Celery queue ``consulta-notify-bench``;
- the fake Twilio (``python -m tests.fakes.twilio_server``, its own process, the same server ``make run`` demo mode
  uses), reached through Twilio's real SDK;
- ``--workers`` Celery workers, each ``celery -A config worker --concurrency 2`` (the Procfile's worker), with the
  default dispatcher settings (fan-out 2, batches of 50, 8 sending threads per batch);
- the beat: this script publishes ``notifications.tasks.messages_dispatch_tick`` to the broker at t=0 and then every
  ``--beat-seconds`` (60, the beat schedule's period), exactly what ``celery beat`` sends.

Setup (not timed as dispatch): ``--patients`` synthetic patients (phone only; created once through
``patient_register`` and reused), then ``--messages`` reminders queued through ``message_enqueue_for_patient``
in transactions of 500, all due now (distinct appointment times, so every body is distinct). Its rate is printed
as ``notifications_enqueue``. Then the workers start, and once they are all up (their heartbeats in Redis) the
first tick starts the clock. The run ends when no message is ``queued`` or ``sending``.

Figures: ``notifications_dispatch`` — ``messages_per_s`` (sent ÷ ``drain_s``), ``drain_s`` (from the first tick
until no message is queued or sending), ``first_sent_s``, ``duplicates`` (messages the fake received beyond one per
idempotency key, plus repeated recipient+body pairs), ``lost`` (messages not ``sent`` in the database, plus keys
the fake never received), ``attempts`` and ``unknown_outcome_attempts`` (hand-overs whose answer was lost, looked up
at the provider before any re-send), worker CPU seconds and CPU per message, the machine's load. Status callbacks
are not received (the callback URL points at a closed port): this measures dispatch, not webhook handling.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCRIPT = Path(__file__).resolve()


def _sibling_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


DATABASE_URL = os.environ.get("BENCH_NOTIFY_DATABASE_URL") or _sibling_database(
    os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/consulta_bench"), "consulta_notify_bench"
)
# Redis database 12 of the bench's Redis server (BENCH_REDIS_URL's host, whatever its database), or
# BENCH_NOTIFY_REDIS_URL. Only keys of our prefix are touched (the queue and the worker heartbeats).
REDIS_URL = os.environ.get("BENCH_NOTIFY_REDIS_URL") or (
    os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12").rsplit("/", 1)[0] + "/12"
)
KEY_PREFIX = "consulta-notify-bench"
QUEUE = f"{KEY_PREFIX}-celery"
TICK = "notifications.tasks.messages_dispatch_tick"
SID = "AC" + "b" * 32
TOKEN = "notify-bench-token"  # noqa: S105 -- the fake Twilio's auth token, not a secret
FROM = "+15005550006"
HARD_LIMIT_S = 840  # bench.sh gives each script 900 s


def log(msg: str) -> None:
    print(f"[notifications_dispatch {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line, separators=(",", ":")), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=DATABASE_URL,
        TEST_REDIS_URL=REDIS_URL,
        TEST_KEY_PREFIX=KEY_PREFIX,
        CELERY_QUEUE=QUEUE,
        PYTHONUNBUFFERED="1",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    )
    env.update(extra)
    return env


def _die_with_parent() -> None:
    """Children get SIGTERM if this process dies without cleaning up (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime + stime + cutime + cstime: the pool processes' CPU is counted once they are reaped.
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def group_cpu_s(pgid: int) -> float:
    """CPU of every live process of a process group (a worker and its pool)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def host_cpu() -> tuple[float, float]:
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    )
    ticks = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq
    return busy / ticks, (busy + idle + iowait + steal) / ticks


def wait_for_quiet_host(threshold: float = 0.3, timeout: float = 15) -> float:
    """Wait (bounded) until the machine is mostly idle; return the busy share of the last second."""
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


# --- child: seed the outbox --------------------------------------------------------------------------------------


def cmd_setup(messages: int, patients: int) -> None:
    """Child: empty the outbox, make sure the synthetic patients exist, queue ``messages`` reminders due now through
    the real service; print the enqueue timing as JSON."""
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from ehr.models import Organization, Patient, User
    from ehr.services.patients import PatientInput, patient_register
    from notifications.services import message_enqueue_for_patient

    if not str(settings.DATABASES["default"]["NAME"]).endswith("bench"):
        raise SystemExit("refusing to seed outside a *bench database")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE notifications_deliveryattempt, notifications_outboundmessage CASCADE")
    org, _ = Organization.objects.get_or_create(name="Notifications Bench Health")
    registrar, _ = User.objects.get_or_create(
        username="notify-bench-registrar", defaults={"roles": ["admin"], "organization": org}
    )
    have = list(
        Patient.objects.filter(family_name="Notifybench").order_by("pk").values_list("pk", flat=True)[:patients]
    )
    t0 = time.monotonic()
    for i in range(len(have), patients):
        patient = patient_register(
            actor=registrar,
            data=PatientInput(
                given_name=f"Synthetic{i}",
                family_name="Notifybench",
                birth_date=date(1950, 1, 1) + timedelta(days=i * 7),
                sex="unknown",
                phone=f"+1555{i:07d}",
            ),
            allow_duplicate=True,
        )
        have.append(patient.pk)
    created_s = time.monotonic() - t0
    now = timezone.now()
    t0 = time.monotonic()
    for start in range(0, messages, 500):
        with transaction.atomic():
            for i in range(start, min(start + 500, messages)):
                message_enqueue_for_patient(
                    patient_id=have[i % patients],
                    kind="reminder",
                    template_key="reminder",
                    due_at=now,
                    context={
                        "first_name": "Sam",
                        "practitioner": "Dr Bench",
                        "clinic": "Bench Clinic",
                        "when": f"day {i // patients + 1} at 10:00",
                    },
                    source=("bench", i, "reminder:120"),
                )
    enqueue_s = time.monotonic() - t0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE notifications_outboundmessage")
    print(json.dumps({"patients_created_s": round(created_s, 1), "enqueue_s": round(enqueue_s, 2)}))


# --- the run -----------------------------------------------------------------------------------------------------


class Worker:
    """``celery -A config worker --concurrency 2`` in a process group of its own; stopped by its pid."""

    def __init__(self, number: int, env: dict[str, str], log_dir: Path) -> None:
        self.log_path = log_dir / f"worker-{number}.log"
        self._log = self.log_path.open("wb")
        argv = [str(BIN / "celery"), "-A", "config", "worker", "-l", "warning", "--concurrency", "2"]
        self.proc = subprocess.Popen(
            [*argv, "-n", f"notify-bench-{number}@%h"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # safe: no threads in this process yet
        )

    def cpu_s(self) -> float:
        return group_cpu_s(self.proc.pid)

    def problems(self) -> list[str]:
        keys = ("ERROR", "Traceback", "CRITICAL")
        return [line for line in self.log_path.read_text(errors="replace").splitlines() if any(k in line for k in keys)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


def outbox_states(conn: Any) -> dict[str, int]:
    rows = conn.execute("SELECT state, count(*) FROM notifications_outboundmessage GROUP BY state").fetchall()
    return {state: int(n) for state, n in rows}


def orchestrate(args: argparse.Namespace) -> None:
    import psycopg
    import redis
    from celery import Celery

    sys.path.insert(0, str(ROOT))
    from tests.fakes.twilio_server import FakeTwilioProcess

    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("hard limit reached")))
    signal.alarm(args.hard_limit)
    started = time.monotonic()
    log_dir = Path(tempfile.mkdtemp(prefix="consulta-notify-bench-"))
    workers: list[Worker] = []
    fake = None
    clean = False
    try:
        ensure_database()
        log("migrating the bench database")
        run_child([str(BIN / "python"), "manage.py", "migrate", "--noinput", "--skip-checks"], timeout=300)
        fake = FakeTwilioProcess(
            state_file=log_dir / "fake-twilio.json",
            log_path=log_dir / "fake-twilio.log",
            account_sid=SID,
            auth_token=TOKEN,
        )
        log(f"fake Twilio on {fake.base_url}; seeding {args.messages} reminders for {args.patients} patients")
        setup = json.loads(
            run_child(
                [
                    sys.executable,
                    str(SCRIPT),
                    "setup",
                    "--messages",
                    str(args.messages),
                    "--patients",
                    str(args.patients),
                ],
                timeout=600,
            )
            .strip()
            .splitlines()[-1]
        )
        emit(
            {
                "bench": "notifications_enqueue",
                "messages": args.messages,
                "enqueue_s": setup["enqueue_s"],
                "enqueue_per_s": round(args.messages / max(setup["enqueue_s"], 1e-9), 1),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
        broker = redis.Redis.from_url(REDIS_URL)
        broker.delete(QUEUE)  # ticks left by an aborted earlier run
        broker.delete(f"{KEY_PREFIX}:celery-workers")
        env = child_env(
            TWILIO_ACCOUNT_SID=SID,
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_FROM_NUMBER=FROM,
            TWILIO_API_BASE=fake.base_url,
            NOTIFICATIONS_PUBLIC_BASE_URL=f"http://127.0.0.1:{free_port()}",  # closed: callbacks are not measured
        )
        workers = [Worker(i + 1, env, log_dir) for i in range(args.workers)]
        deadline = time.monotonic() + 120
        while int(broker.zcard(f"{KEY_PREFIX}:celery-workers")) < args.workers:
            if any(w.proc.poll() is not None for w in workers) or time.monotonic() > deadline:
                raise RuntimeError(f"workers did not come up; logs in {log_dir}")
            time.sleep(0.2)
        log(f"{args.workers} worker(s) up (concurrency 2 each); waiting for a quiet host")
        quiet = wait_for_quiet_host()
        load_before = round(os.getloadavg()[0], 2)
        beat = Celery("notify-bench-beat", broker=REDIS_URL, set_as_current=False)
        beat.conf.task_default_queue = QUEUE
        cpu_before = sum(w.cpu_s() for w in workers)
        host_before = host_cpu()
        t0 = time.monotonic()
        next_tick = t0
        ticks = 0
        first_sent = None
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            while True:
                now = time.monotonic()
                if now >= next_tick:
                    beat.send_task(TICK)
                    ticks += 1
                    next_tick += args.beat_seconds
                states = outbox_states(conn)
                if first_sent is None and states.get("sent", 0):
                    first_sent = now - t0
                if not states.get("queued", 0) and not states.get("sending", 0):
                    break
                if any(w.proc.poll() is not None for w in workers):
                    raise RuntimeError(f"a worker died; logs in {log_dir}")
                time.sleep(0.1)
            wall = time.monotonic() - t0
            worker_cpu = sum(w.cpu_s() for w in workers) - cpu_before
            host_after = host_cpu()
            rows = conn.execute("SELECT idempotency_key, state FROM notifications_outboundmessage").fetchall()
            attempts, unknown_outcome = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE outcome = 'timeout') FROM notifications_deliveryattempt"
            ).fetchone()
        for w in workers:
            w.stop()
        fake_state = fake.state()
        by_key: dict[str, int] = fake_state["by_key"]
        sent = sum(1 for _, state in rows if state in ("sent", "delivered"))
        dup_keys = sum(c - 1 for c in by_key.values() if c > 1)
        dup_pairs = sum(p["count"] - 1 for p in fake_state["duplicates"]["by_to_body"])
        missing_at_fake = sum(1 for key, _ in rows if key not in by_key)
        emit(
            {
                "bench": "notifications_dispatch",
                "messages": args.messages,
                "workers": args.workers,
                "concurrency": 2,
                "beat_seconds": args.beat_seconds,
                "ticks": ticks,
                "sent": sent,
                "drain_s": round(wall, 2),
                "first_sent_s": round(first_sent or 0.0, 2),
                "messages_per_s": round(sent / max(wall, 1e-9), 1),
                "duplicates": dup_keys + dup_pairs,
                "lost": (args.messages - sent) + missing_at_fake,
                "fake_received": int(fake_state["messages"]),
                "attempts": int(attempts),
                # hand-overs whose outcome was unknown (timeout, connection dropped mid-request): looked up at the
                # provider before any re-send
                "unknown_outcome_attempts": int(unknown_outcome),
                "worker_cpu_s": round(worker_cpu, 1),
                "worker_cpu_ms_per_message": round(1000 * worker_cpu / max(sent, 1), 2),
                "host_cpu_share": round(
                    (host_after[0] - host_before[0]) / max(host_after[1] - host_before[1], 1e-9), 2
                ),
                "host_busy_before": quiet,
                "load_avg_1m_before": load_before,
                "load_avg_1m_after": round(os.getloadavg()[0], 2),
            }
        )
        clean = True
    finally:
        signal.alarm(0)
        problems: list[str] = []
        for w in workers:
            w.stop()
            problems += w.problems()
        if fake is not None:
            fake.stop()
        for line in problems[:10]:
            log(f"worker log: {line}")
        if clean and not problems:
            for path in log_dir.iterdir():
                path.unlink()
            with contextlib.suppress(OSError):
                log_dir.rmdir()
            log(f"done in {time.monotonic() - started:.0f}s; logs were clean (removed)")
        else:
            log(f"done in {time.monotonic() - started:.0f}s; logs kept in {log_dir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=int(os.environ.get("BENCH_NOTIFY_MESSAGES", "10000")))
    parser.add_argument("--patients", type=int, default=int(os.environ.get("BENCH_NOTIFY_PATIENTS", "1000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_NOTIFY_WORKERS", "1")))
    parser.add_argument("--beat-seconds", type=float, default=60.0)
    parser.add_argument("--hard-limit", type=int, default=HARD_LIMIT_S, help="seconds before the run gives up")
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("setup")
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--patients", type=int, required=True)
    args = parser.parse_args()
    if args.cmd is None:
        orchestrate(args)
        return
    sys.path.insert(0, str(ROOT))
    if args.cmd == "setup":
        cmd_setup(args.messages, args.patients)


if __name__ == "__main__":
    main()
