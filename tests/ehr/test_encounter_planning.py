"""Encounter planning, the public API scheduling calls (plan, replan, cancel, start), the SCHEDULE access rule, the
SAME_CLINIC decision for booked visits, the chart's cancel endpoint, and the PatientRef selectors."""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from ehr import selectors
from ehr.access import PatientAction, patient_access_allowed
from ehr.errors import (
    AccessDenied,
    BreakGlassRequired,
    ClinicalRecordNotFound,
    EncounterHasAppointment,
    InvalidClinicalData,
    InvalidPatientData,
    InvalidTransition,
    PatientNotFound,
    VersionConflict,
)
from ehr.models import AuditEvent, Encounter, EncounterVersion, Patient
from ehr.services.clinical import (
    encounter_cancel,
    encounter_close,
    encounter_mark_entered_in_error,
    encounter_plan,
    encounter_replan,
    encounter_start,
)
from ehr.services.patients import patient_mark_entered_in_error
from tests.conftest import csrf_login
from tests.factories import LocationFactory, PatientFactory, UserFactory, care_team_join

pytestmark = pytest.mark.django_db

# A refused record-level action: AccessDenied, or ClinicalRecordNotFound for someone who may not read the chart at
# all (they are not told the row exists). Either way the attempt is audited as denied and nothing is written.
REFUSED = (AccessDenied, ClinicalRecordNotFound)
SOON = datetime.timedelta(days=3)
SLOT = datetime.timedelta(minutes=30)


def last_audit_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def audit_since(marker: int) -> list[tuple[str, str, str, int | None]]:
    return list(
        AuditEvent.objects.filter(id__gt=marker)
        .order_by("id")
        .values_list("action", "entity_type", "outcome", "actor_id")
    )


@pytest.fixture
def record(admin_user):  # type: ignore[no-untyped-def]
    return PatientFactory(registrar=admin_user)


@pytest.fixture
def start() -> datetime.datetime:
    return (timezone.now() + SOON).replace(microsecond=0)


def plan(actor: Any, record: Any, doctor: Any, location: Any, start: datetime.datetime, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "actor": actor,
        "patient_id": record.pk,
        "practitioner_id": doctor.pk,
        "location_id": location.pk,
        "modality": "virtual",
        "planned_start": start,
        "planned_end": start + SLOT,
        "reason": "follow-up of blood pressure",
    }
    return encounter_plan(**(values | overrides))


# --- encounter_plan -------------------------------------------------------------------------------------------------


def test_plan_creates_a_planned_encounter_version_one_with_history_and_a_create_audit_row(
    scheduler, doctor, location, record, start
) -> None:
    marker = last_audit_id()
    ref = plan(scheduler, record, doctor, location, start)
    assert (ref.status, ref.version, ref.patient_id) == ("planned", 1, record.pk)
    assert (ref.practitioner_id, ref.practitioner_display_name) == (doctor.pk, doctor.display_name)
    assert (ref.location_id, ref.location_name) == (location.pk, location.name)
    assert (ref.planned_start, ref.planned_end) == (start, start + SLOT)
    assert ref.period_start is None
    assert ref.period_end is None
    history = EncounterVersion.objects.get(record_id=ref.id)
    assert (history.version, history.reason, history.actor_id) == (1, "encounter planned", scheduler.pk)
    assert history.data["planned_start"] == start.isoformat()
    assert audit_since(marker) == [("create", "Encounter", "success", scheduler.pk)]
    row = AuditEvent.objects.get(id__gt=marker)
    assert row.patient_id == record.pk
    assert row.detail["status"] == "planned"
    assert row.detail["practitioner_id"] == doctor.pk


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"modality": "telepathy"}, "modality"),
        ({"planned_start": datetime.datetime(2030, 1, 1, 9, 0)}, "planned_start"),  # noqa: DTZ001 -- naive on purpose
        ({"planned_end": "tomorrow"}, "planned_end"),
        ({"planned_end_offset": datetime.timedelta(0)}, "planned_end"),
        ({"planned_end_offset": -SLOT}, "planned_end"),
        ({"planned_end_offset": datetime.timedelta(hours=25)}, "planned_end"),
        ({"location_id": 987654}, "location_id"),
        ({"location_id": "1"}, "location_id"),
        ({"practitioner_id": None}, "practitioner_id"),
        ({"reason": "x" * 1001}, "reason"),
        ({"appointment_id": 0}, "appointment_id"),
        ({"appointment_id": "7"}, "appointment_id"),
        ({"appointment_id": True}, "appointment_id"),
    ],
)
def test_plan_refuses_bad_input_with_a_field_error_and_writes_nothing(
    scheduler, doctor, location, record, start, overrides, field
) -> None:
    offset = overrides.pop("planned_end_offset", None)
    if offset is not None:
        overrides["planned_end"] = start + offset
    before = (Encounter.objects.count(), last_audit_id())
    with pytest.raises(InvalidClinicalData) as caught:
        plan(scheduler, record, doctor, location, start, **overrides)
    assert field in caught.value.fields
    assert (Encounter.objects.count(), last_audit_id()) == before


