"""Crash test of the outbox (issue 6): 1,000 due SMS reminders dispatched by a real Celery worker (prefork,
concurrency 2, as ``make run`` runs it) that is killed with SIGKILL again and again, while its Redis broker is
restarted once. Afterwards the fake Twilio received every reminder exactly once (counted by idempotency key and by
recipient + body) and the database holds every one as sent, with its attempts consistent.

What is real: PostgreSQL (the test database), a private ``redis-server`` on a free port started by this test (the
broker and cache of the worker; never the machine's shared Redis), the Celery worker processes, Twilio's SDK talking
HTTP to the fake Twilio (a thread of this process, so the test can kill the worker at the exact moment the provider
has accepted a message and not yet answered). The beat is only a clock: this test publishes the beat's task,
``notifications.tasks.messages_dispatch_tick``, to the private broker every second, as ``celery beat`` would each
minute.

Status callbacks are deliberately unreachable (``NOTIFICATIONS_PUBLIC_BASE_URL`` points at a closed port): a
callback would settle a crashed ``sending`` row on its own, and here every crash must be settled by the harder path,
the reconciler asking the provider. SMS only: email after the SMTP server accepted DATA has a documented re-send
window (docs/notifications.md), so the patients here have no email address and nothing can fall back to email.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications.models import DeliveryAttempt, OutboundMessage
from notifications.services import message_enqueue_for_patient
from tests.factories import PatientFactory, UserFactory
from tests.fakes.twilio_server import FakeTwilio
from tests.support.servers import BIN, ROOT, child_env, free_port, wait_until

# About 1-1.5 minutes on a quiet 2-core machine; three times that while other suites load it (the default 180 s
# pytest timeout is too tight then).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]
logger = logging.getLogger(__name__)

SID = "AC" + "7" * 32
TOKEN = "crash-test-auth-token"
FROM = "+15005550006"
REMINDERS = 1000
PATIENTS = 100
# Short enough for the test, and keeps the dispatcher's invariant: a hand-over starts within STALE/2 of its claim
# and the provider timeout is shorter than STALE/2, so a stale row has no hand-over still running.
STALE_SECONDS = 6
TWILIO_TIMEOUT_SECONDS = 2.0
TICK = "notifications.tasks.messages_dispatch_tick"


class PrivateRedis:
    """``redis-server`` on a free port without persistence: a restart loses every queued task, as a crash would."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"redis-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self.ping, timeout=15, what=f"private redis on port {self.port}")

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def run_id(self) -> str:
        return str(redis.Redis(port=self.port, socket_timeout=2).info("server")["run_id"])

    def restart(self) -> None:
        self.stop()
        self._start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


