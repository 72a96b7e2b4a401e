"""Celery tasks of notifications: thin, idempotent. Due messages are rows; these only drain them."""

from __future__ import annotations

import time

from celery import shared_task
from django.conf import settings

from notifications.services.dispatch import messages_dispatch_due

DRAIN_BUDGET_SECONDS = 50.0


@shared_task(name="notifications.tasks.messages_dispatch_tick")
def messages_dispatch_tick() -> int:
    """Each minute (beat): start ``NOTIFICATIONS_DISPATCH_FANOUT`` drains; they share the due rows through
    ``SKIP LOCKED`` claims, so any number of workers can help."""
    for _ in range(settings.NOTIFICATIONS_DISPATCH_FANOUT):
        messages_dispatch_drain.delay()
    return int(settings.NOTIFICATIONS_DISPATCH_FANOUT)


@shared_task(name="notifications.tasks.messages_dispatch_drain")
def messages_dispatch_drain() -> int:
    """Dispatch batches until nothing is due or the time budget (less than the beat period) is spent. A worker
    killed here loses nothing: claimed rows are ``sending`` in the database and are reconciled."""
    deadline = time.monotonic() + DRAIN_BUDGET_SECONDS
    total = 0
    while time.monotonic() < deadline:
        claimed = messages_dispatch_due(limit=settings.NOTIFICATIONS_BATCH_SIZE)
        total += claimed
        if claimed == 0:
            break
    return total
