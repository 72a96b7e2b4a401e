"""Patient services and selectors against the real PostgreSQL: registration, duplicates, versions, history, search."""

from __future__ import annotations

import datetime
import re

import pytest
import time_machine
from django.db import DatabaseError, connection, transaction

from ehr.errors import AccessDenied, DuplicateSuspected, InvalidPatientData, PatientNotFound, VersionConflict
from ehr.models import AuditEvent, Patient, PatientVersion
from ehr.selectors import patient_get, patient_history, patient_search
from ehr.services.patients import (
    PatientInput,
    patient_mark_entered_in_error,
    patient_register,
    patient_update,
)
from tests.factories import CareTeamMemberFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


def person(**overrides: object) -> PatientInput:
    fields: dict[str, object] = {
        "given_name": "Ada",
        "family_name": "Lovelace",
        "birth_date": datetime.date(1985, 12, 10),
        "sex": "female",
        "phone": "+44 20 7946-0018",
        "email": "ada@example.test",
        "country": "gb",
        "national_id": "QQ 12 34 56 C",
    }
    fields.update(overrides)
    return PatientInput(**fields)  # type: ignore[arg-type]


def audit_rows() -> list[tuple[str, str, str, int | None]]:
    return list(AuditEvent.objects.order_by("id").values_list("action", "entity_type", "outcome", "patient_id"))


def test_register_assigns_mrn_version_one_history_and_one_audit_row(doctor) -> None:
    patient = patient_register(actor=doctor, data=person())

    assert re.fullmatch(r"MRN\d{8}", patient.mrn)
    assert patient.version == 1
    assert patient.phone == "+442079460018"  # stored normalised
    assert patient.country == "GB"
    history = list(PatientVersion.objects.filter(patient=patient))
    assert [(v.version, v.actor_id, v.reason) for v in history] == [(1, doctor.pk, "registration")]
    assert "given_name" in history[0].changed_fields
    assert "national_id" in history[0].changed_fields
    assert audit_rows() == [("create", "Patient", "success", patient.pk)]


def test_mrns_come_from_the_sequence_and_never_repeat(doctor) -> None:
    first = PatientFactory(registrar=doctor)
    second = PatientFactory(registrar=doctor)
    assert int(second.mrn[3:]) > int(first.mrn[3:])


def test_history_snapshot_holds_identifier_hash_and_mask_never_plaintext_or_ciphertext(doctor) -> None:
    patient = patient_register(actor=doctor, data=person())
    snapshot = PatientVersion.objects.get(patient=patient).data
    text = str(snapshot)
    assert "QQ123456C" not in text
    assert patient.national_id_encrypted not in text
    assert snapshot["national_id"] == {"hash": patient.national_id_hash, "masked": "•••• 456C"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"given_name": "Adah", "family_name": "Lovelace", "phone": "", "email": ""},  # fuzzy name
        {"given_name": "Augusta", "family_name": "King", "phone": "+442079460018", "email": ""},  # same phone
        {"given_name": "Augusta", "family_name": "King", "phone": "", "email": "ADA@example.test"},  # same email
    ],
    ids=["fuzzy-name", "phone", "email"],
)
def test_duplicate_suspected_with_same_birth_date(doctor, overrides: dict[str, object]) -> None:
    existing = patient_register(actor=doctor, data=person())
    with pytest.raises(DuplicateSuspected) as caught:
        patient_register(actor=doctor, data=person(national_id="", **overrides))
    assert caught.value.candidate_ids == [existing.pk]
    assert Patient.objects.count() == 1
    assert len(audit_rows()) == 1  # only the first registration


def test_duplicate_override_registers_anyway(doctor) -> None:
    patient_register(actor=doctor, data=person())
    second = patient_register(actor=doctor, data=person(given_name="Adah"), allow_duplicate=True)
    assert Patient.objects.count() == 2
    assert AuditEvent.objects.get(patient_id=second.pk).detail["duplicate_override"] is True


