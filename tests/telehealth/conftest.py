"""Telehealth fixtures: a clinic in Europe/Lisbon with two doctors (weekday hours 09:00-17:00), a scheduler, two
patients with portal logins, a video appointment type, and a fixed 'now' on a Monday at 08:30 so a 09:00 visit's
check-in window (opens 60 minutes before) is open."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from scheduling.services.booking import appointment_book
from tests.conftest import csrf_login
from tests.factories import PatientFactory, UserFactory
from tests.factories.scheduling import AppointmentTypeFactory, ScheduleFactory

# Monday 2031-03-03 08:30 in Lisbon (UTC+0 in winter).
NOW = dt.datetime(2031, 3, 3, 8, 30, tzinfo=dt.UTC)
NINE = dt.datetime(2031, 3, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen_now():  # type: ignore[no-untyped-def]
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def scheduler(organization, location):  # type: ignore[no-untyped-def]
    return UserFactory(username="sched-test", roles=["scheduler"], organization=organization, locations=[location])


@pytest.fixture
def nurse(organization, location):  # type: ignore[no-untyped-def]
    return UserFactory(username="nurse-test", roles=["nurse"], organization=organization, locations=[location])


@pytest.fixture
def doctor_schedule(doctor):  # type: ignore[no-untyped-def]
    return ScheduleFactory(practitioner=doctor)


@pytest.fixture
def doctor2(organization, location):  # type: ignore[no-untyped-def]
    user = UserFactory(username="dr-two", roles=["practitioner"], organization=organization, locations=[location])
    ScheduleFactory(practitioner=user)
    return user


@pytest.fixture
def outsider_doctor(organization):  # type: ignore[no-untyped-def]
    from tests.factories import LocationFactory

    other = LocationFactory(organization=organization, name="Elsewhere Clinic")
    return UserFactory(username="dr-out", roles=["practitioner"], organization=organization, locations=[other])


@pytest.fixture
def patient_user(organization):  # type: ignore[no-untyped-def]
    return UserFactory(username="pat-test", roles=["patient"], organization=organization)


@pytest.fixture
def patient(patient_user):  # type: ignore[no-untyped-def]
    return PatientFactory(user=patient_user)


@pytest.fixture
def patient2_user(organization):  # type: ignore[no-untyped-def]
    return UserFactory(username="pat-two", roles=["patient"], organization=organization)


@pytest.fixture
def patient2(patient2_user):  # type: ignore[no-untyped-def]
    return PatientFactory(user=patient2_user)


@pytest.fixture
def video_type(db):  # type: ignore[no-untyped-def]
    return AppointmentTypeFactory(code="video-consult", name="Video consultation", modality="video")


@pytest.fixture
def clinic_type(db):  # type: ignore[no-untyped-def]
    return AppointmentTypeFactory(code="in-person", name="Clinic visit", modality="in-person")


def book(actor: Any, patient: Any, doctor: Any, appointment_type: Any, start: dt.datetime = NINE) -> Any:
    return appointment_book(
        actor=actor,
        appointment_type_id=appointment_type.pk,
        patient_id=patient.id,
        start=start,
        practitioner_id=doctor.pk,
    )


@pytest.fixture
def appointment(frozen_now, scheduler, patient, doctor, doctor_schedule, video_type):  # type: ignore[no-untyped-def]
    """The patient's video appointment with the doctor at 09:00 today."""
    return book(scheduler, patient, doctor, video_type)


@pytest.fixture
def appointment2(frozen_now, scheduler, patient2, doctor, doctor_schedule, video_type):  # type: ignore[no-untyped-def]
    """The second patient's video appointment with the doctor at 09:30 today."""
    return book(scheduler, patient2, doctor, video_type, NINE + dt.timedelta(minutes=30))


def client_for(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def post(client: APIClient, path: str, body: Any = None) -> Any:
    return client.post(path, body, format="json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
