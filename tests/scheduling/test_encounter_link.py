"""The appointment and its planned EHR encounter stay one booking: booking records the appointment on the encounter
(FHIR Encounter.appointment), rescheduling keeps it, and the chart cannot cancel the encounter behind the
appointment's back — it cancels the appointment, which cancels both."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from rest_framework.test import APIClient

from ehr.models import Encounter
from scheduling.models import Appointment
from scheduling.services.booking import appointment_book, appointment_reschedule, hold_confirm, hold_create
from tests.conftest import csrf_login

pytestmark = pytest.mark.django_db

# Tuesday 2031-03-04, 10:00 Lisbon (= UTC in winter).
TUESDAY_10 = dt.datetime(2031, 3, 4, 10, 0, tzinfo=dt.UTC)


def _book(actor: Any, patient: Any, doctor: Any, video_type: Any, start: dt.datetime = TUESDAY_10) -> Any:
    return appointment_book(
        actor=actor, appointment_type_id=video_type.pk, patient_id=patient.pk, start=start, practitioner_id=doctor.pk
    )


def _client(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def _post(client: APIClient, path: str, body: Any, **headers: str) -> Any:
    return client.post(path, body, format="json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value, **headers)


def test_booking_records_the_appointment_on_its_planned_encounter(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
) -> None:
    ref = _book(scheduler, patient, doctor, video_type)
    encounter = Encounter.objects.get(pk=ref.encounter_id)
    assert (encounter.status, encounter.appointment_id) == ("planned", ref.id)
    assert encounter.versions.get(version=1).data["appointment_id"] == ref.id


def test_a_confirmed_hold_records_the_appointment_too(
    frozen_now, patient_user, patient, doctor, doctor_schedule, video_type
) -> None:
    hold = hold_create(
        actor=patient_user,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    ref = hold_confirm(actor=patient_user, hold_id=hold.id)
    assert Encounter.objects.get(pk=ref.encounter_id).appointment_id == ref.id


def test_rescheduling_keeps_the_encounter_linked_to_the_same_appointment(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
) -> None:
    ref = _book(scheduler, patient, doctor, video_type)
    moved = appointment_reschedule(
        actor=scheduler,
        appointment_id=ref.id,
        start=TUESDAY_10 + dt.timedelta(hours=2),
        reason="doctor running a clinic late",
        expected_version=1,
    )
    encounter = Encounter.objects.get(pk=moved.encounter_id)
    assert (encounter.pk, encounter.appointment_id, encounter.planned_start) == (
        ref.encounter_id,
        ref.id,
        TUESDAY_10 + dt.timedelta(hours=2),
    )


def test_the_chart_cancels_a_booked_visit_through_its_appointment_and_both_end_cancelled(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
) -> None:
    ref = _book(scheduler, patient, doctor, video_type)
    clinician = _client(doctor.username)

    listed = clinician.get(f"/api/v1/ehr/patients/{patient.pk}/encounters/").json()["results"]
    assert [(row["id"], row["appointment_id"]) for row in listed] == [(ref.encounter_id, ref.id)]

    # The encounter's own cancel is refused and changes neither side.
    refused = _post(
        clinician, f"/api/v1/ehr/encounters/{ref.encounter_id}/cancel/", {"reason": "rang"}, HTTP_IF_MATCH='"1"'
    )
    assert (refused.status_code, refused.json()["code"], refused.json()["appointment_id"]) == (
        409,
        "cancel_the_appointment",
        ref.id,
    )
    assert Appointment.objects.get(pk=ref.id).status == "booked"
    assert Encounter.objects.get(pk=ref.encounter_id).status == "planned"

    # What the chart does instead: read the appointment's ETag, cancel it with If-Match and the reason.
    current = clinician.get(f"/api/v1/scheduling/appointments/{ref.id}/")
    assert current.status_code == 200
    cancelled = _post(
        clinician,
        f"/api/v1/scheduling/appointments/{ref.id}/cancel/",
        {"reason": "Patient rang: feeling better"},
        HTTP_IF_MATCH=current["ETag"],
    )
    assert cancelled.status_code == 200, cancelled.content
    appointment = Appointment.objects.get(pk=ref.id)
    encounter = Encounter.objects.get(pk=ref.encounter_id)
    assert (appointment.status, appointment.cancel_reason) == ("cancelled", "Patient rang: feeling better")
    assert (encounter.status, encounter.versions.order_by("-version").first().reason) == (  # type: ignore[union-attr]
        "cancelled",
        "Patient rang: feeling better",
    )
