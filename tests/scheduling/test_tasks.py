"""The one-minute scheduling jobs run in a real Celery worker process against the real database and broker: the
no-show job and hold expiry, as beat dispatches them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from celery import current_app
from django.conf import settings
from django.utils import timezone

from core.workers import workers_alive
from scheduling.models import Appointment, Hold, HoldStatus, Slot
from scheduling.services.booking import appointment_book, hold_create
from tests.factories import PatientFactory
from tests.factories.scheduling import AppointmentTypeFactory, ScheduleFactory, weekly_hours
from tests.support.servers import CeleryWorker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_beat_runs_both_jobs_every_minute() -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["scheduling-noshow"] == {"task": "scheduling.tasks.appointments_mark_noshow", "schedule": 60.0}
    assert schedule["scheduling-holds-expire"]["task"] == "scheduling.tasks.holds_release_expired"


def test_worker_marks_noshow_and_releases_expired_holds(celery_worker, scheduler, doctor) -> None:
    real_now = timezone.now()
    # The worker runs on the real clock, so the bookings sit around now: pick a zone where now-1h .. now+2h is one
    # local day (hours 00:00-23:59 cannot hold a visit across midnight), whatever hour the suite runs at.
    zone = next(
        z for z in ("UTC", "Asia/Tokyo", "America/Los_Angeles") if 3 <= real_now.astimezone(ZoneInfo(z)).hour <= 20
    )
    schedule = ScheduleFactory(practitioner=doctor, hours=(), time_zone=zone)
    weekly_hours(schedule, (0, 1, 2, 3, 4, 5, 6), "00:00", "23:59")
    video = AppointmentTypeFactory(code="worker-video", noshow_after_minutes=10, min_notice_minutes=0)
    patient = PatientFactory()
    # Booked (and held) two hours ago for an hour ago, so both are overdue in the worker's real clock.
    with time_machine.travel(real_now - dt.timedelta(hours=2), tick=False):
        start = (real_now - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
        start = start.replace(minute=start.minute - start.minute % 15)
        booked = appointment_book(
            actor=scheduler,
            appointment_type_id=video.pk,
            patient_id=patient.pk,
            start=start,
            practitioner_id=doctor.pk,
        )
        held = hold_create(
            actor=scheduler,
            appointment_type_id=video.pk,
            patient_id=patient.pk,
            start=start + dt.timedelta(hours=1, minutes=30),
            practitioner_id=doctor.pk,
        )
    current_app.send_task("scheduling.tasks.appointments_mark_noshow")
    current_app.send_task("scheduling.tasks.holds_release_expired")
    wait_until(lambda: Appointment.objects.get(pk=booked.id).status == "noshow", timeout=30, what="the no-show job")
    wait_until(
        lambda: Hold.objects.get(pk=held.id).status == HoldStatus.EXPIRED, timeout=30, what="the hold-expiry job"
    )
    assert not Slot.objects.filter(hold_id=held.id).exists()
    assert Slot.objects.get(appointment_id=booked.id).status == "free"
