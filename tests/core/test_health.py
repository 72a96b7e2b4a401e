"""GET /api/v1/health/ reports the real state of PostgreSQL, Redis and the Celery workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import current_app
from rest_framework.test import APIClient

from core.workers import workers_alive
from tests.support.servers import CeleryWorker, wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[CeleryWorker]:
    worker = CeleryWorker(tmp_path)

    def answers() -> bool:
        if not worker.alive():
            raise RuntimeError(worker.log())
        return workers_alive() > 0

    try:
        wait_until(answers, timeout=60, what="the celery worker's first heartbeat")
        yield worker
    finally:
        worker.stop()


def test_health_is_degraded_without_a_worker_and_names_the_failing_part(api: APIClient) -> None:
    response = api.get("/api/v1/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "ok"
    assert body["checks"]["celery"] == {**body["checks"]["celery"], "status": "error", "workers": 0}


def test_health_is_ok_with_database_redis_and_a_running_worker(api: APIClient, celery_worker) -> None:
    response = api.get("/api/v1/health/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["celery"]["workers"] >= 1
    assert all(isinstance(c["latency_ms"], float) for c in body["checks"].values())


def test_stopped_worker_is_no_longer_counted(api: APIClient, celery_worker) -> None:
    assert api.get("/api/v1/health/").json()["checks"]["celery"]["workers"] >= 1
    celery_worker.stop()
    assert workers_alive() == 0
    assert api.get("/api/v1/health/").status_code == 503


def test_worker_registers_our_tasks(celery_worker) -> None:
    """The worker is a real consumer of our app: it knows the project's tasks."""

    def registered() -> bool:
        replies = current_app.control.inspect(timeout=1).registered() or {}
        return any("core.tasks.stream_events_prune" in tasks for tasks in replies.values())

    wait_until(registered, timeout=20, what="the worker to list its registered tasks")