def test_plan_needs_an_active_practitioner_who_works_at_the_location(
    scheduler, doctor, nurse, location, record, start, organization
) -> None:
    elsewhere = LocationFactory(organization=organization)
    with pytest.raises(InvalidClinicalData) as caught:
        plan(scheduler, record, doctor, elsewhere, start)
    assert caught.value.fields == {"location_id": ["The practitioner does not work at this location."]}
    with pytest.raises(InvalidClinicalData) as caught:
        plan(scheduler, record, nurse, location, start)  # a nurse is not a practitioner
    assert "practitioner_id" in caught.value.fields
    doctor.is_active = False
    doctor.save(update_fields=["is_active"])
    with pytest.raises(InvalidClinicalData):
        plan(scheduler, record, doctor, location, start)
    assert not Encounter.objects.exists()


def test_plan_refuses_a_record_that_is_not_active(scheduler, admin_user, doctor, location, record, start) -> None:
    patient_mark_entered_in_error(actor=admin_user, patient_id=record.pk, expected_version=1, reason="duplicate")
    with pytest.raises(InvalidClinicalData) as caught:
        plan(scheduler, record, doctor, location, start)
    assert caught.value.fields == {"patient_id": ["The patient record is entered-in-error; nothing can be added."]}
    with pytest.raises(PatientNotFound):
        plan(scheduler, Patient(pk=987654), doctor, location, start)
    assert not Encounter.objects.exists()


def test_plan_keeps_the_appointment_it_was_booked_as_in_the_row_the_ref_the_history_and_the_audit(
    scheduler, doctor, location, record, start
) -> None:
    marker = last_audit_id()
    ref = plan(scheduler, record, doctor, location, start, appointment_id=4711)
    assert ref.appointment_id == 4711
    assert Encounter.objects.get(pk=ref.id).appointment_id == 4711
    assert EncounterVersion.objects.get(record_id=ref.id).data["appointment_id"] == 4711
    assert AuditEvent.objects.get(id__gt=marker).detail["appointment_id"] == 4711
    # Kept through the visit's life: a replan and a start change other fields, never the appointment.
    replanned = encounter_replan(
        actor=scheduler, encounter_id=ref.id, planned_start=start + SLOT, planned_end=start + 2 * SLOT
    )
    assert replanned.appointment_id == 4711
    assert encounter_start(actor=doctor, encounter_id=ref.id).appointment_id == 4711
    assert "appointment_id" not in EncounterVersion.objects.get(record_id=ref.id, version=3).changed_fields
    # Encounters opened on the spot, or planned without an appointment, have none.
    assert plan(scheduler, record, doctor, location, start + SOON).appointment_id is None


def test_plan_refuses_a_second_encounter_for_one_appointment(scheduler, doctor, location, record, start) -> None:
    plan(scheduler, record, doctor, location, start, appointment_id=4711)
    before = (Encounter.objects.count(), last_audit_id())
    with pytest.raises(InvalidClinicalData) as caught:
        plan(scheduler, record, doctor, location, start + SOON, appointment_id=4711)
    assert caught.value.fields == {"appointment_id": ["This appointment already has its encounter."]}
    assert (Encounter.objects.count(), last_audit_id()) == before


