"""Merging a duplicate patient record into the surviving one (ehr.services.patients.patient_merge): everything
clinical moves as new versions, history stays as written, both records are versioned and audited, every refusal
writes nothing, two merges of one duplicate race to exactly one winner, and PostgreSQL keeps merged records closed."""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from ehr import crypto, selectors
from ehr.access import PatientAction, patient_access_allowed
from ehr.errors import (
    AccessDenied,
    InvalidClinicalData,
    InvalidPatientData,
    MergePatientNotActive,
    MergePortalAccountConflict,
    MergeSamePatient,
    MergeVersionConflict,
    PatientAlreadyMerged,
    PatientNotFound,
)
from ehr.models import (
    AllergyIntolerance,
    AuditEvent,
    CareTeamMember,
    ClinicalNote,
    ClinicalNoteVersion,
    Condition,
    DocumentReference,
    Encounter,
    MedicationStatement,
    Observation,
    Patient,
    PatientVersion,
)
from ehr.services.access import break_glass_grant
from ehr.services.clinical import (
    allergy_add,
    clinical_note_add,
    clinical_note_addendum,
    clinical_note_sign,
    condition_add,
    condition_mark_entered_in_error,
    encounter_plan,
    medication_add,
    observation_record,
)
from ehr.services.documents import IncomingDocument, document_upload
from ehr.services.patients import patient_mark_entered_in_error, patient_merge, patient_update
from tests.conftest import csrf_login
from tests.factories import EncounterFactory, PatientFactory, UserFactory, care_team_join
from tests.support.servers import wait_until

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
REASON = "Registered twice at the front desk"
MOVED_KINDS = (
    Encounter,
    ClinicalNote,
    Condition,
    AllergyIntolerance,
    MedicationStatement,
    Observation,
    DocumentReference,
)


@pytest.fixture(autouse=True)
def store(settings: Any, tmp_path: Path) -> Path:
    settings.DOCUMENT_STORAGE_ROOT = tmp_path / "documents"
    return settings.DOCUMENT_STORAGE_ROOT


@dataclass
class Charts:
    source: Patient
    target: Patient
    ids: dict[str, int]


