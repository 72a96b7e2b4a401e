"""The Django admin site over the patient record, driven through Django's test client as a signed-in superuser.

Patient, clinical, document, care-team and break-the-glass rows can be looked at but never added, changed or
deleted there; every list page and every detail page that shows them writes one ``read`` audit row (channel and
purpose ``admin``) in the page's transaction, so a failed audit write fails the page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from ehr.models import (
    AllergyIntolerance,
    AuditEvent,
    BreakGlassGrant,
    CareTeamMember,
    ClinicalNote,
    Condition,
    DocumentReference,
    Encounter,
    MedicationStatement,
    NoteAddendum,
    Observation,
    Patient,
    User,
)
from ehr.services.access import break_glass_grant
from ehr.services.clinical import (
    allergy_add,
    clinical_note_add,
    clinical_note_addendum,
    clinical_note_sign,
    condition_add,
    medication_add,
    observation_record,
)
from ehr.services.documents import IncomingDocument, document_upload
from tests.factories import EncounterFactory, PatientFactory, UserFactory, care_team_join

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%%EOF\n"
PHI_MODELS = (
    Patient,
    Encounter,
    ClinicalNote,
    NoteAddendum,
    Condition,
    AllergyIntolerance,
    MedicationStatement,
    Observation,
    DocumentReference,
    CareTeamMember,
    BreakGlassGrant,
)


@dataclass
class World:
    patient: Patient
    rows: dict[type[Any], Any]


@pytest.fixture
def world(doctor: Any, settings: Any, tmp_path: Path) -> World:
    settings.DOCUMENT_STORAGE_ROOT = tmp_path / "documents"
    patient = PatientFactory(given_name="Ada", family_name="Quill")
    care_team_join(patient=patient, member=doctor)
    encounter = EncounterFactory(patient=patient, practitioner=doctor)
    note = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"subjective": "cough"})
    clinical_note_sign(actor=doctor, note_id=note.id, expected_version=1)
    clinical_note_addendum(actor=doctor, note_id=note.id, text="No fever.")
    condition_add(actor=doctor, patient_id=patient.pk, code="I10")
    allergy_add(actor=doctor, patient_id=patient.pk, substance_text="Peanut", criticality="high")
    medication_add(actor=doctor, patient_id=patient.pk, medication_text="Ibuprofen")
    observation_record(actor=doctor, patient_id=patient.pk, code="8867-4", value=70)
    incoming = IncomingDocument(filename="lab.pdf", declared_type="application/pdf")
    incoming.write(PDF)
    document_upload(actor=doctor, patient_id=patient.pk, incoming=incoming, type="lab-report", title="Panel")
    outsider = UserFactory(username="dr-glass", roles=["practitioner"])
    break_glass_grant(actor=outsider, patient_id=patient.pk, reason="Unconscious in the ER, no team reachable")
    rows = {model: model._default_manager.order_by("pk").first() for model in PHI_MODELS}
    rows[Patient] = patient
    return World(patient=patient, rows=rows)


@pytest.fixture
def superuser() -> User:
    return User.objects.create_superuser("root-admin", "root@example.test", "correct-horse-battery-staple")


@pytest.fixture
def site(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def url(model: type[Any], view: str, pk: object = None) -> str:
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    return {"changelist": base, "add": f"{base}add/", "change": f"{base}{pk}/change/", "delete": f"{base}{pk}/delete/"}[
        view
    ]


def new_audit_rows(after: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=after).order_by("id"))


def last_audit_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def patient_id_of(row: Any) -> int:
    return int(
        row.pk if isinstance(row, Patient) else row.note.patient_id if isinstance(row, NoteAddendum) else row.patient_id
    )


@pytest.mark.parametrize("model", PHI_MODELS, ids=lambda m: m.__name__)
def test_detail_page_writes_one_read_row_naming_the_row_and_its_patient(site, world, superuser, model) -> None:
    row = world.rows[model]
    marker = last_audit_id()
    response = site.get(url(model, "change", row.pk))
    assert response.status_code == 200
    (audit,) = new_audit_rows(marker)
    assert (audit.action, audit.entity_type, audit.entity_id, audit.patient_id) == (
        "read", model.__name__, str(row.pk), world.patient.pk
    )  # fmt: skip
    assert (audit.purpose, audit.channel, audit.outcome, audit.actor_id) == ("admin", "admin", "success", superuser.pk)
    assert audit.detail == {"view": "detail"}
    assert patient_id_of(row) == world.patient.pk


@pytest.mark.parametrize("model", PHI_MODELS, ids=lambda m: m.__name__)
def test_list_page_writes_one_read_row_naming_the_patients_shown(site, world, model) -> None:
    marker = last_audit_id()
    response = site.get(url(model, "changelist"))
    assert response.status_code == 200
    (audit,) = new_audit_rows(marker)
    shown = model._default_manager.count()
    assert (audit.action, audit.entity_type, audit.entity_id, audit.patient_id) == ("read", model.__name__, "", None)
    assert (audit.purpose, audit.channel) == ("admin", "admin")
    assert audit.detail["view"] == "changelist"
    assert audit.detail["results"] == shown >= 1
    assert world.patient.pk in audit.detail["patient_ids"]


def test_list_audit_names_filters_but_never_the_search_text(site, world) -> None:
    marker = last_audit_id()
    response = site.get(url(Patient, "changelist"), {"q": world.patient.mrn, "status__exact": "active"})
    assert response.status_code == 200
    assert world.patient.mrn in response.content.decode()
    (audit,) = new_audit_rows(marker)
    assert audit.detail == {
        "view": "changelist",
        "results": 1,
        "patient_ids": [world.patient.pk],
        "filters": ["search", "status__exact"],
    }
    assert world.patient.mrn not in str(audit.detail)


def test_identifier_tokens_and_storage_keys_are_not_shown(site, world) -> None:
    page = site.get(url(Patient, "change", world.patient.pk)).content.decode()
    assert "national_id" not in page
    assert "insurance_member_id" not in page
    document = world.rows[DocumentReference]
    page = site.get(url(DocumentReference, "change", document.pk)).content.decode()
    assert document.storage_key not in page


@pytest.mark.parametrize("model", PHI_MODELS, ids=lambda m: m.__name__)
def test_phi_rows_cannot_be_added_changed_or_deleted_through_the_admin(site, world, model) -> None:
    row = world.rows[model]
    before = {f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields}
    count = model._default_manager.count()
    marker = last_audit_id()
    assert site.get(url(model, "add")).status_code == 403
    assert site.post(url(model, "add"), {"reason": "x"}).status_code == 403
    assert site.post(url(model, "change", row.pk), {"reason": "changed in admin"}).status_code == 403
    assert site.get(url(model, "delete", row.pk)).status_code == 403
    assert site.post(url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert site.post(
        url(model, "changelist"), {"action": "delete_selected", "_selected_action": [row.pk]}
    ).status_code in (
        200,
        302,
    )
    assert model._default_manager.count() == count
    row.refresh_from_db()
    assert {f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields} == before
    assert not AuditEvent.objects.filter(id__gt=marker).exclude(action="read").exists()
    page = site.get(url(model, "change", row.pk)).content.decode()
    assert 'name="_save"' not in page  # a view page, not a form


def test_missing_id_redirects_without_an_audit_row(site, world) -> None:
    marker = last_audit_id()
    response = site.get(url(Observation, "change", 987654321))
    assert response.status_code == 302
    assert new_audit_rows(marker) == []


def test_audit_log_is_shown_read_only_and_unaudited(site, world) -> None:
    event = AuditEvent.objects.order_by("id").first()
    assert event is not None
    marker = last_audit_id()
    assert site.get(url(AuditEvent, "changelist")).status_code == 200
    assert site.get(url(AuditEvent, "change", event.pk)).status_code == 200
    assert site.post(url(AuditEvent, "change", event.pk), {"purpose": "x"}).status_code == 403
    assert site.get(url(AuditEvent, "delete", event.pk)).status_code == 403
    assert new_audit_rows(marker) == []


def test_a_failed_audit_write_fails_the_page(world, superuser) -> None:
    """PostgreSQL refuses the audit insert (a trigger installed for this test only, rolled back with it): the
    detail page errors instead of showing the record unaudited."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit store unavailable'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON ehr_auditevent "
            "FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()"
        )
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    marker = last_audit_id()
    assert client.get(url(Patient, "change", world.patient.pk)).status_code == 500
    assert client.get(url(Patient, "changelist")).status_code == 500
    assert new_audit_rows(marker) == []