def test_no_duplicate_for_other_birth_date_or_entered_in_error_records(doctor) -> None:
    first = patient_register(actor=doctor, data=person())
    CareTeamMemberFactory(patient=first, member=doctor)  # access rule: clinicians reach patients in their care
    patient_register(actor=doctor, data=person(birth_date=datetime.date(1986, 12, 10)))
    patient_mark_entered_in_error(actor=doctor, patient_id=first.pk, expected_version=1, reason="test record")
    # same person as ``first`` again: ``first`` is entered in error, the 1986 one has another birth date
    patient_register(actor=doctor, data=person())
    assert Patient.objects.count() == 3


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"birth_date": datetime.date(2026, 12, 1)}, "birth_date"),
        ({"birth_date": datetime.date(1899, 12, 31)}, "birth_date"),
        ({"sex": "M"}, "sex"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"country": "Portugal"}, "country"),
        ({"preferred_language": "english please"}, "preferred_language"),
        ({"given_name": "  "}, "given_name"),
        ({"national_id": "#!"}, "national_id"),
    ],
)
@time_machine.travel(datetime.datetime(2026, 11, 29, 12, tzinfo=datetime.UTC), tick=False)
def test_invalid_registration_names_the_field_and_writes_nothing(doctor, overrides: dict[str, object], field) -> None:
    with pytest.raises(InvalidPatientData) as caught:
        patient_register(actor=doctor, data=person(**overrides))
    assert list(caught.value.fields) == [field]
    assert Patient.objects.count() == 0
    assert PatientVersion.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_update_creates_a_version_with_changed_fields_and_an_audit_row(doctor) -> None:
    patient = patient_register(actor=doctor, data=person())
    CareTeamMemberFactory(patient=patient, member=doctor)  # access rule: clinicians reach patients in their care
    updated = patient_update(
        actor=doctor,
        patient_id=patient.pk,
        expected_version=1,
        changes={"phone": "+44 20 0000 0000", "city": "London", "email": "ada@example.test"},
        reason="moved",
    )
    assert updated.version == 2
    v2 = PatientVersion.objects.get(patient=patient, version=2)
    assert v2.changed_fields == ["phone", "city"]  # email unchanged
    assert v2.reason == "moved"
    assert audit_rows()[-1] == ("update", "Patient", "success", patient.pk)


def test_stale_update_raises_version_conflict_and_writes_nothing(doctor) -> None:
    patient = patient_register(actor=doctor, data=person())
    CareTeamMemberFactory(patient=patient, member=doctor)  # access rule: clinicians reach patients in their care
    patient_update(actor=doctor, patient_id=patient.pk, expected_version=1, changes={"city": "Paris"}, reason="a")
    before = audit_rows()
    with pytest.raises(VersionConflict) as caught:
        patient_update(actor=doctor, patient_id=patient.pk, expected_version=1, changes={"city": "Rome"}, reason="b")
    assert caught.value.current_version == 2
    patient.refresh_from_db()
    assert (patient.city, patient.version) == ("Paris", 2)
    assert PatientVersion.objects.filter(patient=patient).count() == 2
    assert audit_rows() == before


def test_update_rejects_unknown_and_read_only_fields(doctor, admin_user) -> None:
    patient = patient_register(actor=doctor, data=person())
    CareTeamMemberFactory(patient=patient, member=doctor)  # access rule: clinicians reach patients in their care
    with pytest.raises(InvalidPatientData) as caught:
        patient_update(
            actor=doctor, patient_id=patient.pk, expected_version=1, changes={"mrn": "X", "shoe": 1}, reason="x"
        )
    assert set(caught.value.fields) == {"mrn", "shoe"}
    with pytest.raises(PatientNotFound):
        # an admin (demographics for any record): a clinician would get BreakGlassRequired for an unknown id
        patient_update(actor=admin_user, patient_id=999999, expected_version=1, changes={"city": "X"}, reason="x")


def test_entered_in_error_is_a_new_version_and_nothing_is_deleted(doctor) -> None:
    patient = patient_register(actor=doctor, data=person())
    CareTeamMemberFactory(patient=patient, member=doctor)  # access rule: clinicians reach patients in their care
    marked = patient_mark_entered_in_error(actor=doctor, patient_id=patient.pk, expected_version=1, reason="dup")
    assert (marked.status, marked.version) == ("entered-in-error", 2)
    assert Patient.objects.filter(pk=patient.pk).exists()
    with pytest.raises(InvalidPatientData):
        patient_update(actor=doctor, patient_id=patient.pk, expected_version=2, changes={"city": "X"}, reason="x")
    assert audit_rows()[-1] == ("entered_in_error", "Patient", "success", patient.pk)


