"""appointment_patient_arrive: the patient themself says they are here (telehealth check-in)."""

from __future__ import annotations

import datetime as dt

import pytest

from scheduling.errors import InvalidTransition, NotFound
from scheduling.models import AppointmentEvent
from scheduling.services.booking import appointment_book, appointment_cancel
from scheduling.services.status import appointment_patient_arrive
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

TUESDAY_10 = dt.datetime(2031, 3, 4, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def booked(frozen_now, scheduler, patient, doctor, doctor_schedule, video_type):  # type: ignore[no-untyped-def]
    return appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.id,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )


def test_the_patient_marks_their_own_appointment_arrived_with_an_event(booked, patient_user) -> None:
    ref = appointment_patient_arrive(actor=patient_user, appointment_id=booked.id)
    assert ref.status == "arrived"
    assert ref.arrived_at is not None
    assert ref.version == booked.version + 1
    event = AppointmentEvent.objects.filter(appointment_id=booked.id).latest("id")
    assert (event.type, event.from_status, event.to_status, event.actor_id) == (
        "patient_arrived",
        "booked",
        "arrived",
        patient_user.pk,
    )


def test_arriving_again_changes_nothing(booked, patient_user) -> None:
    first = appointment_patient_arrive(actor=patient_user, appointment_id=booked.id)
    again = appointment_patient_arrive(actor=patient_user, appointment_id=booked.id)
    assert again.version == first.version
    assert AppointmentEvent.objects.filter(appointment_id=booked.id, type="patient_arrived").count() == 1


def test_nobody_else_may_say_the_patient_arrived(booked, doctor, organization) -> None:
    other = UserFactory(username="other-pt", roles=["patient"], organization=organization)
    PatientFactory(user=other)
    for actor in (other, doctor):
        with pytest.raises(NotFound):
            appointment_patient_arrive(actor=actor, appointment_id=booked.id)
    with pytest.raises(NotFound):
        appointment_patient_arrive(actor=doctor, appointment_id=987654)
    assert not AppointmentEvent.objects.filter(appointment_id=booked.id, type="patient_arrived").exists()


def test_a_cancelled_appointment_cannot_arrive(booked, scheduler, patient_user) -> None:
    appointment_cancel(actor=scheduler, appointment_id=booked.id, reason="Doctor ill", expected_version=None)
    with pytest.raises(InvalidTransition):
        appointment_patient_arrive(actor=patient_user, appointment_id=booked.id)
