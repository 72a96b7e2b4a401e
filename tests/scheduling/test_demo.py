"""The scheduling demo data: idempotent, bookable, and refused in production."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ehr.models import User
from ehr.services.demo import demo_seed
from scheduling.models import Appointment, AppointmentType, Schedule
from scheduling.selectors import free_slot_search

pytestmark = pytest.mark.django_db


def test_seed_demo_scheduling_twice_leaves_the_same_configuration_and_books_once() -> None:
    demo_seed(password="demo-password-for-tests")
    call_command("seed_demo_scheduling")
    schedules, types, appointments = (
        Schedule.objects.count(),
        AppointmentType.objects.count(),
        Appointment.objects.count(),
    )
    call_command("seed_demo_scheduling")
    assert (Schedule.objects.count(), AppointmentType.objects.count(), Appointment.objects.count()) == (
        schedules,
        types,
        appointments,
    )
    assert (schedules, types) == (8, 3)
    # The demo patient has their next visit, and the video type has free slots for patients.
    assert Appointment.objects.filter(patient__user__username="patient").exists()
    patient = User.objects.get(username="patient")
    video = AppointmentType.objects.get(code="video-consult")
    now = timezone.now()
    assert free_slot_search(
        actor=patient, appointment_type_id=video.pk, window_start=now, window_end=now + dt.timedelta(days=7)
    )


def test_seed_demo_scheduling_refuses_production_settings(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ENVIRONMENT = "production"
    with pytest.raises(CommandError):
        call_command("seed_demo_scheduling")
