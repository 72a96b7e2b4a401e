"""Access rules (ehr.access), care teams, break-the-glass and its review, and the patient's access log."""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import StreamEvent
from ehr.access import (
    PatientAction,
    Relationship,
    patient_access_allowed,
    patient_access_check,
    register_relationship_test,
)
from ehr.errors import AccessDenied, BreakGlassRequired, CareTeamAlreadyEnded, CareTeamOverlap, InvalidAccessRequest
from ehr.models import AuditEvent, BreakGlassGrant, CareTeamMember, Patient, User
from ehr.selectors import patient_get, patient_search
from ehr.services.access import break_glass_grant, care_team_add, care_team_end
from tests.conftest import csrf_login
from tests.factories import CareTeamMemberFactory, OrganizationFactory, PatientFactory, UserFactory
from tests.support.servers import wait_until

pytestmark = pytest.mark.django_db

BASE = "/api/v1/ehr"
REASON = "Unconscious in the emergency room, no care team reachable"


def signed_in(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def send(client: APIClient, method: str, path: str, data: Any = None, **headers: str) -> Any:
    return getattr(client, method)(
        path, data, format="json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value, **headers
    )


def since(marker: int) -> list[tuple[str, str, str, str]]:
    return list(
        AuditEvent.objects.filter(id__gt=marker)
        .order_by("id")
        .values_list("action", "entity_type", "outcome", "purpose")
    )


def last_audit_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


# --- rules ------------------------------------------------------------------------------------------------------


def test_clinicians_need_a_care_relationship_and_outside_it_break_the_glass(doctor, nurse, admin_user) -> None:
    patient = PatientFactory(registrar=admin_user)
    for clinician in (doctor, nurse):
        assert not patient_access_allowed(actor=clinician, patient_id=patient.pk, action=PatientAction.READ_CLINICAL)
        with pytest.raises(BreakGlassRequired):
            patient_access_check(actor=clinician, patient_id=patient.pk, action=PatientAction.READ)
        CareTeamMemberFactory(patient=patient, member=clinician, manager=admin_user)
        assert patient_access_allowed(actor=clinician, patient_id=patient.pk, action=PatientAction.READ_CLINICAL)
        assert patient_access_allowed(actor=clinician, patient_id=patient.pk, action=PatientAction.WRITE_CLINICAL)
    # signing notes is for practitioners only, even inside the care team
    assert patient_access_allowed(actor=doctor, patient_id=patient.pk, action=PatientAction.SIGN_NOTE)
    assert not patient_access_allowed(actor=nurse, patient_id=patient.pk, action=PatientAction.SIGN_NOTE)


def test_schedulers_and_billing_never_reach_clinical_data_not_even_by_break_glass(scheduler, admin_user) -> None:
    billing = UserFactory(username="billing", roles=["billing"], organization=admin_user.organization)
    patient = PatientFactory(registrar=admin_user)
    for actor in (scheduler, billing):
        for action in (PatientAction.READ_CLINICAL, PatientAction.WRITE_CLINICAL, PatientAction.SIGN_NOTE):
            with pytest.raises(AccessDenied) as caught:
                patient_access_check(actor=actor, patient_id=patient.pk, action=action)
            assert not isinstance(caught.value, BreakGlassRequired)
        with pytest.raises(AccessDenied):
            break_glass_grant(actor=actor, patient_id=patient.pk, reason=REASON)
    # both see demographics; billing the identifiers (claims), schedulers not
    assert patient_access_allowed(actor=scheduler, patient_id=patient.pk, action=PatientAction.READ)
    assert patient_access_allowed(actor=billing, patient_id=patient.pk, action=PatientAction.READ_IDENTIFIERS)
    assert not patient_access_allowed(actor=scheduler, patient_id=patient.pk, action=PatientAction.READ_IDENTIFIERS)
    assert not patient_access_allowed(actor=billing, patient_id=patient.pk, action=PatientAction.UPDATE)


def test_an_admin_grant_lifts_clinical_reading_only(admin_user) -> None:
    patient = PatientFactory(registrar=admin_user)
    assert patient_access_allowed(actor=admin_user, patient_id=patient.pk, action=PatientAction.READ)
    with pytest.raises(BreakGlassRequired):
        patient_access_check(actor=admin_user, patient_id=patient.pk, action=PatientAction.READ_CLINICAL)
    break_glass_grant(actor=admin_user, patient_id=patient.pk, reason=REASON)
    assert patient_access_allowed(actor=admin_user, patient_id=patient.pk, action=PatientAction.READ_CLINICAL)
    assert not patient_access_allowed(actor=admin_user, patient_id=patient.pk, action=PatientAction.WRITE_CLINICAL)
    assert not patient_access_allowed(actor=admin_user, patient_id=patient.pk, action=PatientAction.SIGN_NOTE)


def test_same_clinic_grants_nothing_without_its_test_and_what_the_test_says_with_it(
    doctor, admin_user, location
) -> None:
    patient = PatientFactory(registrar=admin_user)
    seen: list[tuple[int, int]] = []

    def works_where_patient_was_seen(actor: User, patient_id: int) -> bool:
        seen.append((actor.pk, patient_id))
        return actor.locations.filter(pk=location.pk).exists()

    installed = register_relationship_test(Relationship.SAME_CLINIC, None)  # the app's own test, put back below
    try:
        assert not patient_access_allowed(actor=doctor, patient_id=patient.pk, action=PatientAction.READ_CLINICAL)
        register_relationship_test(Relationship.SAME_CLINIC, works_where_patient_was_seen)
        assert patient_access_allowed(actor=doctor, patient_id=patient.pk, action=PatientAction.READ_CLINICAL)
        assert seen == [(doctor.pk, patient.pk)]
    finally:
        register_relationship_test(Relationship.SAME_CLINIC, installed)
    with pytest.raises(ValueError, match="cannot be replaced"):
        register_relationship_test(Relationship.CARE_TEAM, works_where_patient_was_seen)


def test_patients_reach_only_their_own_record(patient, admin_user) -> None:
    own = PatientFactory(registrar=admin_user, user=patient)
    other = PatientFactory(registrar=admin_user)
    for action in (PatientAction.READ, PatientAction.READ_CLINICAL, PatientAction.READ_ACCESS_LOG):
        assert patient_access_allowed(actor=patient, patient_id=own.pk, action=action)
        assert not patient_access_allowed(actor=patient, patient_id=other.pk, action=action)
    with pytest.raises(AccessDenied) as caught:
        patient_access_check(actor=patient, patient_id=other.pk, action=PatientAction.READ)
    assert not isinstance(caught.value, BreakGlassRequired)


# --- care team --------------------------------------------------------------------------------------------------


def test_care_team_membership_counts_only_within_start_and_end(doctor, admin_user) -> None:
    patient = PatientFactory(registrar=admin_user)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        membership = care_team_add(
            actor=admin_user,
            patient_id=patient.pk,
            member_id=doctor.pk,
            role="visit-practitioner",
            reason="today's video visit",
            end=start + datetime.timedelta(hours=2),
        )
        assert patient_access_allowed(actor=doctor, patient_id=patient.pk, action=PatientAction.READ_CLINICAL)
    with time_machine.travel(start + datetime.timedelta(hours=2), tick=False):
        assert not patient_access_allowed(actor=doctor, patient_id=patient.pk, action=PatientAction.READ_CLINICAL)
        with pytest.raises(CareTeamAlreadyEnded):
            care_team_end(actor=admin_user, membership_id=membership.pk, reason="visit over")
        # the period is over: the same person may join again
        care_team_add(
            actor=admin_user, patient_id=patient.pk, member_id=doctor.pk, role="specialist", reason="referral"
        )
    assert CareTeamMember.objects.filter(patient=patient).count() == 2


def test_care_team_add_rejects_overlap_wrong_member_and_records_who_and_why(doctor, nurse, admin_user) -> None:
    patient = PatientFactory(registrar=admin_user)
    marker = last_audit_id()
    first = care_team_add(
        actor=admin_user, patient_id=patient.pk, member_id=doctor.pk, role="assigned-doctor", reason="GP"
    )
    assert (first.added_by_id, first.reason, first.end) == (admin_user.pk, "GP", None)
    assert since(marker) == [("update", "CareTeam", "success", "")]
    with pytest.raises(CareTeamOverlap):
        care_team_add(actor=admin_user, patient_id=patient.pk, member_id=doctor.pk, role="specialist", reason="x")
    with pytest.raises(InvalidAccessRequest) as caught:
        care_team_add(actor=admin_user, patient_id=patient.pk, member_id=nurse.pk, role="specialist", reason="x")
    assert set(caught.value.fields) == {"member_id"}
    with pytest.raises(InvalidAccessRequest) as caught:
        care_team_add(actor=admin_user, patient_id=patient.pk, member_id=nurse.pk, role="nurse", reason=" ")
    assert set(caught.value.fields) == {"reason"}
    # the assigned doctor manages the team; other team members do not
    care_team_add(actor=doctor, patient_id=patient.pk, member_id=nurse.pk, role="nurse", reason="practice nurse")
    with pytest.raises(AccessDenied):
        care_team_add(actor=nurse, patient_id=patient.pk, member_id=doctor.pk, role="specialist", reason="x")
    ended = care_team_end(actor=doctor, membership_id=first.pk, reason="moved away")
    assert (ended.ended_by_id, ended.end_reason) == (doctor.pk, "moved away")
    assert ended.end is not None


def test_database_rejects_overlapping_periods_even_without_the_service(doctor, admin_user) -> None:
    patient = PatientFactory(registrar=admin_user)
    now = timezone.now()
    row = {"patient": patient, "member": doctor, "role": "specialist", "added_by": admin_user, "reason": "r"}
    CareTeamMember.objects.create(**row, start=now, end=now + datetime.timedelta(days=1))
    CareTeamMember.objects.create(**row, start=now + datetime.timedelta(days=1))  # adjacent: [) does not overlap
    with pytest.raises(IntegrityError), transaction.atomic():
        CareTeamMember.objects.create(**row, start=now + datetime.timedelta(hours=3))


def test_care_team_api_lists_adds_and_ends(doctor, scheduler, admin_user) -> None:
    patient = PatientFactory(registrar=admin_user)
    desk = signed_in("sched-test")
    added = send(
        desk,
        "post",
        f"{BASE}/patients/{patient.pk}/care-team/",
        {"member_id": doctor.pk, "role": "assigned-doctor", "reason": "new GP"},
    )
    assert added.status_code == 201, added.json()
    assert added.json()["member"] == {"id": doctor.pk, "display_name": doctor.display_name}
    assert added.json()["active"] is True
    again = send(
        desk,
        "post",
        f"{BASE}/patients/{patient.pk}/care-team/",
        {"member_id": doctor.pk, "role": "specialist", "reason": "again"},
    )
    assert (again.status_code, again.json()["code"]) == (409, "care_team_overlap")
    listed = signed_in("dr-test").get(f"{BASE}/patients/{patient.pk}/care-team/")
    assert [r["id"] for r in listed.json()["results"]] == [added.json()["id"]]
    ended = send(desk, "post", f"{BASE}/care-team/{added.json()['id']}/end/", {"reason": "moved away"})
    assert (ended.status_code, ended.json()["active"]) == (200, False)
    twice = send(desk, "post", f"{BASE}/care-team/{added.json()['id']}/end/", {"reason": "moved away"})
    assert (twice.status_code, twice.json()["code"]) == (409, "care_team_already_ended")
    assert send(desk, "post", f"{BASE}/care-team/999999/end/", {"reason": "x"}).status_code == 404


DESKS = 8  # the pool gives the process 10 connections; the main thread holds one


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_of_the_same_member_exactly_one_wins_the_others_409() -> None:
    """Eight desks add one doctor to one patient's team at the same moment: all of them wait at a table lock the
    test holds, then insert at once. Exactly one 201 and seven clean 409s. Two inserters that each find the other's
    uncommitted row while checking the constraint would wait for each other, and PostgreSQL would fail one with a
    deadlock error (a 500) after a second; the adds queue on a lock per patient and member, so none does."""
    org = OrganizationFactory(name="Race Health")
    names = [f"desk-{i}" for i in range(DESKS)]
    for name in names:
        UserFactory(username=name, roles=["scheduler"], organization=org)
    doctor = UserFactory(username="dr-race", roles=["practitioner"], organization=org)
    patient = PatientFactory(registrar=UserFactory(username="adm-race", roles=["admin"], organization=org))
    clients = {name: signed_in(name) for name in names}
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def add(name: str) -> None:
        try:
            results[name] = send(
                clients[name],
                "post",
                f"{BASE}/patients/{patient.pk}/care-team/",
                {"member_id": doctor.pk, "role": "visit-practitioner", "reason": f"booked by {name}"},
            )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=add, args=(name,)) for name in clients]
    with transaction.atomic():
        with connection.cursor() as cursor:  # every add queues behind this lock, then they race for the period
            cursor.execute("LOCK TABLE ehr_careteammember IN SHARE MODE")
        for thread in threads:
            thread.start()
        wait_until(lambda: _waiting_on_locks() >= DESKS, timeout=20, what="every add blocked on a lock")
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    statuses = sorted(r.status_code for r in results.values())
    assert statuses == [201] + [409] * (DESKS - 1)
    assert {r.json()["code"] for r in results.values() if r.status_code == 409} == {"care_team_overlap"}
    assert CareTeamMember.objects.filter(patient=patient, member=doctor).count() == 1
    assert AuditEvent.objects.filter(patient_id=patient.pk, entity_type="CareTeam").count() == 1


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()")
        return int(cursor.fetchone()[0])


