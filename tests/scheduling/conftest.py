"""Scheduling fixtures: a clinic in Europe/Lisbon with a doctor, a scheduler, a patient with a portal login, and
a fixed 'now' on a Monday morning far enough ahead that bookings are in the future."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from tests.factories import PatientFactory, UserFactory
from tests.factories.scheduling import AppointmentTypeFactory, ScheduleFactory

# Monday 2031-03-03 08:00 in Lisbon (UTC+0 in winter).
NOW = dt.datetime(2031, 3, 3, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen_now():  # type: ignore[no-untyped-def]
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def scheduler(organization, location):  # type: ignore[no-untyped-def]
    return UserFactory(username="sched-test", roles=["scheduler"], organization=organization, locations=[location])


@pytest.fixture
def doctor_schedule(doctor):  # type: ignore[no-untyped-def]
    return ScheduleFactory(practitioner=doctor)


@pytest.fixture
def patient_user(organization):  # type: ignore[no-untyped-def]
    return UserFactory(username="pat-test", roles=["patient"], organization=organization)


@pytest.fixture
def patient(patient_user):  # type: ignore[no-untyped-def]
    return PatientFactory(user=patient_user)


@pytest.fixture
def video_type(db):  # type: ignore[no-untyped-def]
    return AppointmentTypeFactory(code="video-consult", name="Video consultation", modality="video")


@pytest.fixture
def doctor2(organization, location):  # type: ignore[no-untyped-def]
    return UserFactory(username="dr-two", roles=["practitioner"], organization=organization, locations=[location])