def waiting_on_locks() -> int:
    """Sessions of this test database (not the other suites sharing the cluster) waiting for a lock. The activity
    view is snapshotted once per transaction, so the snapshot is dropped before each look."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
            "AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def last_audit_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def merge(actor: Any, charts: Charts, **overrides: Any) -> Patient:
    values: dict[str, Any] = {
        "actor": actor,
        "source_patient_id": charts.source.pk,
        "target_patient_id": charts.target.pk,
        "expected_source_version": Patient.objects.get(pk=charts.source.pk).version,
        "expected_target_version": Patient.objects.get(pk=charts.target.pk).version,
        "reason": REASON,
    }
    return patient_merge(**(values | overrides))


@pytest.fixture
def charts(admin_user, doctor, doctor2, nurse, patient, location) -> Charts:
    """A duplicate with a full chart (and the portal login) and the surviving record with a little of its own."""
    born = datetime.date(1981, 4, 2)
    source = PatientFactory(
        registrar=admin_user, given_name="Marta", family_name="Quelhas", birth_date=born, user=patient,
        national_id="PT-555111", insurance_member_id="INS-777",
    )  # fmt: skip
    target = PatientFactory(
        registrar=admin_user, given_name="Marta", family_name="Quelhas Lopes", birth_date=born,
        national_id="PT-999000",
    )  # fmt: skip
    # doctor and nurse are on both teams at once (those rows stay with the duplicate, ended); doctor2 only here
    for record in (source, target):
        care_team_join(patient=record, member=doctor)
        care_team_join(patient=record, member=nurse, role="nurse")
    care_team_join(patient=source, member=doctor2, role="visit-practitioner")
    encounter = EncounterFactory(patient=source, practitioner=doctor)
    signed = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"assessment": "Hypertension"})
    clinical_note_sign(actor=doctor, note_id=signed.id, expected_version=1)
    clinical_note_addendum(actor=doctor, note_id=signed.id, text="BP recheck in 2 weeks")
    draft = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"plan": "Lifestyle"})
    condition = condition_add(actor=doctor, patient_id=source.pk, code="I10", encounter_id=encounter.id)
    wrong = condition_add(actor=doctor, patient_id=source.pk, code="E11.9")
    condition_mark_entered_in_error(actor=doctor, condition_id=wrong.id, expected_version=1, reason="wrong chart")
    incoming = IncomingDocument(filename="ecg.pdf", declared_type="application/pdf")
    incoming.write(PDF)
    soon = timezone.now() + datetime.timedelta(days=5)
    planned = encounter_plan(
        actor=admin_user, patient_id=source.pk, practitioner_id=doctor.pk, location_id=location.pk,
        modality="virtual", planned_start=soon, planned_end=soon + datetime.timedelta(minutes=20),
    )  # fmt: skip
    document = document_upload(
        actor=doctor, patient_id=source.pk, incoming=incoming, type="lab-report", title="ECG",
        encounter_id=encounter.id,
    )  # fmt: skip
    ids = {
        "encounter": encounter.id,
        "planned": planned.id,
        "signed": signed.id,
        "draft": draft.id,
        "condition": condition.id,
        "wrong_condition": wrong.id,
        "allergy": allergy_add(actor=doctor, patient_id=source.pk, substance_text="Penicillin", criticality="high").id,
        "medication": medication_add(actor=doctor, patient_id=source.pk, medication_text="Amlodipine 5 mg").id,
        "observation": observation_record(actor=doctor, patient_id=source.pk, code="8480-6", value=150).id,
        "document": document.id,
        "target_condition": condition_add(actor=doctor, patient_id=target.pk, code="J45.909").id,
    }
    return Charts(source=source, target=target, ids=ids)


def counts(patient_id: int) -> dict[str, int]:
    return {model.__name__: model.objects.filter(patient_id=patient_id).count() for model in MOVED_KINDS}


def history_rows() -> list[tuple[str, int, int, str]]:
    """Every version row of every clinical kind and of patients, as (table, record, version, reason)."""
    rows: list[tuple[str, int, int, str]] = []
    for model in (*MOVED_KINDS,):
        history = model.versions.rel.related_model  # type: ignore[attr-defined]
        rows += [(history.__name__, *r) for r in history.objects.values_list("record_id", "version", "reason")]
    rows += [("PatientVersion", *r) for r in PatientVersion.objects.values_list("patient_id", "version", "reason")]
    return sorted(rows)


def state() -> tuple[Any, ...]:
    """Everything a merge would change (denial audit rows excepted)."""
    return (
        history_rows(),
        sorted(Patient.objects.values_list("id", "status", "version", "user_id", "merged_into_id")),
        sorted(CareTeamMember.objects.values_list("id", "patient_id", "end")),
        {model.__name__: sorted(model.objects.values_list("id", "patient_id", "version")) for model in MOVED_KINDS},
        AuditEvent.objects.filter(outcome="success").count(),
    )


# --- what a merge does ----------------------------------------------------------------------------------------------


def test_everything_clinical_moves_to_the_surviving_record_as_new_versions(charts, admin_user, doctor) -> None:
    source, target = charts.source, charts.target
    before = {kind: counts(source.pk)[kind] + counts(target.pk)[kind] for kind in counts(source.pk)}
    old_history = history_rows()
    versions = {
        model.__name__: dict(model.objects.filter(patient_id=source.pk).values_list("id", "version"))
        for model in MOVED_KINDS
    }
    survivor = merge(admin_user, charts)

    assert survivor.pk == target.pk
    assert counts(source.pk) == dict.fromkeys(before, 0)
    assert counts(target.pk) == before
    # each moved row: one new version, reason "merged from <MRN>", only patient_id changed; old versions untouched
    for model in MOVED_KINDS:
        history = model.versions.rel.related_model  # type: ignore[attr-defined]
        for record_id, version in versions[model.__name__].items():
            row = model.objects.get(pk=record_id)
            assert row.version == version + 1, (model.__name__, record_id)
            latest = history.objects.get(record_id=record_id, version=version + 1)
            assert (latest.reason, latest.changed_fields) == (f"merged from {source.mrn}", ["patient_id"])
            assert latest.data == history.objects.get(record_id=record_id, version=version).data
    assert set(old_history) <= set(history_rows())

    # the signed note is still signed with its content and addendum; the draft can still be edited by its author
    note = ClinicalNote.objects.get(pk=charts.ids["signed"])
    assert (note.status, note.assessment, note.patient_id) == ("amended", "Hypertension", target.pk)
    assert note.addenda.get().text == "BP recheck in 2 weeks"
    assert ClinicalNoteVersion.objects.filter(record_id=note.pk).count() == 4  # draft, signed, amended, merged
    # the surviving chart shows what came over; the document is served from the surviving record
    summary = selectors.chart_summary_get(actor=doctor, patient_id=target.pk)
    assert {p.code for p in summary.problems} == {"I10", "J45.909"}
    assert [a.substance_text for a in summary.allergies] == ["Penicillin"]
    content = selectors.document_content_open(actor=doctor, document_id=charts.ids["document"])
    content.file.close()
    assert content.document.patient_id == target.pk
    encounters = selectors.encounter_list(actor=doctor, patient_id=target.pk)
    assert {e.id for e in encounters} == {charts.ids["encounter"], charts.ids["planned"]}


def test_both_records_get_a_version_and_the_duplicate_points_to_the_survivor(charts, admin_user, patient) -> None:
    source, target = charts.source, charts.target
    merge(admin_user, charts)
    source.refresh_from_db()
    target.refresh_from_db()
    assert (source.status, source.merged_into_id, source.version, source.user_id) == ("merged", target.pk, 2, None)
    assert (target.status, target.version, target.user_id) == ("active", 2, patient.pk)
    source_v2 = PatientVersion.objects.get(patient=source, version=2)
    assert source_v2.reason == f"merged into {target.mrn}: {REASON}"
    assert source_v2.changed_fields == ["status", "merged_into_id", "user_id"]
    assert (source_v2.data["status"], source_v2.data["merged_into_id"]) == ("merged", target.pk)
    target_v2 = PatientVersion.objects.get(patient=target, version=2)
    assert target_v2.reason == f"merged from {source.mrn}: {REASON}"
    assert target_v2.changed_fields == ["insurance_member_id", "user_id"]
    # identifiers: the survivor keeps its own, and gains the one it lacked
    assert crypto.decrypt_identifier(target.national_id_encrypted) == "PT999000"
    assert crypto.decrypt_identifier(target.insurance_member_id_encrypted) == "INS777"
    diff = selectors.patient_history(actor=admin_user, patient_id=source.pk)[-1].diff
    assert {c.field for c in diff} == {"status", "merged_into_id", "user_id"}


def test_the_portal_login_and_the_care_team_follow_the_survivor(
    charts, admin_user, doctor, doctor2, nurse, patient
) -> None:
    source, target = charts.source, charts.target
    merge(admin_user, charts)
    assert patient_access_allowed(actor=patient, patient_id=target.pk, action=PatientAction.READ_CLINICAL)
    assert not patient_access_allowed(actor=patient, patient_id=source.pk, action=PatientAction.READ)
    ref = selectors.patient_ref_for_user(user_id=patient.pk)
    assert ref is not None
    assert ref.id == target.pk
    # doctor2 was only on the duplicate's team: the membership moved
    assert list(CareTeamMember.objects.filter(member=doctor2).values_list("patient_id", "end")) == [(target.pk, None)]
    # doctor and nurse were on both teams at once: the survivor's rows stand, the duplicate's stay with it, ended
    for member in (doctor, nurse):
        assert CareTeamMember.objects.filter(member=member, patient=target, end__isnull=True).count() == 1
        kept = CareTeamMember.objects.get(member=member, patient=source)
        assert kept.end is not None
        assert kept.ended_by_id == admin_user.pk
        assert target.mrn in kept.end_reason
        assert patient_access_allowed(actor=member, patient_id=target.pk, action=PatientAction.WRITE_CLINICAL)


def test_one_audit_row_per_record_naming_the_other_and_the_counts(charts, admin_user) -> None:
    source, target = charts.source, charts.target
    marker = last_audit_id()
    merge(admin_user, charts)
    rows = list(AuditEvent.objects.filter(id__gt=marker).order_by("id"))
    assert [(r.action, r.entity_type, r.patient_id, r.outcome) for r in rows] == [
        ("update", "Patient", source.pk, "success"),
        ("update", "Patient", target.pk, "success"),
    ]
    assert rows[0].detail["merged_into"] == target.pk
    assert rows[1].detail["merged_from"] == source.pk
    assert rows[1].detail["fields"] == ["insurance_member_id", "user_id"]
    moved = rows[0].detail["moved"]
    assert moved == rows[1].detail["moved"]
    assert moved == {
        "encounters": 2,
        "notes": 2,
        "conditions": 2,
        "allergies": 1,
        "medications": 1,
        "observations": 1,
        "documents": 1,
        "care_team": 1,
        "care_team_kept": 2,
    }


def test_search_skips_the_merged_record_and_reading_it_points_to_the_survivor(charts, admin_user) -> None:
    source, target = charts.source, charts.target
    merge(admin_user, charts)
    assert selectors.patient_search(actor=admin_user, mrn=source.mrn) == []
    assert [p.pk for p in selectors.patient_search(actor=admin_user, identifier="INS-777")] == [target.pk]
    assert [p.pk for p in selectors.patient_search(actor=admin_user, query="Marta Quelhas")] == [target.pk]
    read = selectors.patient_get(actor=admin_user, patient_id=source.pk)
    assert (read.status, read.merged_into_id) == ("merged", target.pk)
    ref = selectors.patient_refs_get(actor=admin_user, patient_ids=[source.pk], purpose="test")[source.pk]
    assert (ref.status, ref.merged_into_id) == ("merged", target.pk)


def test_a_merged_record_takes_nothing_new(charts, admin_user, doctor) -> None:
    merge(admin_user, charts)
    # the doctor's ways into the duplicate moved with it; an emergency grant still only reads it
    break_glass_grant(actor=doctor, patient_id=charts.source.pk, reason="Checking an old link to this record")
    with pytest.raises(InvalidClinicalData) as refused:
        observation_record(actor=doctor, patient_id=charts.source.pk, code="8867-4", value=60)
    assert refused.value.fields == {"patient_id": ["The patient record is merged; nothing can be added."]}
    with pytest.raises(InvalidPatientData):
        patient_update(
            actor=admin_user, patient_id=charts.source.pk, expected_version=2, changes={"city": "Faro"}, reason="x"
        )
    with pytest.raises(InvalidPatientData):
        patient_mark_entered_in_error(actor=admin_user, patient_id=charts.source.pk, expected_version=2, reason="x")


# --- refusals: each writes nothing ----------------------------------------------------------------------------------


def test_refusals_write_nothing(charts, admin_user) -> None:
    source = charts.source
    with_login = PatientFactory(registrar=admin_user, user=UserFactory(username="pt-other", roles=["patient"]))
    before = state()
    with pytest.raises(MergeSamePatient):
        merge(admin_user, charts, target_patient_id=source.pk)
    with pytest.raises(MergeVersionConflict) as stale:
        merge(admin_user, charts, expected_source_version=7)
    assert (stale.value.record, stale.value.current_version) == ("source", 1)
    with pytest.raises(MergeVersionConflict) as stale:
        merge(admin_user, charts, expected_target_version=5)
    assert (stale.value.record, stale.value.current_version) == ("target", 1)
    with pytest.raises(InvalidPatientData):
        merge(admin_user, charts, reason="   ")
    with pytest.raises(PatientNotFound):
        merge(admin_user, charts, target_patient_id=987654, expected_target_version=1)
    with pytest.raises(MergePortalAccountConflict):
        merge(admin_user, charts, target_patient_id=with_login.pk, expected_target_version=1)
    assert state() == before


def test_records_that_are_not_active_are_refused(charts, admin_user) -> None:
    source, target = charts.source, charts.target
    third = PatientFactory(registrar=admin_user)
    merge(admin_user, charts)
    before = state()
    with pytest.raises(PatientAlreadyMerged) as again:
        merge(admin_user, Charts(source=source, target=third, ids={}))
    assert again.value.merged_into_id == target.pk
    with pytest.raises(MergePatientNotActive) as into_merged:
        merge(admin_user, Charts(source=third, target=source, ids={}))
    assert (into_merged.value.record, into_merged.value.status, into_merged.value.merged_into_id) == (
        "target",
        "merged",
        target.pk,
    )
    assert state() == before
    patient_mark_entered_in_error(actor=admin_user, patient_id=third.pk, expected_version=1, reason="typo record")
    before = state()
    for pair in (Charts(source=third, target=target, ids={}), Charts(source=target, target=third, ids={})):
        with pytest.raises(MergePatientNotActive) as inactive:
            merge(admin_user, pair)
        assert inactive.value.status == "entered-in-error"
    assert state() == before


@pytest.mark.parametrize("role", ["practitioner", "nurse", "billing", "patient"])
def test_only_admins_and_schedulers_merge_and_a_denial_is_audited(charts, admin_user, scheduler, role) -> None:
    actor = UserFactory(username=f"{role}-merger", roles=[role], organization=admin_user.organization)
    before = state()
    marker = last_audit_id()
    with pytest.raises(AccessDenied):
        merge(actor, charts)
    assert state() == before
    denied = AuditEvent.objects.get(id__gt=marker)
    assert (denied.outcome, denied.actor_id, denied.detail) == ("denied", actor.pk, {"action": "merge"})
    assert merge(scheduler, charts).pk == charts.target.pk


# --- the race -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_merges_of_one_duplicate_at_once_exactly_one_wins(admin_user, scheduler) -> None:
    source = PatientFactory(registrar=admin_user)
    targets = [PatientFactory(registrar=admin_user) for _ in range(2)]
    outcomes: dict[int, Any] = {}

    def run(target: Patient, actor: Any) -> None:
        try:
            outcomes[target.pk] = patient_merge(
                actor=actor, source_patient_id=source.pk, target_patient_id=target.pk, expected_source_version=1,
                expected_target_version=1, reason="duplicate",
            )  # fmt: skip
        except (MergeVersionConflict, PatientAlreadyMerged) as exc:
            outcomes[target.pk] = exc
        except BaseException as exc:  # reported by the main thread
            outcomes[target.pk] = ("unexpected", exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(t, a)) for t, a in zip(targets, (admin_user, scheduler), strict=True)]
    with transaction.atomic():
        Patient.objects.select_for_update().get(pk=source.pk)  # both merges queue behind this lock
        for thread in threads:
            thread.start()
        wait_until(lambda: waiting_on_locks() >= 2, timeout=20, what="both merges blocked on the duplicate's row")
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)

    winners = [pk for pk, outcome in outcomes.items() if isinstance(outcome, Patient)]
    losers = [outcome for outcome in outcomes.values() if isinstance(outcome, PatientAlreadyMerged)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1, outcomes  # the loser waited for the lock, then found the duplicate already merged
    assert losers[0].merged_into_id == winners[0]
    source.refresh_from_db()
    assert (source.status, source.merged_into_id, source.version) == ("merged", winners[0], 2)
    loser_target = next(t for t in targets if t.pk != winners[0])
    loser_target.refresh_from_db()
    assert loser_target.version == 1
    assert AuditEvent.objects.filter(patient_id=loser_target.pk, action="update").count() == 0


# --- PostgreSQL keeps merged records closed -------------------------------------------------------------------------


def test_postgresql_refuses_new_rows_for_a_merged_record_and_moves_not_made_by_a_merge(charts, admin_user) -> None:
    merge(admin_user, charts)
    other = PatientFactory(registrar=admin_user)
    insert = (
        "INSERT INTO ehr_observation (patient_id, code, code_display, category, value, unit, effective_at, status, "
        "performer_id, version, created_at, updated_at) VALUES (%s, '8867-4', 'Heart rate', 'vital-signs', 60, '/min', "
        "now(), 'final', %s, 1, now(), now())"
    )
    with pytest.raises(IntegrityError, match="merged"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(insert, [charts.source.pk, admin_user.pk])
    for sql in (
        "UPDATE ehr_condition SET patient_id = %s WHERE id = %s",
        "UPDATE ehr_clinicalnote SET patient_id = %s WHERE id = %s",
        "UPDATE ehr_documentreference SET patient_id = %s WHERE id = %s",
    ):
        record = {"ehr_condition": "condition", "ehr_clinicalnote": "signed", "ehr_documentreference": "document"}[
            sql.split()[1]
        ]
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [other.pk, charts.ids[record]])
    # ... and not back onto the merged record either
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ehr_allergyintolerance SET patient_id = %s WHERE id = %s", [charts.source.pk,
                       charts.ids["allergy"]])  # fmt: skip
    assert Condition.objects.get(pk=charts.ids["condition"]).patient_id == charts.target.pk


@pytest.mark.django_db(transaction=True)
def test_a_write_racing_a_merge_waits_for_it_and_then_fails(admin_user) -> None:
    """A clinical insert that reaches the duplicate while a merge holds its row waits (the guard locks the patient row
    FOR KEY SHARE) and, once the merge commits, sees the record merged and is refused: nothing lands on it."""
    source = PatientFactory(registrar=admin_user)
    target = PatientFactory(registrar=admin_user)
    outcome: list[Any] = []

    def insert() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute(
                    "INSERT INTO ehr_allergyintolerance (patient_id, substance_text, substance_code, substance_system, "
                    "criticality, reaction, clinical_status, verification_status, recorder_id, version, created_at, "
                    "updated_at) VALUES (%s, 'Latex', '', '', 'low', '', 'active', 'confirmed', %s, 1, now(), now())",
                    [source.pk, admin_user.pk],
                )
            outcome.append("inserted")
        except IntegrityError as exc:
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=insert)
    with transaction.atomic():
        Patient.objects.select_for_update().get(pk=source.pk)  # as patient_merge does first
        thread.start()
        wait_until(lambda: waiting_on_locks() >= 1, timeout=20, what="the insert blocked on the patient row")
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE ehr_patient SET status = 'merged', merged_into_id = %s WHERE id = %s", [target.pk, source.pk]
            )
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], IntegrityError), outcome
    assert not AllergyIntolerance.objects.filter(patient_id=source.pk).exists()


# --- API ------------------------------------------------------------------------------------------------------------


def _client(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def _merge_api(client: APIClient, source_id: int, body: Any) -> Any:
    return client.post(
        f"/api/v1/ehr/patients/{source_id}/merge/",
        body,
        format="json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )


def test_api_merges_and_answers_with_the_survivor_and_its_etag(charts, admin_user) -> None:
    client = _client("admin-test")
    body = {"into": charts.target.pk, "reason": REASON, "source_version": 1, "target_version": 1}
    response = _merge_api(client, charts.source.pk, body)
    assert response.status_code == 200, response.content
    assert (response.json()["id"], response.json()["version"], response["ETag"]) == (charts.target.pk, 2, '"2"')
    read = client.get(f"/api/v1/ehr/patients/{charts.source.pk}/")
    assert (read.json()["status"], read.json()["merged_into"]) == ("merged", charts.target.pk)
    assert client.get(f"/api/v1/ehr/patients/{charts.target.pk}/").json()["merged_into"] is None
    again = _merge_api(client, charts.source.pk, body | {"source_version": 2})
    assert (again.status_code, again.json()["code"], again.json()["merged_into"]) == (
        409,
        "patient_already_merged",
        charts.target.pk,
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"reason": REASON, "source_version": 1, "target_version": 1}, 400, "invalid"),  # no "into"
        ({"into": "x", "reason": REASON, "source_version": 1, "target_version": 1}, 400, "invalid"),
        ({"into": 0, "reason": REASON, "source_version": 1, "target_version": 1}, 400, "invalid"),
        ({"into": None, "reason": "", "source_version": 1, "target_version": 1}, 400, "invalid"),
        ({"into": "TARGET", "reason": REASON, "source_version": 1, "target_version": 1, "force": True}, 400, "invalid"),
        ({"into": "SOURCE", "reason": REASON, "source_version": 1, "target_version": 1}, 400, "merge_same_patient"),
        ({"into": "TARGET", "reason": REASON, "source_version": 3, "target_version": 1}, 412, "version_conflict"),
        ({"into": 987654, "reason": REASON, "source_version": 1, "target_version": 1}, 404, "not_found"),
    ],
)
def test_api_refusals_in_the_shared_error_shape_write_nothing(charts, body, status, code) -> None:
    client = _client("admin-test")
    names = {"TARGET": charts.target.pk, "SOURCE": charts.source.pk}
    body = {k: names.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    before = state()
    response = _merge_api(client, charts.source.pk, body)
    assert (response.status_code, response.json()["code"]) == (status, code), response.content
    if status == 412:
        assert (response.json()["record"], response.json()["current_version"]) == ("source", 1)
    assert state() == before


def test_api_refuses_merging_two_portal_accounts_and_other_roles(charts, admin_user, doctor) -> None:
    with_login = PatientFactory(registrar=admin_user, user=UserFactory(username="pt-other", roles=["patient"]))
    admin = _client("admin-test")
    body = {"into": with_login.pk, "reason": REASON, "source_version": 1, "target_version": 1}
    response = _merge_api(admin, charts.source.pk, body)
    assert (response.status_code, response.json()["code"]) == (409, "merge_portal_account_conflict")
    refused = _merge_api(_client("dr-test"), charts.source.pk, body | {"into": charts.target.pk})
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert Patient.objects.get(pk=charts.source.pk).status == "active"
