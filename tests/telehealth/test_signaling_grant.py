"""The two calls the signaling consumer makes: who a user is in a visit, and the patient's socket presence."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import AnonymousUser

from core.models import StreamEvent
from telehealth.selectors import visit_signaling_grant
from telehealth.services import visit_presence_mark
from tests.factories import UserFactory
from tests.factories.telehealth import visit_row

pytestmark = pytest.mark.django_db


def test_grant_names_the_patient_and_the_practitioner(patient, patient_user, doctor) -> None:
    visit = visit_row(patient=patient, practitioner=doctor)
    patient_grant = visit_signaling_grant(user=patient_user, visit_id=str(visit.pk))
    doctor_grant = visit_signaling_grant(user=doctor, visit_id=str(visit.pk))
    assert patient_grant is not None
    assert doctor_grant is not None
    assert (patient_grant.role, patient_grant.participant_id, patient_grant.status) == ("patient", "patient", "waiting")
    assert (doctor_grant.role, doctor_grant.participant_id) == ("practitioner", "practitioner")
    assert doctor_grant.display_name == doctor.display_name
    assert patient_grant.visit_id == str(visit.pk)


def test_grant_refuses_outsiders_unknown_and_malformed_ids(patient, doctor, organization, location) -> None:
    visit = visit_row(patient=patient, practitioner=doctor)
    colleague = UserFactory(username="dr-col", roles=["practitioner"], organization=organization, locations=[location])
    assert visit_signaling_grant(user=colleague, visit_id=str(visit.pk)) is None
    assert visit_signaling_grant(user=AnonymousUser(), visit_id=str(visit.pk)) is None
    assert visit_signaling_grant(user=doctor, visit_id=str(uuid.uuid4())) is None
    assert visit_signaling_grant(user=doctor, visit_id="not-a-uuid") is None


def test_presence_mark_tracks_the_patients_socket_and_tells_the_queue(patient, patient_user, doctor) -> None:
    visit = visit_row(patient=patient, practitioner=doctor)
    visit_presence_mark(visit_id=str(visit.pk), user_id=patient_user.pk, present=True)
    visit.refresh_from_db()
    assert visit.patient_connected
    assert visit.patient_left_at is None
    assert StreamEvent.objects.filter(stream=f"group:telehealth.queue.{doctor.pk}", type="queue.changed").count() == 1
    visit_presence_mark(visit_id=str(visit.pk), user_id=patient_user.pk, present=True)  # a repeat changes nothing
    assert StreamEvent.objects.filter(stream=f"group:telehealth.queue.{doctor.pk}").count() == 1
    visit_presence_mark(visit_id=str(visit.pk), user_id=patient_user.pk, present=False)
    visit.refresh_from_db()
    assert not visit.patient_connected
    assert visit.patient_left_at is not None


def test_presence_mark_ignores_anyone_but_the_patient(patient, doctor) -> None:
    visit = visit_row(patient=patient, practitioner=doctor)
    visit_presence_mark(visit_id=str(visit.pk), user_id=doctor.pk, present=True)
    visit_presence_mark(visit_id="garbage", user_id=doctor.pk, present=True)
    visit.refresh_from_db()
    assert not visit.patient_connected