def test_postgresql_keeps_one_encounter_per_appointment_and_positive_ids(
    scheduler, doctor, location, record, start
) -> None:
    first = plan(scheduler, record, doctor, location, start, appointment_id=4711)
    other = plan(scheduler, record, doctor, location, start + SOON)
    for value in (4711, 0, -3):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE ehr_encounter SET appointment_id = %s WHERE id = %s", [value, other.id])
    assert Encounter.objects.get(pk=first.id).appointment_id == 4711


# --- access: PatientAction.SCHEDULE ---------------------------------------------------------------------------------


def test_schedulers_admins_and_the_patient_themselves_may_plan(
    scheduler, admin_user, doctor, location, start, patient
) -> None:
    own = PatientFactory(registrar=admin_user, user=patient)
    for actor in (scheduler, admin_user, patient):
        assert plan(actor, own, doctor, location, start).status == "planned"
    assert Encounter.objects.filter(patient=own).count() == 3


def test_billing_and_other_patients_may_not_plan_and_the_denial_is_audited(
    admin_user, doctor, location, record, start, patient
) -> None:
    billing = UserFactory(username="billing-test", roles=["billing"], organization=admin_user.organization)
    PatientFactory(registrar=admin_user, user=patient)  # the patient's own record exists, but this is another one
    for actor in (billing, patient):
        marker = last_audit_id()
        with pytest.raises(AccessDenied):
            plan(actor, record, doctor, location, start)
        assert audit_since(marker) == [("update", "Patient", "denied", actor.pk)]
        assert AuditEvent.objects.get(id__gt=marker).detail == {"action": "schedule"}
    assert not Encounter.objects.exists()


def test_clinicians_plan_only_inside_a_care_relationship(doctor, nurse, doctor2, location, record, start) -> None:
    with pytest.raises(BreakGlassRequired):
        plan(nurse, record, doctor, location, start)
    care_team_join(patient=record, member=nurse, role="nurse")
    assert plan(nurse, record, doctor, location, start).status == "planned"
    # doctor2 works at the location where the patient now has a booked visit: SAME_CLINIC
    assert plan(doctor2, record, doctor2, location, start + SLOT).practitioner_id == doctor2.pk


def test_replan_and_cancel_follow_the_same_rule(admin_user, scheduler, doctor, location, record, start) -> None:
    ref = plan(scheduler, record, doctor, location, start)
    billing = UserFactory(username="billing-test", roles=["billing"], organization=admin_user.organization)
    marker = last_audit_id()
    with pytest.raises(REFUSED):
        encounter_replan(actor=billing, encounter_id=ref.id, planned_start=start + SLOT, planned_end=start + 2 * SLOT)
    with pytest.raises(REFUSED):
        encounter_cancel(actor=billing, encounter_id=ref.id, reason="no")
    assert Encounter.objects.get(pk=ref.id).version == 1
    assert audit_since(marker) == [("update", "Patient", "denied", billing.pk)] * 2


# --- encounter_replan -----------------------------------------------------------------------------------------------


def test_replan_moves_the_visit_as_a_new_version(scheduler, doctor, doctor2, location, record, start) -> None:
    ref = plan(scheduler, record, doctor, location, start)
    later = start + datetime.timedelta(hours=2)
    marker = last_audit_id()
    moved = encounter_replan(
        actor=scheduler, encounter_id=ref.id, planned_start=later, planned_end=later + SLOT, practitioner_id=doctor2.pk
    )
    assert (moved.version, moved.planned_start, moved.practitioner_id) == (2, later, doctor2.pk)
    assert moved.practitioner_display_name == doctor2.display_name
    latest = EncounterVersion.objects.get(record_id=ref.id, version=2)
    assert latest.reason == "encounter rescheduled"
    assert set(latest.changed_fields) == {"planned_start", "planned_end", "practitioner_id"}
    assert audit_since(marker) == [("update", "Encounter", "success", scheduler.pk)]


def test_replan_to_the_same_period_writes_no_version(scheduler, doctor, location, record, start) -> None:
    ref = plan(scheduler, record, doctor, location, start)
    same = encounter_replan(actor=scheduler, encounter_id=ref.id, planned_start=start, planned_end=start + SLOT)
    assert same.version == 1
    assert EncounterVersion.objects.filter(record_id=ref.id).count() == 1


