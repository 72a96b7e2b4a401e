from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import Client


def session_headers(user, origin: str = "http://testserver") -> list[tuple[bytes, bytes]]:  # type: ignore[no-untyped-def]
    """Headers of a browser signed in as ``user``: its session cookie and a same-site Origin."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
        (b"origin", origin.encode()),
    ]


# --- video visits (issue 5) -------------------------------------------------------------------------------------


# Monday 2031-03-03 08:30 in Lisbon (UTC+0 in winter): a 09:00 video appointment's check-in window is open.
CLINIC_NOW = dt.datetime(2031, 3, 3, 8, 30, tzinfo=dt.UTC)
NINE = dt.datetime(2031, 3, 3, 9, 0, tzinfo=dt.UTC)
INTAKE = {"reason": "Synthetic reason", "private": True}


@dataclass(frozen=True)
class VisitRefs:
    """A waiting video visit and its two participants, as the signaling tests need them."""

    id: str
    patient_user: Any
    practitioner: Any
    patient_name: str


def make_visit(*, practitioner: Any, patient_user: Any) -> VisitRefs:
    """A waiting visit made as in real life: a scheduler books ``patient_user``'s 09:00 video appointment with
    ``practitioner`` and the patient checks in (consent, intake). Run inside ``clinic_time``."""
    from scheduling.services.booking import appointment_book
    from telehealth.services import visit_check_in
    from tests.factories import PatientFactory, UserFactory
    from tests.factories.scheduling import AppointmentTypeFactory, ScheduleFactory

    ScheduleFactory(practitioner=practitioner)
    scheduler = UserFactory(
        username="sched-signal",
        roles=["scheduler"],
        organization=practitioner.organization,
        locations=list(practitioner.locations.all()),
    )
    video = AppointmentTypeFactory(code="video-signal", name="Video consultation", modality="video")
    patient = PatientFactory(user=patient_user, given_name="Secretname", family_name="Signalpatient")
    appointment = appointment_book(
        actor=scheduler,
        appointment_type_id=video.pk,
        patient_id=patient.id,
        start=NINE,
        practitioner_id=practitioner.pk,
    )
    detail = visit_check_in(actor=patient_user, appointment_id=appointment.id, consent=True, answers=INTAKE)
    return VisitRefs(id=detail.id, patient_user=patient_user, practitioner=practitioner, patient_name="Secretname")


def visit_admit_now(visit: VisitRefs) -> None:
    """The practitioner admits the patient (telehealth ``visit_admit``; the sockets get ``visit.state``)."""
    from telehealth.services import visit_admit

    visit_admit(actor=visit.practitioner, visit_id=visit.id)


def visit_end_now(visit: VisitRefs) -> None:
    """The practitioner ends the visit (telehealth ``visit_end``; the sockets get ``finished`` and close 4410)."""
    from telehealth.services import visit_end

    visit_end(actor=visit.practitioner, visit_id=visit.id, summary="Synthetic summary")


def visit_patient_connected(visit: VisitRefs) -> bool:
    """Whether the doctor's queue shows the patient connected (read through the telehealth queue selector)."""
    from telehealth.selectors import clinic_queue_for

    return any(e.visit_id == visit.id and e.connected for e in clinic_queue_for(user=visit.practitioner).mine)


@pytest.fixture
def clinic_time() -> Iterator[None]:
    """The clock at 08:30 on a clinic Monday, ticking (sockets and timeouts need time to pass)."""
    with time_machine.travel(CLINIC_NOW, tick=True):
        yield


@pytest.fixture
def visit(clinic_time: None, doctor: Any, patient: Any) -> VisitRefs:
    return make_visit(practitioner=doctor, patient_user=patient)
