"""The scheduling admin (configuration editable, appointments read-only without names) and the live pushes a
booking makes (ids and times only, to the board and the two people concerned)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from core.models import StreamEvent
from scheduling.selectors import board_may_receive
from scheduling.services.booking import appointment_book
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TUESDAY_10 = dt.datetime(2031, 3, 4, 10, 0, tzinfo=dt.UTC)


def test_booking_pushes_to_board_practitioner_and_patient_without_names(
    frozen_now, scheduler, patient, patient_user, doctor, doctor_schedule, video_type
):
    ref = appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    events = {e.stream: e for e in StreamEvent.objects.filter(type="appointment.changed")}
    assert set(events) == {"group:scheduling.board", f"user:{doctor.pk}", f"user:{patient_user.pk}"}
    data = events["group:scheduling.board"].data
    assert (data["id"], data["status"], data["event"], data["version"]) == (ref.id, "booked", "booked", 1)
    text = str(data)
    assert patient.given_name not in text
    assert patient.family_name not in text


def test_board_stream_is_for_staff_only(organization):
    assert board_may_receive(UserFactory(roles=["scheduler"], organization=organization), "scheduling.board")
    assert board_may_receive(UserFactory(roles=["nurse"], organization=organization), "scheduling.board")
    assert not board_may_receive(UserFactory(roles=["patient"]), "scheduling.board")
    assert not board_may_receive(UserFactory(roles=["billing"], organization=organization), "scheduling.board")
    assert not board_may_receive(UserFactory(roles=["scheduler"], organization=organization), "scheduling.other")


def test_admin_shows_appointments_read_only_and_without_patient_names(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    ref = appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    admin = UserFactory(username="root-admin", roles=["admin"], is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/scheduling/appointment/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert patient.family_name not in page
    detail = client.get(f"/admin/scheduling/appointment/{ref.id}/change/")
    assert detail.status_code == 200
    assert client.get("/admin/scheduling/appointment/add/").status_code == 403
    assert client.post(f"/admin/scheduling/appointment/{ref.id}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/scheduling/schedule/add/").status_code == 200