def test_replan_checks_the_practitioner_works_at_the_new_location(
    scheduler, doctor, location, record, start, organization
) -> None:
    ref = plan(scheduler, record, doctor, location, start)
    elsewhere = LocationFactory(organization=organization)
    with pytest.raises(InvalidClinicalData) as caught:
        encounter_replan(
            actor=scheduler, encounter_id=ref.id, planned_start=start, planned_end=start + SLOT,
            location_id=elsewhere.pk,
        )  # fmt: skip
    assert "location_id" in caught.value.fields
    with pytest.raises(InvalidClinicalData):
        encounter_replan(actor=scheduler, encounter_id=ref.id, planned_start=start, planned_end=start)
    assert Encounter.objects.get(pk=ref.id).version == 1


def test_replan_only_while_planned(scheduler, doctor, location, record, start) -> None:
    started = plan(scheduler, record, doctor, location, start)
    encounter_start(actor=doctor, encounter_id=started.id)
    cancelled = plan(scheduler, record, doctor, location, start + SLOT)
    encounter_cancel(actor=scheduler, encounter_id=cancelled.id, reason="patient rang")
    for ref, status in ((started, "in-progress"), (cancelled, "cancelled")):
        with pytest.raises(InvalidTransition) as caught:
            encounter_replan(actor=scheduler, encounter_id=ref.id, planned_start=start, planned_end=start + 2 * SLOT)
        assert (caught.value.current, caught.value.target) == (status, "planned")
        assert Encounter.objects.get(pk=ref.id).version == 2


# --- encounter_cancel -----------------------------------------------------------------------------------------------


def test_cancel_is_a_new_version_with_the_reason(scheduler, doctor, location, record, start) -> None:
    ref = plan(scheduler, record, doctor, location, start)
    marker = last_audit_id()
    cancelled = encounter_cancel(actor=scheduler, encounter_id=ref.id, reason="patient rang to cancel")
    assert (cancelled.status, cancelled.version) == ("cancelled", 2)
    latest = EncounterVersion.objects.get(record_id=ref.id, version=2)
    assert (latest.reason, latest.changed_fields) == ("patient rang to cancel", ["status"])
    assert audit_since(marker) == [("update", "Encounter", "success", scheduler.pk)]
    assert AuditEvent.objects.get(id__gt=marker).detail["status"] == "cancelled"


def test_cancel_refuses_what_is_not_planned_a_missing_reason_and_a_stale_version(
    scheduler, doctor, location, record, start
) -> None:
    ref = plan(scheduler, record, doctor, location, start)
    with pytest.raises(InvalidClinicalData):
        encounter_cancel(actor=scheduler, encounter_id=ref.id, reason="  ")
    with pytest.raises(VersionConflict):
        encounter_cancel(actor=scheduler, encounter_id=ref.id, reason="rang", expected_version=4)
    encounter_start(actor=doctor, encounter_id=ref.id)
    with pytest.raises(InvalidTransition) as caught:
        encounter_cancel(actor=scheduler, encounter_id=ref.id, reason="too late")
    assert (caught.value.current, caught.value.target) == ("in-progress", "cancelled")
    encounter_close(actor=doctor, encounter_id=ref.id)
    with pytest.raises(InvalidTransition):
        encounter_cancel(actor=scheduler, encounter_id=ref.id, reason="too late")
    assert Encounter.objects.get(pk=ref.id).version == 3  # plan, start, close


def test_cancel_of_a_booked_visit_is_refused_when_the_caller_does_not_own_the_appointment(
    scheduler, doctor, location, record, start
) -> None:
    ref = plan(scheduler, record, doctor, location, start, appointment_id=4711)
    marker = last_audit_id()
    with pytest.raises(EncounterHasAppointment) as caught:
        encounter_cancel(actor=scheduler, encounter_id=ref.id, reason="rang", unbooked_only=True)
    assert caught.value.appointment_id == 4711
    assert (Encounter.objects.get(pk=ref.id).status, Encounter.objects.get(pk=ref.id).version) == ("planned", 1)
    assert last_audit_id() == marker
    # Scheduling, which cancels the appointment first, cancels the encounter with it.
    cancelled = encounter_cancel(actor=scheduler, encounter_id=ref.id, reason="appointment cancelled")
    assert (cancelled.status, cancelled.appointment_id) == ("cancelled", 4711)
    # Once the visit is no longer planned the refusal is the state machine's, as for any encounter.
    with pytest.raises(InvalidTransition):
        encounter_cancel(actor=scheduler, encounter_id=ref.id, reason="again", unbooked_only=True)


