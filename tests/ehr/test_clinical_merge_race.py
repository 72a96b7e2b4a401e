"""A clinical write racing a patient merge: the write passed its access check on the duplicate, then the merge
commits before its insert lands. PostgreSQL's compartment guard (migration 0014) makes the insert wait for the merge
and refuses it; the clinical services answer ``PatientMerged`` (HTTP 409 ``patient_merged`` naming the surviving
record) and nothing is written — never a 500.

Each race is real: this test holds the duplicate's row lock as ``patient_merge`` takes it first, lets the write
run in another thread until PostgreSQL shows it waiting on that lock, then merges in the same transaction."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from ehr.errors import PatientMerged
from ehr.models import AuditEvent, ClinicalNote, Condition, DocumentReference, Encounter, Patient
from ehr.services.clinical import clinical_note_add, condition_add, encounter_open, encounter_plan
from ehr.services.documents import IncomingDocument, document_upload
from ehr.services.patients import patient_merge
from tests.conftest import csrf_login
from tests.factories import PatientFactory, care_team_join
from tests.support.servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"


@pytest.fixture(autouse=True)
def store(settings: Any, tmp_path: Path) -> Path:
    settings.DOCUMENT_STORAGE_ROOT = tmp_path / "documents"
    return settings.DOCUMENT_STORAGE_ROOT  # type: ignore[no-any-return]


def waiting_on_locks() -> int:
    """Sessions of this database waiting for a lock (pg_locks is live)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()")
        return int(cursor.fetchone()[0])


def race_a_merge(admin: Any, source: Patient, target: Patient, write: Callable[[], Any]) -> Any:
    """Run ``write`` in a thread while the duplicate ``source`` is being merged into ``target``; return what the
    write returned or raised."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(write())
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    with transaction.atomic():
        Patient.objects.select_for_update().get(pk=source.pk)  # the lock patient_merge takes first
        thread.start()
        wait_until(lambda: waiting_on_locks() >= 1, timeout=20, what="the write blocked on the duplicate's row")
        patient_merge(
            actor=admin, source_patient_id=source.pk, target_patient_id=target.pk, expected_source_version=1,
            expected_target_version=1, reason="registered twice",
        )  # fmt: skip
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(outcome) == 1
    return outcome[0]


def _creates_by(actor: Any, entity_type: str) -> int:
    return AuditEvent.objects.filter(actor=actor, action="create", entity_type=entity_type).count()


@pytest.fixture
def pair(admin_user, doctor):  # type: ignore[no-untyped-def]
    source = PatientFactory(registrar=admin_user)
    target = PatientFactory(registrar=admin_user)
    care_team_join(patient=source, member=doctor)
    return source, target


def test_opening_an_encounter_over_http_while_the_record_is_merged_answers_409_patient_merged(
    admin_user, doctor, location, pair
) -> None:
    source, target = pair
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, doctor.username).status_code == 200
    token = client.cookies["csrftoken"].value

    def open_encounter() -> Any:
        return client.post(
            f"/api/v1/ehr/patients/{source.pk}/encounters/",
            {"location_id": location.pk, "modality": "in-person"},
            format="json",
            HTTP_X_CSRFTOKEN=token,
        )

    response = race_a_merge(admin_user, source, target, open_encounter)
    assert response.status_code == 409, response.content
    body = response.json()
    assert (body["code"], body["merged_into_id"]) == ("patient_merged", target.pk)
    assert "merged" in body["detail"]
    assert not Encounter.objects.exists()
    assert _creates_by(doctor, "Encounter") == 0
    assert Patient.objects.get(pk=source.pk).status == "merged"


@pytest.mark.parametrize("kind", ["condition", "note", "planned visit", "document"])
def test_a_clinical_insert_racing_a_merge_raises_patient_merged_and_writes_nothing(
    admin_user, doctor, location, pair, kind, store
) -> None:
    source, target = pair
    visit = encounter_open(actor=doctor, patient_id=source.pk, location_id=location.pk, modality="in-person")
    start = timezone.now() + datetime.timedelta(days=2)
    writes: dict[str, Callable[[], Any]] = {
        "condition": lambda: condition_add(actor=doctor, patient_id=source.pk, code="I10"),
        # The note's encounter moves to the surviving record with the merge; the note, aimed at the duplicate, lands
        # nowhere.
        "note": lambda: clinical_note_add(actor=doctor, encounter_id=visit.id),
        # The booking path: scheduling plans the visit inside its own transaction, so the refusal must leave that
        # transaction usable (the service's savepoint is rolled back, not the caller's work).
        "planned visit": lambda: _plan_inside_a_callers_transaction(admin_user, doctor, location, source, start),
        "document": lambda: document_upload(
            actor=doctor, patient_id=source.pk, incoming=_pdf(), type="lab-report", title="ECG"
        ),
    }
    before = (ClinicalNote.objects.count(), Condition.objects.count(), Encounter.objects.count())
    outcome = race_a_merge(admin_user, source, target, writes[kind])
    assert isinstance(outcome, PatientMerged), outcome
    assert (outcome.patient_id, outcome.merged_into_id) == (source.pk, target.pk)
    assert (ClinicalNote.objects.count(), Condition.objects.count(), Encounter.objects.count()) == before
    assert not DocumentReference.objects.exists()
    assert not [path for path in store.rglob("*") if path.is_file()]  # no stored file left behind
    assert Encounter.objects.get(pk=visit.id).patient_id == target.pk  # moved by the merge, as before
    assert _creates_by(doctor, "Condition") == _creates_by(doctor, "ClinicalNote") == 0
    assert _creates_by(doctor, "DocumentReference") == 0
    assert _creates_by(admin_user, "Encounter") == 0


def _pdf() -> IncomingDocument:
    incoming = IncomingDocument(filename="ecg.pdf", declared_type="application/pdf")
    incoming.write(PDF)
    return incoming


def _plan_inside_a_callers_transaction(
    actor: Any, doctor: Any, location: Any, source: Patient, start: datetime.datetime
) -> Any:
    with transaction.atomic():
        try:
            return encounter_plan(
                actor=actor, patient_id=source.pk, practitioner_id=doctor.pk, location_id=location.pk,
                modality="virtual", planned_start=start, planned_end=start + datetime.timedelta(minutes=30),
                appointment_id=99,
            )  # fmt: skip
        except PatientMerged as exc:
            # The caller's transaction is still usable after the refusal.
            assert Patient.objects.filter(pk=source.pk).values_list("status", flat=True).get() == "merged"
            return exc