def test_history_returns_every_version_with_a_field_diff(doctor, nurse) -> None:
    patient = patient_register(actor=doctor, data=person())
    for clinician in (doctor, nurse):  # access rule: clinicians reach patients in their care
        CareTeamMemberFactory(patient=patient, member=clinician)
    patient_update(
        actor=nurse,
        patient_id=patient.pk,
        expected_version=1,
        changes={"family_name": "King", "national_id": "AB 99 88 77 D"},
        reason="married; new national id",
    )
    entries = patient_history(actor=doctor, patient_id=patient.pk)
    assert [e.version for e in entries] == [1, 2]
    assert entries[1].actor_display_name == nurse.display_name
    assert entries[1].reason == "married; new national id"
    assert entries[1].changed_fields == ["family_name", "national_id"]
    diff = {(c.field, c.before, c.after) for c in entries[1].diff}
    assert diff == {("family_name", "Lovelace", "King"), ("national_id", "•••• 456C", "•••• 877D")}
    assert audit_rows()[-1] == ("read", "Patient", "success", patient.pk)


@pytest.mark.parametrize(
    "sql",
    ["UPDATE ehr_patientversion SET reason = 'rewritten'", "DELETE FROM ehr_patientversion"],
)
def test_patient_history_rejects_update_and_delete_even_in_raw_sql(doctor, sql: str) -> None:
    patient = patient_register(actor=doctor, data=person())
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert PatientVersion.objects.get(patient=patient).reason == "registration"


def test_database_refuses_version_below_one_and_unknown_codes(doctor) -> None:
    patient = patient_register(actor=doctor, data=person())
    for sql in (
        "UPDATE ehr_patient SET version = 0",
        "UPDATE ehr_patient SET status = 'deleted'",
        "UPDATE ehr_patient SET sex = 'M'",
        "UPDATE ehr_patient SET mrn = '12345'",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    patient.refresh_from_db()
    assert patient.version == 1


def test_search_by_fuzzy_name_birth_date_mrn_and_identifier(doctor) -> None:
    ada = patient_register(actor=doctor, data=person())
    PatientFactory(registrar=doctor, given_name="Grace", family_name="Hopper", national_id="X1234567")
    PatientFactory(registrar=doctor, given_name="Alan", family_name="Turing")

    assert [p.pk for p in patient_search(actor=doctor, query="lovelace")] == [ada.pk]
    assert [p.pk for p in patient_search(actor=doctor, query="Lovelase")] == [ada.pk]  # typo: trigram
    assert [p.pk for p in patient_search(actor=doctor, query="ada love")] == [ada.pk]
    assert [p.pk for p in patient_search(actor=doctor, birth_date=datetime.date(1985, 12, 10))] == [ada.pk]
    assert [p.pk for p in patient_search(actor=doctor, mrn=ada.mrn.lower())] == [ada.pk]
    assert [p.pk for p in patient_search(actor=doctor, identifier="qq-123456-c")] == [ada.pk]
    assert patient_search(actor=doctor, identifier="QQ123456D") == []
    searches = AuditEvent.objects.filter(entity_type="PatientSearch")
    assert searches.count() == 7
    assert all(set(row.detail) == {"results"} for row in searches)  # counts only, never the query


def test_patient_user_reads_only_their_own_record_and_denials_are_audited(doctor, patient) -> None:
    own = PatientFactory(registrar=doctor, user=patient)
    other = PatientFactory(registrar=doctor)
    start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    assert patient_get(actor=patient, patient_id=own.pk).pk == own.pk
    with pytest.raises(AccessDenied):
        patient_get(actor=patient, patient_id=other.pk)
    with pytest.raises(AccessDenied):
        patient_get(actor=patient, patient_id=999999)  # non-existent ids are denied alike: nothing to probe
    with pytest.raises(AccessDenied):
        patient_search(actor=patient, query="anyone")
    with pytest.raises(AccessDenied):
        patient_register(actor=patient, data=person())

    rows = list(
        AuditEvent.objects.filter(id__gt=start)
        .order_by("id")
        .values_list("action", "entity_type", "outcome", "patient_id")
    )
    assert rows == [
        ("read", "Patient", "success", own.pk),
        ("read", "Patient", "denied", other.pk),
        ("read", "Patient", "denied", 999999),
        ("read", "PatientSearch", "denied", None),
        ("create", "Patient", "denied", None),
    ]


def test_portal_account_links_once(doctor, patient) -> None:
    PatientFactory(registrar=doctor, user=patient)
    with pytest.raises(InvalidPatientData) as caught:
        PatientFactory(registrar=doctor, user=patient)
    assert list(caught.value.fields) == ["user_id"]
    staff = UserFactory(username="not-a-patient", roles=["nurse"], organization=doctor.organization)
    with pytest.raises(InvalidPatientData):
        PatientFactory(registrar=doctor, user=staff)