# --- encounter_start ------------------------------------------------------------------------------------------------


def test_start_begins_the_visit_now_and_keeps_the_planned_period(scheduler, doctor, location, record, start) -> None:
    ref = plan(scheduler, record, doctor, location, start)
    before = timezone.now()
    marker = last_audit_id()
    started = encounter_start(actor=doctor, encounter_id=ref.id)
    assert (started.status, started.version) == ("in-progress", 2)
    assert started.period_start is not None
    assert started.period_start >= before
    assert (started.planned_start, started.planned_end) == (start, start + SLOT)
    assert EncounterVersion.objects.get(record_id=ref.id, version=2).reason == "encounter started"
    assert audit_since(marker) == [("update", "Encounter", "success", doctor.pk)]
    closed = encounter_close(actor=doctor, encounter_id=ref.id)
    assert closed.status == "finished"
    assert closed.duration_seconds is not None


def test_start_needs_write_clinical_and_a_planned_encounter(scheduler, doctor, location, record, start) -> None:
    ref = plan(scheduler, record, doctor, location, start)
    with pytest.raises(REFUSED):
        encounter_start(actor=scheduler, encounter_id=ref.id)  # schedulers book, they do not see patients
    encounter_start(actor=doctor, encounter_id=ref.id)
    with pytest.raises(InvalidTransition):
        encounter_start(actor=doctor, encounter_id=ref.id)
    cancelled = plan(scheduler, record, doctor, location, start + SLOT)
    encounter_cancel(actor=scheduler, encounter_id=cancelled.id, reason="rang")
    with pytest.raises(InvalidTransition):
        encounter_start(actor=doctor, encounter_id=cancelled.id)


# --- inside the caller's transaction --------------------------------------------------------------------------------


def test_the_functions_work_inside_the_callers_transaction_and_roll_back_with_it(
    scheduler, doctor, location, record, start
) -> None:
    with transaction.atomic():
        ref = plan(scheduler, record, doctor, location, start)
        encounter_replan(actor=scheduler, encounter_id=ref.id, planned_start=start + SLOT, planned_end=start + 2 * SLOT)
        # a refusal inside the caller's transaction leaves it usable (the service's own block is a savepoint)
        with contextlib.suppress(*REFUSED):
            encounter_start(actor=scheduler, encounter_id=ref.id)
        encounter_cancel(actor=scheduler, encounter_id=ref.id, reason="booked by mistake")
        with contextlib.suppress(InvalidTransition):
            encounter_cancel(actor=scheduler, encounter_id=ref.id, reason="again")
        assert Encounter.objects.get(pk=ref.id).version == 3
    assert Encounter.objects.get(pk=ref.id).status == "cancelled"

    marker = (Encounter.objects.count(), EncounterVersion.objects.count(), last_audit_id())

    class Abandoned(Exception):
        pass

    def book_then_fail() -> None:
        with transaction.atomic():
            plan(scheduler, record, doctor, location, start)
            raise Abandoned  # e.g. the slot was taken: the booking and its planned encounter go together

    with pytest.raises(Abandoned):
        book_then_fail()
    assert (Encounter.objects.count(), EncounterVersion.objects.count(), last_audit_id()) == marker


# --- SAME_CLINIC and booked visits ----------------------------------------------------------------------------------


