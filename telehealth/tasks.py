"""Celery tasks of telehealth: thin, idempotent, one service each."""

from __future__ import annotations

from celery import shared_task

from telehealth.services.alerts import visits_alert_long_waits as _visits_alert_long_waits
from telehealth.services.visits import visits_expire_grace as _visits_expire_grace


@shared_task(name="telehealth.tasks.visits_expire_grace")
def visits_expire_grace() -> int:
    """Each minute: waiting patients disconnected for longer than the grace period leave the queue."""
    return _visits_expire_grace()


@shared_task(name="telehealth.tasks.visits_alert_long_waits")
def visits_alert_long_waits() -> int:
    """Each minute: the practitioner of a patient waiting beyond ``TELEHEALTH_WAIT_ALERT_MINUTES`` is alerted, once
    per visit."""
    return _visits_alert_long_waits()
