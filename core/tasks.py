"""Thin Celery tasks for the shared infrastructure."""

from celery import shared_task

from core.realtime.services import stream_events_prune as _prune


@shared_task(name="core.tasks.stream_events_prune")
def stream_events_prune() -> int:
    """Drop realtime events older than the retention window (hourly, from beat)."""
    return _prune()


@shared_task(name="core.tasks.ping")
def ping() -> str:
    """Round-trip check used by the health endpoint's tests and by operators."""
    return "pong"