def test_a_booked_visit_lets_the_clinic_open_the_chart_until_it_is_cancelled(
    scheduler, doctor, location, record, start
) -> None:
    """Decision (docs/access.md): planned, in-progress and finished encounters grant SAME_CLINIC; cancelled and
    entered-in-error ones never happened and grant nothing."""
    assert not patient_access_allowed(actor=doctor, patient_id=record.pk, action=PatientAction.READ_CLINICAL)
    booked = plan(scheduler, record, doctor, location, start)
    assert patient_access_allowed(actor=doctor, patient_id=record.pk, action=PatientAction.READ_CLINICAL)
    encounter_cancel(actor=scheduler, encounter_id=booked.id, reason="rang")
    assert not patient_access_allowed(actor=doctor, patient_id=record.pk, action=PatientAction.READ_CLINICAL)

    rebooked = plan(scheduler, record, doctor, location, start)
    assert patient_access_allowed(actor=doctor, patient_id=record.pk, action=PatientAction.READ_CLINICAL)
    encounter_mark_entered_in_error(actor=doctor, encounter_id=rebooked.id, expected_version=1, reason="wrong person")
    assert not patient_access_allowed(actor=doctor, patient_id=record.pk, action=PatientAction.READ_CLINICAL)


# --- the chart: encounter list and cancel endpoint ------------------------------------------------------------------


