"""Worker liveness without broadcast round trips.

Celery's ``control.ping`` over the Redis broker answered only about half the time within 0.5 s here (the reply
waits on the worker's pidbox polling), which makes a health check flap. Instead every worker records a heartbeat
in a Redis sorted set (member: worker hostname, score: unix time) every few seconds, and the health check counts
members seen recently. A worker that dies simply stops beating and ages out.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from celery import bootsteps
from django.conf import settings

HEARTBEAT_INTERVAL_S = 5.0
HEARTBEAT_STALE_S = 20.0


def _key() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'consulta')}:celery-workers"


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


def worker_heartbeat(*, hostname: str, now: float | None = None) -> None:
    _client().zadd(_key(), {hostname: now if now is not None else time.time()})


def worker_gone(*, hostname: str) -> None:
    _client().zrem(_key(), hostname)


def workers_alive(*, now: float | None = None) -> int:
    """How many workers beat within the staleness window (old entries are trimmed on the way)."""
    now = now if now is not None else time.time()
    client = _client()
    client.zremrangebyscore(_key(), "-inf", now - 10 * HEARTBEAT_STALE_S)
    return int(client.zcount(_key(), now - HEARTBEAT_STALE_S, "+inf"))


class WorkerHeartbeatStep(bootsteps.StartStopStep):
    """Celery worker bootstep: beat on start, every few seconds while running, and deregister on stop."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        worker_heartbeat(hostname=worker.hostname)
        self.tref = worker.timer.call_repeatedly(HEARTBEAT_INTERVAL_S, self._beat, (worker.hostname,), priority=10)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
        worker_gone(hostname=worker.hostname)

    @staticmethod
    def _beat(hostname: str) -> None:
        worker_heartbeat(hostname=hostname)
