"""Thin Celery tasks; the beat schedule (config/settings/base.py) runs each every minute."""

from __future__ import annotations

from celery import shared_task

from scheduling.services.booking import holds_release_expired
from scheduling.services.status import appointments_mark_noshow


@shared_task(name="scheduling.tasks.holds_release_expired")
def holds_release_expired_task() -> int:
    return holds_release_expired()


@shared_task(name="scheduling.tasks.appointments_mark_noshow")
def appointments_mark_noshow_task() -> int:
    return appointments_mark_noshow()