def _procs() -> Iterator[tuple[int, str, int, int]]:
    """(pid, state, ppid, process group) of every process, from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        yield int(stat.parent.name), fields[0], int(fields[1]), int(fields[2])


class Worker:
    """``celery -A config worker --concurrency 2`` (the Procfile's worker) in a process group of its own. Two ways
    to die: :meth:`kill_pool` SIGKILLs the pool processes running the tasks (the main process forks new ones, as
    after an OOM kill of a child); :meth:`kill` SIGKILLs the whole group, main process included (a killed
    container), after which a new worker must boot."""

    def __init__(self, number: int, env: dict[str, str], log_dir: Path) -> None:
        self.log_path = log_dir / f"worker-{number}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "-l",
                "info",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"nt-crash-{os.getpid()}-{number}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.killed_pool: set[int] = set()

    def pool(self) -> set[int]:
        """Live pool processes (children of the main process)."""
        return {pid for pid, state, ppid, _ in _procs() if ppid == self.proc.pid and state != "Z"}

    def group_alive(self) -> bool:
        return any(pgrp == self.proc.pid and state != "Z" for _, state, _, pgrp in _procs())

    def kill_pool(self) -> None:
        pids = self.pool()
        self.killed_pool |= pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def pool_replaced(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the worker's main process exited:\n{self.log()}")
        return len(self.pool() - self.killed_pool) == 2

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def wait_dead(self) -> None:
        self.proc.wait(timeout=15)
        wait_until(lambda: not self.group_alive(), timeout=15, what="the killed worker's pool processes")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
                self.proc.wait(timeout=10)
        if self.group_alive():
            self.kill()
        if not self._log.closed:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@dataclass
class Chaos:
    """Kills from inside the fake Twilio, at the moment it has accepted the N-th message and not yet answered: the
    provider has the message, the worker never learns its sid."""

    accepted: int = 0
    kill_at: int | None = None
    action: Callable[[], None] | None = None
    fired: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, message: dict[str, Any]) -> None:  # a fake Twilio request thread, before the 201
        action = None
        with self.lock:
            self.accepted += 1
            if self.kill_at is not None and self.accepted >= self.kill_at:
                action, self.kill_at = self.action, None
        if action is not None:
            action()
            self.fired.set()

    def arm(self, action: Callable[[], None], after: int) -> None:
        with self.lock:
            self.fired.clear()
            self.action = action
            self.kill_at = self.accepted + after

    def count(self) -> int:
        with self.lock:
            return self.accepted

    def beyond(self, n: int) -> Callable[[], bool]:
        """A condition: at least ``n`` messages accepted in all."""
        return lambda: self.count() >= n


class Clock:
    """The beat: publishes the dispatcher's tick to the private broker every second (a clock, not a wait). Publishing
    fails while Redis is down; the next tick tries again, as beat would."""

    def __init__(self, broker_url: str, queue: str) -> None:
        self.app = Celery("nt-crash-clock", broker=broker_url, set_as_current=False)
        self.app.conf.task_default_queue = queue
        self.app.conf.broker_connection_timeout = 1
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nt-crash-clock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                with self.app.connection_for_write() as connection:
                    self.app.send_task(TICK, connection=connection, retry=False)
                self.sent += 1
            except Exception:  # broker down: this tick is lost, like a beat's publish during an outage
                self.failed += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def crash_world(tmp_path: Path) -> Iterator[tuple[FakeTwilio, Chaos, PrivateRedis, Callable[[int], Worker]]]:
    chaos = Chaos()
    fake = FakeTwilio(account_sid=SID, auth_token=TOKEN, on_message=chaos.on_message).start()
    private_redis = PrivateRedis(tmp_path)
    workers: list[Worker] = []
    env = child_env(
        TEST_REDIS_URL=private_redis.url,
        CELERY_BROKER_URL=private_redis.url,
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_FROM_NUMBER=FROM,
        TWILIO_API_BASE=fake.base_url,
        TWILIO_TIMEOUT_SECONDS=str(TWILIO_TIMEOUT_SECONDS),
        NOTIFICATIONS_PUBLIC_BASE_URL=f"http://127.0.0.1:{free_port()}",  # closed: no status callbacks arrive
        NOTIFICATIONS_SENDING_STALE_SECONDS=str(STALE_SECONDS),
        LOG_LEVEL="WARNING",
    )

    def start_worker(number: int) -> Worker:
        worker = Worker(number, env, tmp_path)
        workers.append(worker)
        return worker

    try:
        yield fake, chaos, private_redis, start_worker
    finally:
        for worker in workers:
            worker.stop()
        private_redis.stop()
        fake.stop()


def _seed_reminders() -> list[str]:
    """100 patients with a phone and no email, each with 10 reminders (distinct appointment times, so distinct
    bodies to the same number: the reconciler must find the right one among them) due now, queued through the real
    service in one transaction, as a booking run would."""
    registrar = UserFactory(username="crash-registrar", roles=["admin"])
    patients = [PatientFactory(registrar=registrar, email="", phone=f"+1555{i:07d}").pk for i in range(PATIENTS)]
    now = timezone.now()
    with transaction.atomic():
        for i in range(REMINDERS):
            ref = message_enqueue_for_patient(
                patient_id=patients[i % PATIENTS],
                kind="reminder",
                template_key="reminder",
                due_at=now,
                context={
                    "first_name": "Ana",
                    "practitioner": "Dr Who",
                    "clinic": "Lisbon",
                    "when": f"day {i // PATIENTS + 1} at 10:00",
                },
                source=("crash", i, "reminder:120"),
            )
            assert ref.channel == "sms"
    return list(OutboundMessage.objects.values_list("idempotency_key", flat=True))


def _stranded(fake: FakeTwilio) -> tuple[int, int]:
    """(rows in ``sending`` right after a kill, of which the provider had already accepted)."""
    keys = list(OutboundMessage.objects.filter(state="sending").values_list("idempotency_key", flat=True))
    return len(keys), sum(1 for k in keys if fake.count_key(k))


# (what dies, when). "pool": the pool processes running the tasks (the main process forks new ones); "worker": the
# whole worker, main process included (a new one boots). When: "accepted" inside the provider call, right after the
# fake accepted the N-th message since the step began; "claimed" as soon as a claim of this step committed (before
# or during the hand-over); "timer" N seconds after the step's first message reached the fake (any phase: claim,
# hand-over, record, reconcile). "redis" restarts the broker under the working worker, then kills its pool once N
# more messages arrived.
PLAN: list[tuple[str, str, float]] = [
    ("pool", "accepted", 20),
    ("pool", "claimed", 0),
    ("pool", "timer", 0.5),
    ("pool", "redis", 20),
    ("pool", "accepted", 40),
    ("worker", "timer", 0.8),
    ("pool", "claimed", 0),
    ("pool", "timer", 1.0),
    ("worker", "accepted", 25),
]


def test_reminders_sent_exactly_once_while_worker_is_sigkilled_and_redis_restarts(crash_world):  # type: ignore[no-untyped-def]
    fake, chaos, private_redis, start_worker = crash_world
    t0 = time.monotonic()
    keys = _seed_reminders()
    assert len(keys) == REMINDERS
    logger.info("seeded in %.1fs", time.monotonic() - t0)
    clock = Clock(private_redis.url, settings.CELERY_TASK_DEFAULT_QUEUE)
    redis_run_id = private_redis.run_id()
    kills: list[dict[str, Any]] = []

    try:
        worker = start_worker(1)
        for step, (what, when, amount) in enumerate(PLAN, start=1):
            at_start = chaos.count()
            started_at = timezone.now()
            kill = worker.kill if what == "worker" else worker.kill_pool
            if when == "accepted":
                chaos.arm(kill, int(amount))
                wait_until(chaos.fired.is_set, timeout=60, what=f"step {step}: {amount} messages sent")
            elif when == "claimed":

                def claimed(since: dt.datetime = started_at) -> bool:
                    return OutboundMessage.objects.filter(state="sending", updated_at__gte=since).exists()

                wait_until(claimed, timeout=60, what=f"step {step}: a claim", interval=0.02)
                kill()
            elif when == "timer":
                wait_until(chaos.beyond(at_start + 1), timeout=60, what=f"step {step}: a message sent")
                time.sleep(amount)  # chaos at an arbitrary moment, not a synchronisation
                kill()
            else:
                wait_until(chaos.beyond(at_start + int(amount)), timeout=60, what=f"step {step}: sending")
                private_redis.restart()
                chaos.arm(kill, int(amount))
                wait_until(chaos.fired.is_set, timeout=60, what=f"step {step}: sending after the Redis restart")
            if what == "worker":
                worker.wait_dead()
            sending, accepted = _stranded(fake)
            kills.append({"what": what, "when": when, "sending": sending, "accepted_unrecorded": accepted})
            logger.info(
                "step %s %s/%s at %.1fs, %s at the fake: %s",
                step,
                what,
                when,
                time.monotonic() - t0,
                chaos.count(),
                kills[-1],
            )
            assert chaos.count() < REMINDERS, "the batch drained before the chaos was over"
            if what == "worker":
                worker = start_worker(step + 1)
            else:
                wait_until(worker.pool_replaced, timeout=30, what=f"step {step}: new pool processes")

        def drained() -> bool:
            if worker.proc.poll() is not None:
                raise RuntimeError(f"the last worker exited:\n{worker.log()}")
            return not OutboundMessage.objects.exclude(state__in=["sent", "delivered"]).exists()

        wait_until(drained, timeout=240, what="every reminder in a final state", interval=0.25)
        logger.info("drained at %.1fs", time.monotonic() - t0)
        worker.stop()  # nothing may reach the fake after this
    finally:
        clock.stop()

    # The chaos was real: processes died holding claimed rows, some already accepted by the provider but not
    # recorded, and the broker restarted (new run id) losing the tasks it held.
    assert len(kills) == len(PLAN)
    assert sum(k["sending"] for k in kills) > 0, kills
    assert sum(k["accepted_unrecorded"] for k in kills) > 0, kills
    assert private_redis.run_id() != redis_run_id
    assert clock.sent > 0
    # At the fake: every idempotency key exactly once, none missing, nothing else.
    counts = fake.counts()
    assert counts["messages"] == REMINDERS
    assert sorted(counts["by_key"]) == sorted(keys)
    assert {k: c for k, c in counts["by_key"].items() if c != 1} == {}
    assert fake.duplicates() == {"by_key": {}, "by_to_body": []}
    sid_of_key = {m["idempotency_key"]: m["sid"] for m in fake.messages}

    # In the database: all sent, with the sid the provider gave for that key; attempts numbered 1..n, every one
    # finished, exactly one accepted (with that sid), the others lost with their worker; no fallback, no errors.
    messages = list(OutboundMessage.objects.all())
    assert len(messages) == REMINDERS
    assert {m.state for m in messages} == {"sent"}
    attempts: dict[Any, list[DeliveryAttempt]] = {}
    for attempt in DeliveryAttempt.objects.order_by("number"):
        attempts.setdefault(attempt.message_id, []).append(attempt)
    for message in messages:
        assert message.provider_message_id == sid_of_key[message.idempotency_key]
        assert message.sent_at is not None
        rows = attempts[message.pk]
        assert [a.number for a in rows] == list(range(1, message.attempts + 1))
        assert all(a.finished_at is not None for a in rows)
        accepted_attempts = [a for a in rows if a.outcome == "accepted"]
        assert [a.provider_message_id for a in accepted_attempts] == [message.provider_message_id]
        assert all(a.outcome == "timeout" for a in rows if a.outcome != "accepted")
    retried = [m for m in messages if m.attempts > 1]
    assert retried, "no message needed a second attempt: the kills hit nothing"
    assert not DeliveryAttempt.objects.filter(outcome="error").exists()
