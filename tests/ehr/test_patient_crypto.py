"""Identifier encryption at rest: round trip, no plaintext in the row, keyed hash, key rotation."""

from __future__ import annotations

import datetime

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection

from ehr import crypto
from ehr.models import AuditEvent, Patient, PatientVersion
from ehr.selectors import patient_identifiers_get, patient_search
from tests.factories import CareTeamMemberFactory, PatientFactory

pytestmark = pytest.mark.django_db


def test_round_trip_normalises_and_tokens_differ_each_time() -> None:
    first = crypto.encrypt_identifier("ab-12 34")
    second = crypto.encrypt_identifier("AB1234")
    assert first != second  # random IV: equal values do not give equal tokens
    assert crypto.decrypt_identifier(first) == crypto.decrypt_identifier(second) == "AB1234"
    assert crypto.identifier_hash("ab-12 34") == crypto.identifier_hash("AB1234")
    assert crypto.identifier_hash("AB1234") != crypto.identifier_hash("AB1235")


def test_hash_depends_on_the_search_key(settings) -> None:  # type: ignore[no-untyped-def]
    before = crypto.identifier_hash("AB1234")
    settings.SEARCH_HASH_KEY = "another-key"
    assert crypto.identifier_hash("AB1234") != before


def test_database_row_holds_neither_plaintext_nor_unkeyed_hash(doctor) -> None:
    patient = PatientFactory(registrar=doctor, national_id="PT-123456789", insurance_member_id="INS 777 888")
    CareTeamMemberFactory(patient=patient, member=doctor)  # access rule: clinicians reach patients in their care
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(p)::text FROM ehr_patient p WHERE id = %s", [patient.pk])
        (row,) = cursor.fetchone()
        cursor.execute("SELECT data::text FROM ehr_patientversion WHERE patient_id = %s", [patient.pk])
        (history,) = cursor.fetchone()
    for text in (row, history):
        assert "123456789" not in text
        assert "777888" not in text
    assert patient.national_id_encrypted not in history
    identifiers = patient_identifiers_get(actor=doctor, patient_id=patient.pk, purpose="treatment")
    assert (identifiers.national_id, identifiers.insurance_member_id) == ("PT123456789", "INS777888")
    assert AuditEvent.objects.filter(patient_id=patient.pk, action="read", purpose="treatment").count() == 1


def test_search_by_identifier_uses_the_keyed_hash(doctor) -> None:
    wanted = PatientFactory(registrar=doctor, insurance_member_id="INS-0042")
    PatientFactory(registrar=doctor, insurance_member_id="INS-0043")
    assert [p.pk for p in patient_search(actor=doctor, identifier="ins 0042")] == [wanted.pk]


def test_rotation_re_encrypts_under_the_new_key_so_the_old_key_can_go(settings, doctor) -> None:  # type: ignore[no-untyped-def]
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    with_ids = [
        PatientFactory(registrar=doctor, national_id=f"NID{i:05d}", insurance_member_id=f"INS{i:05d}") for i in range(3)
    ]
    without = PatientFactory(registrar=doctor)
    old_tokens = dict(Patient.objects.values_list("id", "national_id_encrypted"))
    versions_before = PatientVersion.objects.count()

    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_field_keys", batch_size=2)  # several batches

    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    for i, patient in enumerate(with_ids):
        patient.refresh_from_db()
        assert patient.national_id_encrypted != old_tokens[patient.pk]
        assert crypto.decrypt_identifier(patient.national_id_encrypted) == f"NID{i:05d}"
        assert crypto.decrypt_identifier(patient.insurance_member_id_encrypted) == f"INS{i:05d}"
        assert patient.version == 1  # not a clinical change
    with pytest.raises(InvalidToken):
        crypto.decrypt_identifier(old_tokens[with_ids[0].pk])
    without.refresh_from_db()
    assert without.national_id_encrypted == ""
    assert PatientVersion.objects.count() == versions_before
    rotation = AuditEvent.objects.get(purpose="key_rotation")
    assert (rotation.action, rotation.entity_type, rotation.detail) == ("update", "Patient", {"count": 3})

    # idempotent: a second run finds nothing to do
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    tokens = dict(Patient.objects.values_list("id", "national_id_encrypted"))
    call_command("rotate_field_keys")
    assert dict(Patient.objects.values_list("id", "national_id_encrypted")) == tokens
    counts = [e.detail["count"] for e in AuditEvent.objects.filter(purpose="key_rotation").order_by("id")]
    assert counts == [3, 0]


def test_masking_shows_only_the_last_four() -> None:
    assert crypto.mask_identifier("PT-123456789") == "•••• 6789"
    assert crypto.mask_identifier("AB12") == "•••• 12"


def test_birth_dates_are_dates_not_strings_after_registration(doctor) -> None:
    patient = PatientFactory(registrar=doctor, birth_date="1970-01-02")
    patient.refresh_from_db()
    assert patient.birth_date == datetime.date(1970, 1, 2)