def _client(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def _post(client: APIClient, path: str, body: Any, **headers: str) -> Any:
    return client.post(path, body, format="json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value, **headers)


def test_the_chart_lists_planned_encounters_with_their_period(scheduler, doctor, location, record, start) -> None:
    ref = plan(scheduler, record, doctor, location, start)
    response = _client("dr-test").get(f"/api/v1/ehr/patients/{record.pk}/encounters/")
    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert (row["id"], row["status"]) == (ref.id, "planned")
    assert datetime.datetime.fromisoformat(row["planned_start"]) == start
    assert datetime.datetime.fromisoformat(row["planned_end"]) == start + SLOT
    assert row["appointment_id"] is None


def test_the_chart_shows_the_appointment_a_visit_was_booked_as(scheduler, doctor, location, record, start) -> None:
    ref = plan(scheduler, record, doctor, location, start, appointment_id=4711)
    response = _client("dr-test").get(f"/api/v1/ehr/patients/{record.pk}/encounters/")
    assert [(row["id"], row["appointment_id"]) for row in response.json()["results"]] == [(ref.id, 4711)]


def test_cancel_api_needs_if_match_and_a_reason_and_refuses_a_started_visit(
    scheduler, doctor, location, record, start
) -> None:
    care_team_join(patient=record, member=doctor)  # once cancelled, the booked visit no longer grants SAME_CLINIC
    ref = plan(scheduler, record, doctor, location, start)
    client = _client("dr-test")
    path = f"/api/v1/ehr/encounters/{ref.id}/cancel/"
    assert _post(client, path, {"reason": "rang"}).status_code == 428
    assert _post(client, path, {"reason": "rang"}, HTTP_IF_MATCH='"5"').json()["code"] == "version_conflict"
    missing = _post(client, path, {}, HTTP_IF_MATCH='"1"')
    assert (missing.status_code, missing.json()["code"]) == (400, "invalid")
    unknown = _post(client, path, {"reason": "rang", "status": "finished"}, HTTP_IF_MATCH='"1"')
    assert unknown.status_code == 400
    assert Encounter.objects.get(pk=ref.id).version == 1
    ok = _post(client, path, {"reason": "patient rang to cancel"}, HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200, ok.content
    assert (ok.json()["status"], ok["ETag"]) == ("cancelled", '"2"')
    again = _post(client, path, {"reason": "rang"}, HTTP_IF_MATCH='"2"')
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")


def test_cancel_api_refuses_a_visit_booked_in_scheduling_and_writes_nothing(
    scheduler, doctor, location, record, start
) -> None:
    ref = plan(scheduler, record, doctor, location, start, appointment_id=4711)
    client = _client("dr-test")
    path = f"/api/v1/ehr/encounters/{ref.id}/cancel/"
    marker = last_audit_id()
    refused = _post(client, path, {"reason": "patient rang"}, HTTP_IF_MATCH='"1"')
    assert refused.status_code == 409
    assert refused.json() == {
        "code": "cancel_the_appointment",
        "detail": "This visit was booked in scheduling; cancel the appointment instead.",
        "appointment_id": 4711,
    }
    row = Encounter.objects.get(pk=ref.id)
    assert (row.status, row.version, EncounterVersion.objects.filter(record_id=ref.id).count()) == ("planned", 1, 1)
    assert last_audit_id() == marker
    # The usual order of refusals holds: a stale If-Match is a 412, an outsider is told nothing (404).
    assert _post(client, path, {"reason": "rang"}, HTTP_IF_MATCH='"3"').status_code == 412
    outsider = UserFactory(roles=["practitioner"], username="dr-outside")
    stranger = _post(_client(outsider.username), path, {"reason": "rang"}, HTTP_IF_MATCH='"1"')
    assert (stranger.status_code, stranger.json()["code"]) == (404, "not_found")
    assert Encounter.objects.get(pk=ref.id).status == "planned"


# --- PatientRef selectors -------------------------------------------------------------------------------------------


def test_patient_refs_get_returns_refs_in_one_query_and_one_audit_row(scheduler, admin_user) -> None:
    records = [PatientFactory(registrar=admin_user) for _ in range(3)]
    ids = [r.pk for r in reversed(records)]
    marker = last_audit_id()
    with CaptureQueriesContext(connection) as queries:
        refs = selectors.patient_refs_get(actor=scheduler, patient_ids=[*ids, ids[0]], purpose="appointment_list")
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and "ehr_patient" in q["sql"]]
    assert len(reads) == 1
    assert list(refs) == ids
    first = refs[records[0].pk]
    assert (first.mrn, first.display_name, first.birth_date) == (
        records[0].mrn,
        records[0].display_name,
        records[0].birth_date,
    )
    assert (first.preferred_language, first.user_id, first.status, first.merged_into_id) == ("en", None, "active", None)
    assert audit_since(marker) == [("read", "PatientSearch", "success", scheduler.pk)]
    row = AuditEvent.objects.get(id__gt=marker)
    assert (row.purpose, row.detail) == ("appointment_list", {"results": 3, "patient_ids": ids})


def test_patient_refs_get_refuses_any_id_the_actor_may_not_read(admin_user, patient, doctor) -> None:
    own = PatientFactory(registrar=admin_user, user=patient)
    other = PatientFactory(registrar=admin_user)
    assert list(selectors.patient_refs_get(actor=patient, patient_ids=[own.pk], purpose="my_appointments")) == [own.pk]
    for ids in ([own.pk, other.pk], [987654]):  # another's record, or an id that does not exist: the same refusal
        marker = last_audit_id()
        with pytest.raises(AccessDenied):
            selectors.patient_refs_get(actor=patient, patient_ids=ids, purpose="my_appointments")
        assert audit_since(marker) == [("read", "Patient", "denied", patient.pk)]
    with pytest.raises(BreakGlassRequired):
        selectors.patient_refs_get(actor=doctor, patient_ids=[other.pk], purpose="queue")
    care_team_join(patient=other, member=doctor)
    assert set(selectors.patient_refs_get(actor=doctor, patient_ids=[other.pk], purpose="queue")) == {other.pk}


def test_patient_refs_get_refuses_bad_arguments_and_missing_ids(scheduler) -> None:
    marker = last_audit_id()
    assert selectors.patient_refs_get(actor=scheduler, patient_ids=[], purpose="appointment_list") == {}
    for purpose in ("", "   ", "x" * 41):
        with pytest.raises(InvalidPatientData):
            selectors.patient_refs_get(actor=scheduler, patient_ids=[1], purpose=purpose)
    with pytest.raises(InvalidPatientData):
        selectors.patient_refs_get(actor=scheduler, patient_ids=["1"], purpose="x")  # type: ignore[list-item]
    with pytest.raises(PatientNotFound):
        selectors.patient_refs_get(actor=scheduler, patient_ids=[987654], purpose="appointment_list")
    assert last_audit_id() == marker


def test_patient_ref_for_user_finds_the_signed_in_patients_own_record_without_auditing(admin_user, patient) -> None:
    own = PatientFactory(registrar=admin_user, user=patient, preferred_language="pt-PT")
    marker = last_audit_id()
    ref = selectors.patient_ref_for_user(user_id=patient.pk)
    assert ref is not None
    assert (ref.id, ref.user_id, ref.preferred_language) == (own.pk, patient.pk, "pt-PT")
    assert selectors.patient_ref_for_user(user_id=admin_user.pk) is None
    assert last_audit_id() == marker
