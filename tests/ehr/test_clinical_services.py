"""Clinical-record services and selectors against the real PostgreSQL: encounters, SOAP notes (draft, autosave,
sign, addenda, immutability), conditions (ICD-10-CM), observations (LOINC/UCUM bounds), allergies, medications,
versions and history, entered-in-error, access and audit rows."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from ehr import selectors
from ehr.codes import icd10cm_lookup
from ehr.errors import (
    AccessDenied,
    ClinicalRecordNotFound,
    DraftConflict,
    InvalidClinicalData,
    InvalidTransition,
    NoteSigned,
    NotNoteAuthor,
    VersionConflict,
)
from ehr.models import (
    AuditEvent,
    ClinicalNote,
    ClinicalNoteVersion,
    Condition,
    ConditionVersion,
    Encounter,
    NoteAddendum,
    Observation,
    ObservationVersion,
)
from ehr.services.clinical import (
    allergy_add,
    allergy_mark_entered_in_error,
    allergy_update,
    clinical_note_add,
    clinical_note_addendum,
    clinical_note_save_draft,
    clinical_note_sign,
    condition_add,
    condition_mark_entered_in_error,
    condition_update,
    encounter_close,
    encounter_open,
    medication_add,
    medication_mark_entered_in_error,
    medication_update,
    observation_amend,
    observation_mark_entered_in_error,
    observation_record,
)
from tests.factories import EncounterFactory, LocationFactory, PatientFactory, UserFactory, care_team_join

pytestmark = pytest.mark.django_db


@pytest.fixture
def chart(doctor):  # type: ignore[no-untyped-def]
    """A patient whose care team includes the test doctor (holds under the interim and the care-team policy)."""
    record = PatientFactory()
    care_team_join(patient=record, member=doctor)
    return record


@pytest.fixture
def encounter(chart, doctor):  # type: ignore[no-untyped-def]
    return EncounterFactory(patient=chart, practitioner=doctor)


def LATER() -> datetime.datetime:  # noqa: N802 -- reads as a constant
    """A whole second in the near future: frozen time must stay after the care-team membership began."""
    return (timezone.now() + datetime.timedelta(hours=1)).replace(microsecond=0)


def audit_rows(patient_id: int) -> list[tuple[str, str, str]]:
    return list(
        AuditEvent.objects.filter(patient_id=patient_id)
        .exclude(entity_type__in=["Patient", "CareTeam"])
        .order_by("id")
        .values_list("action", "entity_type", "outcome")
    )


# --- Encounters ---------------------------------------------------------------------------------------------------


def test_encounter_open_starts_in_progress_with_version_history_and_audit(chart, doctor, location) -> None:
    start = LATER()
    with time_machine.travel(start, tick=False):
        ref = encounter_open(
            actor=doctor, patient_id=chart.pk, location_id=location.pk, modality="in-person", reason="cough"
        )
    assert (ref.status, ref.version, ref.modality, ref.practitioner_id) == ("in-progress", 1, "in-person", doctor.pk)
    assert ref.period_start == start
    assert ref.period_end is None
    assert audit_rows(chart.pk) == [("create", "Encounter", "success")]
    assert [e.version for e in selectors.clinical_record_history(actor=doctor, kind="Encounter", record_id=ref.id)] == [
        1
    ]


def test_encounter_close_records_end_and_duration(chart, doctor, location) -> None:
    start = LATER()
    with time_machine.travel(start, tick=False):
        ref = encounter_open(actor=doctor, patient_id=chart.pk, location_id=location.pk, modality="virtual", reason="")
    with time_machine.travel(start + datetime.timedelta(minutes=17, seconds=5), tick=False):
        closed = encounter_close(actor=doctor, encounter_id=ref.id)
    assert (closed.status, closed.duration_seconds, closed.version) == ("finished", 1025, 2)
    assert closed.period_end == start + datetime.timedelta(minutes=17, seconds=5)
    history = selectors.clinical_record_history(actor=doctor, kind="Encounter", record_id=ref.id)
    assert {c.field for c in history[1].diff} == {"status", "period_end", "duration_seconds"}


def test_closing_twice_is_an_invalid_transition_and_writes_nothing(encounter, doctor) -> None:
    encounter_close(actor=doctor, encounter_id=encounter.id)
    with pytest.raises(InvalidTransition) as err:
        encounter_close(actor=doctor, encounter_id=encounter.id)
    assert (err.value.current, err.value.target) == ("finished", "finished")
    assert Encounter.objects.get(pk=encounter.id).version == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"modality": "telepathy"}, "modality"),
        ({"location_id": "x"}, "location_id"),
        ({"reason": "x" * 1001}, "reason"),
    ],
)
def test_encounter_open_rejects_bad_input(chart, doctor, location, changes, field) -> None:
    args = {"modality": "virtual", "location_id": location.pk, "reason": ""} | changes
    with pytest.raises(InvalidClinicalData) as err:
        encounter_open(actor=doctor, patient_id=chart.pk, **args)
    assert field in err.value.fields
    assert not Encounter.objects.exists()


def test_encounter_open_only_at_a_location_the_actor_works_at(chart, doctor, organization) -> None:
    elsewhere = LocationFactory(organization=organization)
    with pytest.raises(InvalidClinicalData) as err:
        encounter_open(actor=doctor, patient_id=chart.pk, location_id=elsewhere.pk, modality="virtual")
    assert err.value.fields == {"location_id": ["You do not work at this location."]}


# --- Notes --------------------------------------------------------------------------------------------------------


def test_note_draft_autosave_sign_and_addendum(encounter, doctor, chart) -> None:
    note = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"subjective": "Cough 3 days"})
    assert (note.status, note.version, note.subjective) == ("draft", 1, "Cough 3 days")
    saved = clinical_note_save_draft(
        actor=doctor, note_id=note.id, expected_version=1, sections={"assessment": "  viral URTI \n"}
    )
    assert (saved.version, saved.assessment, saved.subjective) == (2, "  viral URTI \n", "Cough 3 days")
    same = clinical_note_save_draft(
        actor=doctor, note_id=note.id, expected_version=2, sections={"subjective": "Cough 3 days"}
    )
    assert same.version == 2  # nothing changed: no version
    signed = clinical_note_sign(actor=doctor, note_id=note.id, expected_version=2)
    assert (signed.status, signed.version, signed.signed_by_id) == ("signed", 3, doctor.pk)
    amended = clinical_note_addendum(actor=doctor, note_id=note.id, text="Also: no fever.")
    assert (amended.status, amended.version) == ("amended", 4)
    assert [a.text for a in amended.addenda] == ["Also: no fever."]
    again = clinical_note_addendum(actor=doctor, note_id=note.id, text="Plan reviewed.")
    assert again.version == 4
    assert len(again.addenda) == 2
    assert ClinicalNote.objects.get(pk=note.id).subjective == "Cough 3 days"
    assert audit_rows(chart.pk)[1:] == [
        ("create", "ClinicalNote", "success"),
        ("update", "ClinicalNote", "success"),
        ("update", "ClinicalNote", "success"),
        ("update", "ClinicalNote", "success"),
        ("create", "NoteAddendum", "success"),
        ("create", "NoteAddendum", "success"),
    ]


def test_stale_draft_save_returns_current_content_and_writes_nothing(encounter, doctor) -> None:
    note = clinical_note_add(actor=doctor, encounter_id=encounter.id)
    clinical_note_save_draft(actor=doctor, note_id=note.id, expected_version=1, sections={"plan": "tab A"})
    with pytest.raises(DraftConflict) as err:
        clinical_note_save_draft(actor=doctor, note_id=note.id, expected_version=1, sections={"plan": "tab B"})
    assert err.value.current_version == 2
    assert err.value.current == {"subjective": "", "objective": "", "assessment": "", "plan": "tab A"}
    assert ClinicalNoteVersion.objects.filter(record_id=note.id).count() == 2


def test_signed_note_cannot_be_edited_or_signed_again(encounter, doctor) -> None:
    note = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"plan": "rest"})
    clinical_note_sign(actor=doctor, note_id=note.id, expected_version=1)
    with pytest.raises(NoteSigned):
        clinical_note_save_draft(actor=doctor, note_id=note.id, expected_version=2, sections={"plan": "changed"})
    with pytest.raises(InvalidTransition):
        clinical_note_sign(actor=doctor, note_id=note.id, expected_version=2)
    assert ClinicalNote.objects.get(pk=note.id).plan == "rest"


def test_only_the_author_edits_or_signs_and_the_attempt_is_audited(encounter, doctor, doctor2, chart) -> None:
    care_team_join(patient=chart, member=doctor2, role="specialist")
    note = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"plan": "x"})
    with pytest.raises(NotNoteAuthor):
        clinical_note_save_draft(actor=doctor2, note_id=note.id, expected_version=1, sections={"plan": "y"})
    with pytest.raises(NotNoteAuthor):
        clinical_note_sign(actor=doctor2, note_id=note.id, expected_version=1)
    assert AuditEvent.objects.filter(actor=doctor2, outcome="denied", entity_type="ClinicalNote").count() == 2
    assert ClinicalNote.objects.get(pk=note.id).status == "draft"


def test_nurse_may_write_notes_but_not_sign(encounter, chart, nurse) -> None:
    care_team_join(patient=chart, member=nurse, role="nurse")
    note = clinical_note_add(actor=nurse, encounter_id=encounter.id, sections={"objective": "BP ok"})
    with pytest.raises(AccessDenied):
        clinical_note_sign(actor=nurse, note_id=note.id, expected_version=1)


def test_empty_note_cannot_be_signed_and_drafts_take_no_addenda(encounter, doctor) -> None:
    note = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"plan": "   "})
    with pytest.raises(InvalidClinicalData):
        clinical_note_sign(actor=doctor, note_id=note.id, expected_version=1)
    with pytest.raises(InvalidTransition):
        clinical_note_addendum(actor=doctor, note_id=note.id, text="addendum to a draft")
    assert not NoteAddendum.objects.exists()


@pytest.mark.parametrize("sections", [{"diagnosis": "x"}, {"plan": 5}, {"plan": "x" * 20_001}])
def test_note_sections_are_validated(encounter, doctor, sections) -> None:
    with pytest.raises(InvalidClinicalData):
        clinical_note_add(actor=doctor, encounter_id=encounter.id, sections=sections)
    assert not ClinicalNote.objects.exists()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ehr_clinicalnote SET plan = 'rewritten' WHERE id = %s",
        "UPDATE ehr_clinicalnote SET status = 'draft' WHERE id = %s",
        "UPDATE ehr_clinicalnote SET author_id = author_id + 0, signed_at = now() WHERE id = %s",
        "DELETE FROM ehr_clinicalnote WHERE id = %s",
    ],
)
def test_signed_note_is_immutable_even_in_raw_sql(encounter, doctor, sql) -> None:
    note = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"plan": "rest"})
    clinical_note_sign(actor=doctor, note_id=note.id, expected_version=1)
    with pytest.raises(DatabaseError, match=r"immutable|never deleted"), transaction.atomic(), connection.cursor() as c:
        c.execute(sql, [note.id])
    row = ClinicalNote.objects.get(pk=note.id)
    assert (row.plan, row.status) == ("rest", "signed")


def test_draft_note_may_change_in_sql_but_history_and_addenda_are_append_only(encounter, doctor) -> None:
    note = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"plan": "rest"})
    with connection.cursor() as c:
        c.execute("UPDATE ehr_clinicalnote SET plan = 'draft edit' WHERE id = %s", [note.id])
    clinical_note_sign(actor=doctor, note_id=note.id, expected_version=1)
    clinical_note_addendum(actor=doctor, note_id=note.id, text="more")
    for sql in (
        "UPDATE ehr_clinicalnoteversion SET reason = 'x'",
        "DELETE FROM ehr_clinicalnoteversion",
        "UPDATE ehr_noteaddendum SET text = 'x'",
        "DELETE FROM ehr_noteaddendum",
        "DELETE FROM ehr_encounter",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as c:
            c.execute(sql)
    assert NoteAddendum.objects.get(note_id=note.id).text == "more"


# --- Conditions (ICD-10-CM) ---------------------------------------------------------------------------------------


def test_icd10cm_lookup_normalises_and_takes_the_description_from_the_library() -> None:
    found = icd10cm_lookup(" e119 ")
    assert found is not None
    assert (found.code, found.display, found.billable) == (
        "E11.9",
        "Type 2 diabetes mellitus without complications",
        True,
    )
    assert icd10cm_lookup("I10") is not None
    for bad in ("E11.999", "ZZZ", "E08-E13", "", "DROP TABLE"):
        assert icd10cm_lookup(bad) is None


def test_condition_add_update_and_entered_in_error_keep_every_version(chart, doctor) -> None:
    condition = condition_add(actor=doctor, patient_id=chart.pk, code="e11.9", onset_date="2020-05-01")
    assert (condition.code, condition.code_display, condition.version) == (
        "E11.9",
        "Type 2 diabetes mellitus without complications",
        1,
    )
    updated = condition_update(
        actor=doctor,
        condition_id=condition.id,
        expected_version=1,
        changes={"code": "E11.65", "clinical_status": "inactive"},
        reason="more specific",
    )
    assert (updated.version, updated.code, updated.clinical_status) == (2, "E11.65", "inactive")
    removed = condition_mark_entered_in_error(
        actor=doctor, condition_id=condition.id, expected_version=2, reason="wrong patient"
    )
    assert (removed.verification_status, removed.version) == ("entered-in-error", 3)
    history = selectors.clinical_record_history(actor=doctor, kind="Condition", record_id=condition.id)
    assert [h.version for h in history] == [1, 2, 3]
    assert [h.reason for h in history] == ["recorded", "more specific", "wrong patient"]
    assert {(c.field, c.before, c.after) for c in history[1].diff} >= {
        ("code", "E11.9", "E11.65"),
        ("clinical_status", "active", "inactive"),
    }
    assert history[2].changed_fields == ["verification_status"]
    assert Condition.objects.filter(pk=condition.id).exists()  # never deleted
    assert selectors.clinical_record_list(actor=doctor, kind="Condition", patient_id=chart.pk) == []
    assert (
        len(
            selectors.clinical_record_list(
                actor=doctor, kind="Condition", patient_id=chart.pk, include_entered_in_error=True
            )
        )
        == 1
    )
    with pytest.raises(InvalidClinicalData):
        condition_update(actor=doctor, condition_id=condition.id, expected_version=3, changes={"note": "x"}, reason="x")


@pytest.mark.parametrize("code", ["E11.999", "XYZ", "E08-E13", ""])
def test_unknown_icd_code_is_refused_and_nothing_written(chart, doctor, code) -> None:
    with pytest.raises(InvalidClinicalData) as err:
        condition_add(actor=doctor, patient_id=chart.pk, code=code)
    assert "code" in err.value.fields
    assert not Condition.objects.exists()


def test_stale_condition_update_conflicts(chart, doctor) -> None:
    condition = condition_add(actor=doctor, patient_id=chart.pk, code="I10")
    condition_update(actor=doctor, condition_id=condition.id, expected_version=1, changes={"note": "a"}, reason="r")
    with pytest.raises(VersionConflict) as err:
        condition_update(actor=doctor, condition_id=condition.id, expected_version=1, changes={"note": "b"}, reason="r")
    assert err.value.current_version == 2
    assert ConditionVersion.objects.filter(record_id=condition.id).count() == 2


def test_condition_dates_and_unknown_fields_are_validated(chart, doctor) -> None:
    with pytest.raises(InvalidClinicalData) as err:
        condition_add(
            actor=doctor, patient_id=chart.pk, code="I10", onset_date="2020-05-01", abatement_date="2019-01-01"
        )
    assert "abatement_date" in err.value.fields
    with pytest.raises(InvalidClinicalData):
        condition_add(actor=doctor, patient_id=chart.pk, code="I10", onset_date="2999-01-01")
    condition = condition_add(actor=doctor, patient_id=chart.pk, code="I10")
    with pytest.raises(InvalidClinicalData) as err:
        condition_update(
            actor=doctor, condition_id=condition.id, expected_version=1, changes={"patient_id": 9}, reason="r"
        )
    assert err.value.fields == {"patient_id": ["Unknown or read-only field."]}
    with pytest.raises(InvalidClinicalData):
        condition_update(
            actor=doctor,
            condition_id=condition.id,
            expected_version=1,
            changes={"verification_status": "entered-in-error"},
            reason="r",
        )


# --- Observations (LOINC / UCUM) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value"),
    [("8867-4", 500), ("8867-4", 0), ("8310-5", 98.6), ("59408-5", 101), ("29463-7", 70000), ("8480-6", -5)],
)
def test_impossible_values_are_refused_with_a_field_error(chart, doctor, code, value) -> None:
    with pytest.raises(InvalidClinicalData) as err:
        observation_record(actor=doctor, patient_id=chart.pk, code=code, value=value)
    assert "value" in err.value.fields
    assert "not a possible" in err.value.fields["value"][0]
    assert not Observation.objects.exists()


def test_observation_code_and_unit_must_match_the_table(chart, doctor) -> None:
    with pytest.raises(InvalidClinicalData) as err:
        observation_record(actor=doctor, patient_id=chart.pk, code="1234-5", value=1)
    assert "code" in err.value.fields
    with pytest.raises(InvalidClinicalData) as err:
        observation_record(actor=doctor, patient_id=chart.pk, code="8310-5", value=37, unit="[degF]")
    assert "unit" in err.value.fields
    with pytest.raises(InvalidClinicalData) as err:
        observation_record(actor=doctor, patient_id=chart.pk, code="8310-5", value="NaN")
    with pytest.raises(InvalidClinicalData) as err:
        observation_record(
            actor=doctor,
            patient_id=chart.pk,
            code="8310-5",
            value=37,
            effective_at=timezone.now() + datetime.timedelta(days=1),
        )
    assert "effective_at" in err.value.fields


def test_observation_record_amend_and_entered_in_error(chart, doctor, encounter) -> None:
    obs = observation_record(
        actor=doctor, patient_id=chart.pk, code="8867-4", value="72", unit="/min", encounter_id=encounter.id
    )
    assert (obs.unit, obs.value, obs.status, obs.category) == ("/min", Decimal(72), "final", "vital-signs")
    same = observation_amend(
        actor=doctor, observation_id=obs.id, expected_version=1, changes={"value": "72.0"}, reason="r"
    )
    assert (same.version, same.status) == (1, "final")  # the same reading: no version
    amended = observation_amend(
        actor=doctor, observation_id=obs.id, expected_version=1, changes={"value": 76}, reason="misread"
    )
    assert (amended.version, amended.status, amended.value) == (2, "amended", Decimal(76))
    with pytest.raises(InvalidClinicalData):
        observation_amend(actor=doctor, observation_id=obs.id, expected_version=2, changes={"value": 500}, reason="x")
    eie = observation_mark_entered_in_error(
        actor=doctor, observation_id=obs.id, expected_version=2, reason="wrong patient"
    )
    assert eie.status == "entered-in-error"
    history = selectors.clinical_record_history(actor=doctor, kind="Observation", record_id=obs.id)
    assert [(h.data["value"], h.data["status"]) for h in history] == [
        ("72", "final"),
        ("76", "amended"),
        ("76", "entered-in-error"),
    ]
    assert ObservationVersion.objects.filter(record_id=obs.id).count() == 3


def test_observation_refuses_an_encounter_of_another_patient(chart, doctor) -> None:
    other = PatientFactory()
    care_team_join(patient=other, member=doctor)
    theirs = EncounterFactory(patient=other, practitioner=doctor)
    with pytest.raises(InvalidClinicalData) as err:
        observation_record(actor=doctor, patient_id=chart.pk, code="8867-4", value=70, encounter_id=theirs.id)
    assert "encounter_id" in err.value.fields


# --- Allergies and medications --------------------------------------------------------------------------------------


def test_allergy_life_cycle(chart, doctor) -> None:
    allergy = allergy_add(
        actor=doctor, patient_id=chart.pk, substance_text="Penicillin", criticality="high", reaction="hives"
    )
    updated = allergy_update(
        actor=doctor, allergy_id=allergy.id, expected_version=1, changes={"criticality": "low"}, reason="re-assessed"
    )
    assert (updated.version, updated.criticality) == (2, "low")
    with pytest.raises(InvalidClinicalData):
        allergy_add(actor=doctor, patient_id=chart.pk, substance_text="", criticality="extreme")
    with pytest.raises(InvalidClinicalData):
        allergy_add(
            actor=doctor, patient_id=chart.pk, substance_text="Latex", criticality="low", substance_code="111088007"
        )
    gone = allergy_mark_entered_in_error(actor=doctor, allergy_id=allergy.id, expected_version=2, reason="wrong chart")
    assert gone.verification_status == "entered-in-error"


def test_medication_life_cycle_and_status_table(chart, doctor) -> None:
    med = medication_add(
        actor=doctor, patient_id=chart.pk, medication_text="Metformin 500 mg tablet", rxnorm_code="861007",
        dose="500 mg", route="oral", frequency="twice daily",
    )  # fmt: skip
    assert (med.status, med.prescriber_id, med.prescriber_display_name) == ("active", doctor.pk, doctor.display_name)
    stopped = medication_update(
        actor=doctor, medication_id=med.id, expected_version=1, changes={"status": "stopped"}, reason="GI upset"
    )
    assert (stopped.status, stopped.version) == ("stopped", 2)
    with pytest.raises(InvalidClinicalData):
        medication_add(actor=doctor, patient_id=chart.pk, medication_text="X", rxnorm_code="RX-12")
    medication_mark_entered_in_error(actor=doctor, medication_id=med.id, expected_version=2, reason="duplicate entry")
    with pytest.raises(InvalidClinicalData):
        medication_update(
            actor=doctor, medication_id=med.id, expected_version=3, changes={"status": "active"}, reason="r"
        )


# --- Summary, access ------------------------------------------------------------------------------------------------


def test_chart_summary_shows_active_items_and_latest_vitals(chart, doctor) -> None:
    condition_add(actor=doctor, patient_id=chart.pk, code="I10")
    resolved = condition_add(actor=doctor, patient_id=chart.pk, code="J06.9", clinical_status="resolved")
    allergy_add(actor=doctor, patient_id=chart.pk, substance_text="Penicillin", criticality="high")
    medication_add(actor=doctor, patient_id=chart.pk, medication_text="Amlodipine 5 mg")
    now = timezone.now()
    observation_record(
        actor=doctor, patient_id=chart.pk, code="8867-4", value=80, effective_at=now - datetime.timedelta(hours=2)
    )
    observation_record(
        actor=doctor, patient_id=chart.pk, code="8867-4", value=64, effective_at=now - datetime.timedelta(hours=1)
    )
    wrong = observation_record(actor=doctor, patient_id=chart.pk, code="8867-4", value=99, effective_at=now)
    observation_mark_entered_in_error(actor=doctor, observation_id=wrong.id, expected_version=1, reason="wrong patient")
    observation_record(actor=doctor, patient_id=chart.pk, code="8310-5", value="37.25")
    summary = selectors.chart_summary_get(actor=doctor, patient_id=chart.pk)
    assert [c.code for c in summary.problems] == ["I10"]
    assert resolved.id not in [c.id for c in summary.problems]
    assert [a.substance_text for a in summary.allergies] == ["Penicillin"]
    assert [m.medication_text for m in summary.medications] == ["Amlodipine 5 mg"]
    latest = {o.code: o.value for o in summary.latest_observations}
    assert latest == {"8867-4": Decimal(64), "8310-5": Decimal("37.3")}
    assert AuditEvent.objects.filter(patient_id=chart.pk, entity_type="ChartSummary", action="read").count() == 1


@pytest.mark.parametrize("role", ["scheduler", "billing", "admin"])
def test_non_clinicians_are_denied_clinical_reads_and_writes_and_it_is_audited(
    chart, encounter, organization, role
) -> None:
    user = UserFactory(roles=[role], organization=organization)
    with pytest.raises(AccessDenied):
        selectors.chart_summary_get(actor=user, patient_id=chart.pk)
    with pytest.raises(AccessDenied):
        condition_add(actor=user, patient_id=chart.pk, code="I10")
    # Addressed by the encounter's own id: an outsider cannot tell it exists (docs/access.md), still audited.
    with pytest.raises(ClinicalRecordNotFound):
        clinical_note_add(actor=user, encounter_id=encounter.id)
    assert AuditEvent.objects.filter(actor=user, outcome="denied").count() == 3
    assert AuditEvent.objects.filter(actor=user, outcome="denied", patient_id=chart.pk).count() == 3
    assert not Condition.objects.exists()
    assert not ClinicalNote.objects.exists()


def test_patient_reads_own_chart_but_not_others_and_cannot_write(doctor, patient) -> None:
    own = PatientFactory(user=patient)
    care_team_join(patient=own, member=doctor)
    condition_add(actor=doctor, patient_id=own.pk, code="I10")
    assert len(selectors.chart_summary_get(actor=patient, patient_id=own.pk).problems) == 1
    other = PatientFactory()
    with pytest.raises(AccessDenied):
        selectors.chart_summary_get(actor=patient, patient_id=other.pk)
    with pytest.raises(AccessDenied):
        condition_add(actor=patient, patient_id=own.pk, code="I10")


def test_missing_record_ids_are_not_probeable(encounter, doctor, patient) -> None:
    note = clinical_note_add(actor=doctor, encounter_id=encounter.id)
    missing = note.id + 1000
    with pytest.raises(ClinicalRecordNotFound) as exists:
        selectors.clinical_note_get(actor=patient, note_id=note.id)  # exists, not theirs
    with pytest.raises(ClinicalRecordNotFound) as absent:
        selectors.clinical_note_get(actor=patient, note_id=missing)  # does not exist: the same answer
    assert (type(exists.value), exists.value.kind) == (type(absent.value), absent.value.kind)
    # Both probes are audited as denied (the existing note naming its patient, the missing id naming none).
    denied = AuditEvent.objects.filter(actor=patient, outcome="denied").order_by("id")
    assert [row.patient_id for row in denied] == [encounter.patient_id, None]
    # A clinician gets the same 404 for a missing id; never a 500.
    with pytest.raises(ClinicalRecordNotFound):
        selectors.clinical_note_get(actor=doctor, note_id=missing)


def test_same_clinic_relationship_grants_colleagues_access(chart, encounter, organization, location) -> None:
    colleague = UserFactory(roles=["practitioner"], organization=organization, locations=[location])
    stranger = UserFactory(
        roles=["practitioner"], organization=organization, locations=[LocationFactory(organization=organization)]
    )
    assert selectors.patient_seen_at_actor_clinic(colleague, chart.pk)
    assert not selectors.patient_seen_at_actor_clinic(stranger, chart.pk)
    assert selectors.encounter_list(actor=colleague, patient_id=chart.pk)[0].id == encounter.id
    with pytest.raises(AccessDenied):
        selectors.encounter_list(actor=stranger, patient_id=chart.pk)
