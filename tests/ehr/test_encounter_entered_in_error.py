"""Marking an encounter entered in error: a new version with the reason, nothing deleted, If-Match enforced."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from ehr import selectors
from ehr.errors import InvalidClinicalData, InvalidTransition, VersionConflict
from ehr.models import AuditEvent, Encounter
from ehr.services.clinical import encounter_close, encounter_mark_entered_in_error
from tests.conftest import csrf_login
from tests.factories import EncounterFactory, PatientFactory, care_team_join

pytestmark = pytest.mark.django_db


@pytest.fixture
def encounter(doctor):  # type: ignore[no-untyped-def]
    record = PatientFactory()
    care_team_join(patient=record, member=doctor)
    return EncounterFactory(patient=record, practitioner=doctor)


def test_entered_in_error_is_a_new_version_with_the_reason_and_audited(encounter, doctor) -> None:
    ref = encounter_mark_entered_in_error(
        actor=doctor, encounter_id=encounter.id, expected_version=1, reason="opened on the wrong patient"
    )
    assert (ref.status, ref.version) == ("entered-in-error", 2)
    history = selectors.clinical_record_history(actor=doctor, kind="Encounter", record_id=encounter.id)
    assert [v.version for v in history] == [1, 2]
    assert history[1].reason == "opened on the wrong patient"
    assert Encounter.objects.filter(pk=encounter.id).exists()  # nothing is deleted
    marked = AuditEvent.objects.filter(entity_type="Encounter", entity_id=str(encounter.id), action="entered_in_error")
    assert list(marked.values_list("outcome", "actor_id")) == [("success", doctor.pk)]


def test_stale_version_missing_reason_and_repeat_write_nothing(encounter, doctor) -> None:
    with pytest.raises(VersionConflict):
        encounter_mark_entered_in_error(actor=doctor, encounter_id=encounter.id, expected_version=7, reason="x")
    with pytest.raises(InvalidClinicalData):
        encounter_mark_entered_in_error(actor=doctor, encounter_id=encounter.id, expected_version=1, reason=" ")
    assert Encounter.objects.get(pk=encounter.id).version == 1
    encounter_mark_entered_in_error(actor=doctor, encounter_id=encounter.id, expected_version=1, reason="dup")
    with pytest.raises(InvalidTransition):
        encounter_mark_entered_in_error(actor=doctor, encounter_id=encounter.id, expected_version=2, reason="again")
    assert Encounter.objects.get(pk=encounter.id).version == 2


def test_a_finished_encounter_can_be_marked_entered_in_error(encounter, doctor) -> None:
    encounter_close(actor=doctor, encounter_id=encounter.id)
    ref = encounter_mark_entered_in_error(actor=doctor, encounter_id=encounter.id, expected_version=2, reason="test")
    assert ref.status == "entered-in-error"


def test_api_requires_if_match_and_answers_with_the_new_etag(encounter, doctor) -> None:
    client = APIClient(enforce_csrf_checks=True)
    csrf_login(client, "dr-test")
    token = client.cookies["csrftoken"].value
    path = f"/api/v1/ehr/encounters/{encounter.id}/entered-in-error/"
    missing = client.post(path, {"reason": "wrong patient"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert missing.status_code == 428
    stale = client.post(path, {"reason": "wrong patient"}, format="json", HTTP_X_CSRFTOKEN=token, HTTP_IF_MATCH='"9"')
    assert stale.status_code == 412
    ok = client.post(path, {"reason": "wrong patient"}, format="json", HTTP_X_CSRFTOKEN=token, HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200, ok.content
    assert ok.json()["status"] == "entered-in-error"
    assert ok["ETag"] == '"2"'