# --- break-the-glass --------------------------------------------------------------------------------------------


def test_break_glass_opens_the_record_for_a_while_and_every_access_is_flagged(doctor, admin_user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BREAK_GLASS_MINUTES = 30
    patient = PatientFactory(registrar=admin_user)
    client = signed_in("dr-test")
    denied = client.get(f"{BASE}/patients/{patient.pk}/")
    assert (denied.status_code, denied.json()["code"]) == (403, "break_glass_required")
    short = send(client, "post", f"{BASE}/patients/{patient.pk}/break-glass/", {"reason": "urgent"})
    assert short.status_code == 400
    assert BreakGlassGrant.objects.count() == 0

    marker = last_audit_id()
    granted = send(client, "post", f"{BASE}/patients/{patient.pk}/break-glass/", {"reason": REASON})
    assert granted.status_code == 201, granted.json()
    grant = BreakGlassGrant.objects.get()
    assert grant.expires_at - grant.granted_at == datetime.timedelta(minutes=30)
    assert granted.json()["review_status"] == "pending"
    row = AuditEvent.objects.get(id__gt=marker)
    assert (row.action, row.purpose, row.detail, row.patient_id) == (
        "break_glass",
        "emergency",
        {"grant": grant.pk},
        patient.pk,
    )
    event = StreamEvent.objects.get(stream="role:admin", type="break_glass.granted")
    assert event.data == {"id": grant.pk}  # ids only: no name, no reason

    marker = last_audit_id()
    assert client.get(f"{BASE}/patients/{patient.pk}/").status_code == 200
    flagged = AuditEvent.objects.get(id__gt=marker, purpose="break_glass")
    assert (flagged.action, flagged.detail["grant"], flagged.patient_id) == ("read", grant.pk, patient.pk)
    assert since(marker) == [("read", "Patient", "success", "break_glass"), ("read", "Patient", "success", "")]

    with time_machine.travel(grant.expires_at, tick=False), pytest.raises(BreakGlassRequired):
        patient_get(actor=doctor, patient_id=patient.pk)


def test_access_through_the_care_team_is_not_flagged_as_an_emergency(doctor, admin_user) -> None:
    patient = PatientFactory(registrar=admin_user)
    CareTeamMemberFactory(patient=patient, member=doctor, manager=admin_user)
    break_glass_grant(actor=doctor, patient_id=patient.pk, reason=REASON)
    marker = last_audit_id()
    patient_get(actor=doctor, patient_id=patient.pk)
    assert since(marker) == [("read", "Patient", "success", "")]


def test_review_queue_lists_pending_newest_first_and_review_is_once(doctor, nurse, admin_user) -> None:
    first_patient = PatientFactory(registrar=admin_user, given_name="Ada", family_name="Lovelace")
    second_patient = PatientFactory(registrar=admin_user)
    older = break_glass_grant(actor=nurse, patient_id=first_patient.pk, reason=REASON)
    newer = break_glass_grant(actor=doctor, patient_id=second_patient.pk, reason=REASON)
    admin = signed_in("admin-test")
    marker = last_audit_id()
    with CaptureQueriesContext(connection) as queries:
        queue = admin.get(f"{BASE}/break-glass/", {"review_status": "pending"})
    assert queue.status_code == 200
    rows = queue.json()["results"]
    assert [r["id"] for r in rows] == [newer.pk, older.pk]
    assert rows[1]["actor"] == {"id": nurse.pk, "display_name": nurse.display_name}
    assert rows[1]["actor_role"] == "nurse"
    assert (rows[1]["patient_mrn"], rows[1]["patient_name"]) == (first_patient.mrn, "Ada Lovelace")
    assert rows[1]["reason"] == REASON
    # user, access check audit-free, audit insert, count, page: constant, not per row
    assert len(queries) <= 5, [q["sql"] for q in queries]
    assert since(marker) == [("read", "BreakGlassReview", "success", "audit_review")]

    review = send(admin, "post", f"{BASE}/break-glass/{older.pk}/review/", {"outcome": "inappropriate"})
    assert (review.status_code, review.json()["fields"].keys()) == (400, {"note"})
    reviewed = send(
        admin, "post", f"{BASE}/break-glass/{older.pk}/review/", {"outcome": "inappropriate", "note": "not on shift"}
    )
    assert reviewed.status_code == 200, reviewed.json()
    assert reviewed.json()["review_status"] == "inappropriate"
    assert reviewed.json()["reviewed_by"]["id"] == admin_user.pk
    again = send(admin, "post", f"{BASE}/break-glass/{older.pk}/review/", {"outcome": "appropriate"})
    assert (again.status_code, again.json()["code"]) == (409, "break_glass_already_reviewed")
    pending = admin.get(f"{BASE}/break-glass/", {"review_status": "pending"}).json()["results"]
    assert [r["id"] for r in pending] == [newer.pk]
    row = AuditEvent.objects.filter(entity_type="BreakGlassGrant", action="update").get()
    assert (row.patient_id, row.detail) == (first_patient.pk, {"grant": older.pk, "outcome": "inappropriate"})


def test_an_admin_cannot_review_their_own_break_glass(admin_user) -> None:
    patient = PatientFactory(registrar=admin_user)
    grant = break_glass_grant(actor=admin_user, patient_id=patient.pk, reason=REASON)
    response = send(
        signed_in("admin-test"), "post", f"{BASE}/break-glass/{grant.pk}/review/", {"outcome": "appropriate"}
    )
    assert (response.status_code, response.json()["code"]) == (403, "cannot_review_own_break_glass")


# --- the patient's access log -----------------------------------------------------------------------------------


def test_patient_sees_who_opened_their_record_in_plain_language(patient, doctor, nurse, scheduler, admin_user) -> None:
    billing = UserFactory(username="billing", roles=["billing"], organization=admin_user.organization)
    record = PatientFactory(registrar=scheduler, user=patient, national_id="PT-123456789")
    other = PatientFactory(registrar=scheduler)
    CareTeamMemberFactory(patient=record, member=nurse, manager=admin_user)
    signed_in("nurse-test").get(f"{BASE}/patients/{record.pk}/")
    signed_in("billing").get(f"{BASE}/patients/{record.pk}/identifiers/", {"purpose": "payment"})
    dr = signed_in("dr-test")
    dr.get(f"{BASE}/patients/{record.pk}/")  # refused: not in their care
    send(dr, "post", f"{BASE}/patients/{record.pk}/break-glass/", {"reason": REASON})
    dr.get(f"{BASE}/patients/{record.pk}/")
    signed_in("admin-test").get(f"{BASE}/audit-events/", {"patient_id": record.pk})  # audit review: not shown
    signed_in("dr-test").get(f"{BASE}/patients/{other.pk}/")  # someone else's record: not shown
    me = signed_in("pt-test")
    me.get(f"{BASE}/patients/{record.pk}/")

    marker = last_audit_id()
    response = me.get(f"{BASE}/me/access-log/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    lines = [(e["who"], e["role"], e["what"], e["emergency"]) for e in response.json()["results"]]
    assert lines == [
        ("You", "Patient", "viewed your record", False),
        (doctor.display_name, "Doctor", "viewed your record", False),
        (doctor.display_name, "Doctor", "used emergency access (break-the-glass) to your record", True),
        (doctor.display_name, "Doctor", "opened your record in an emergency (break-the-glass)", True),
        (doctor.display_name, "Doctor", "was refused access to your record", False),
        (billing.display_name, "Billing", "viewed your identity numbers", False),
        (nurse.display_name, "Nurse", "viewed your record", False),
        (admin_user.display_name, "Administrator", "changed your care team", False),
        (scheduler.display_name, "Front desk", "registered you as a patient", False),
    ]
    assert response.json()["results"][5]["purpose"] == "Payment or insurance"
    assert since(marker) == [("read", "AccessLog", "success", "")]
    # the reading itself appears next time
    assert me.get(f"{BASE}/me/access-log/").json()["results"][0]["what"] == "viewed who opened your record"


def test_access_log_is_for_patients_only(doctor) -> None:
    response = signed_in("dr-test").get(f"{BASE}/me/access-log/")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert AuditEvent.objects.filter(entity_type="AccessLog", outcome="denied", actor=doctor).count() == 1


def test_search_stays_open_to_clinicians_so_they_can_find_whom_to_treat(doctor, admin_user) -> None:
    patient = PatientFactory(registrar=admin_user, family_name="Quattlebaum")
    assert [p.pk for p in patient_search(actor=doctor, query="Quattlebaum")] == [patient.pk]
    assert Patient.objects.filter(pk=patient.pk).exists()
