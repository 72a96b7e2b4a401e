"""Duplicate detection on updates: a change to a name, the birth date, the phone or the email that makes a record
look like another active patient answers 409 ``duplicate_suspected`` with the candidates, as registration does, and
writes nothing; ``"allow_duplicate": true`` saves anyway (and says so in the audit row). Registrations and updates
landing on the same birth date are serialised, so they cannot both miss each other (a real race)."""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from ehr.errors import DuplicateSuspected
from ehr.models import AuditEvent, Patient, PatientVersion
from ehr.services.patients import PatientInput, patient_register, patient_update
from tests.conftest import csrf_login
from tests.factories import PatientFactory
from tests.support.servers import wait_until

BORN = datetime.date(1984, 5, 17)
OTHER_DAY = datetime.date(1990, 2, 3)


def signed_in(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def patch(client: APIClient, patient: Patient, body: dict[str, Any], version: int = 1) -> Any:
    return client.patch(
        f"/api/v1/ehr/patients/{patient.pk}/",
        {"reason": "front desk correction", **body},
        format="json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
        HTTP_IF_MATCH=f'"{version}"',
    )


@pytest.fixture
def existing() -> Patient:
    return PatientFactory(given_name="Marta", family_name="Quintela", birth_date=BORN, phone="+351911000111")


@pytest.fixture
def other() -> Patient:
    return PatientFactory(given_name="Rui", family_name="Pestana", birth_date=BORN, phone="+351922000222")


@pytest.fixture
def desk(scheduler: Any) -> APIClient:
    return signed_in("sched-test")


def last_audit_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"given_name": "Marta", "family_name": "Quintela"},  # the name
        {"phone": "+351 911 000 111"},  # the phone (normalised before comparing)
        {"email": "MARTA.Q@example.test"},  # the email, case-insensitively (set on the existing record below)
    ],
    ids=["name", "phone", "email"],
)
def test_an_update_that_looks_like_another_patient_is_refused_with_the_candidates(
    desk, existing, other, change
) -> None:
    Patient.objects.filter(pk=existing.pk).update(email="marta.q@example.test")
    marker = last_audit_id()
    response = patch(desk, other, change)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "duplicate_suspected"
    assert "save anyway" in body["detail"]
    assert [c["id"] for c in body["candidates"]] == [existing.pk]
    assert body["candidates"][0]["mrn"] == existing.mrn
    other.refresh_from_db()
    assert (other.given_name, other.phone, other.version) == ("Rui", "+351922000222", 1)
    assert PatientVersion.objects.filter(patient=other).count() == 1
    # Nothing written: only the (audited) read of the candidates' summaries.
    rows = list(AuditEvent.objects.filter(id__gt=marker).values_list("action", "entity_type", "purpose"))
    assert rows == [("read", "PatientSearch", "duplicate_check")]


@pytest.mark.django_db
def test_changing_the_birth_date_onto_a_look_alike_is_refused(desk, existing) -> None:
    twin = PatientFactory(given_name="Marta", family_name="Quintela", birth_date=OTHER_DAY)
    response = patch(desk, twin, {"birth_date": BORN.isoformat()})
    assert (response.status_code, response.json()["code"]) == (409, "duplicate_suspected")
    assert [c["id"] for c in response.json()["candidates"]] == [existing.pk]


@pytest.mark.django_db
def test_save_anyway_with_allow_duplicate(desk, existing, other) -> None:
    response = patch(desk, other, {"given_name": "Marta", "family_name": "Quintela", "allow_duplicate": True})
    assert response.status_code == 200
    assert (response.json()["given_name"], response.json()["version"]) == ("Marta", 2)
    row = AuditEvent.objects.filter(action="update", patient_id=other.pk).latest("id")
    assert row.detail == {"fields": ["given_name", "family_name"], "version": 2, "duplicate_override": True}


@pytest.mark.django_db
def test_the_record_is_not_its_own_duplicate_and_other_fields_are_not_checked(desk, existing, other) -> None:
    own = patch(desk, existing, {"given_name": "Martha"})  # similar to itself only
    assert own.status_code == 200
    # A record that already looks like another (registered anyway) can still get its address fixed.
    lookalike = PatientFactory(given_name="Martha", family_name="Quintela", birth_date=BORN)
    city = patch(desk, lookalike, {"city": "Braga"})
    assert (city.status_code, city.json()["city"]) == (200, "Braga")
    row = AuditEvent.objects.filter(action="update", patient_id=lookalike.pk).latest("id")
    assert row.detail["duplicate_override"] is False


@pytest.mark.django_db
def test_allow_duplicate_must_be_a_boolean(desk, other) -> None:
    response = patch(desk, other, {"city": "Faro", "allow_duplicate": "perhaps"})
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "allow_duplicate" in response.json()["fields"]


@pytest.mark.django_db
def test_the_service_raises_duplicate_suspected(scheduler, existing, other) -> None:
    with pytest.raises(DuplicateSuspected) as refused:
        patient_update(
            actor=scheduler,
            patient_id=other.pk,
            expected_version=1,
            changes={"given_name": "Marta", "family_name": "Quintela"},
            reason="typo",
        )
    assert refused.value.candidate_ids == [existing.pk]


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_a_registration_and_an_update_racing_onto_the_same_person_cannot_both_succeed(scheduler) -> None:
    """Both wait behind the birth date's lock (held here), then go at once: exactly one is written."""
    moving = PatientFactory(given_name="Rui", family_name="Pestana", birth_date=OTHER_DAY)
    outcomes: dict[str, str] = {}
    errors: list[BaseException] = []

    def run(name: str, work: Any) -> None:
        try:
            work()
            outcomes[name] = "written"
        except DuplicateSuspected:
            outcomes[name] = "duplicate_suspected"
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    register = threading.Thread(
        target=run,
        args=(
            "register",
            lambda: patient_register(
                actor=scheduler,
                data=PatientInput(given_name="Ines", family_name="Valadares", birth_date=BORN, sex="female"),
            ),
        ),
    )
    update = threading.Thread(
        target=run,
        args=(
            "update",
            lambda: patient_update(
                actor=scheduler,
                patient_id=moving.pk,
                expected_version=1,
                changes={"given_name": "Ines", "family_name": "Valadares", "birth_date": BORN},
                reason="registered under the wrong name",
            ),
        ),
    )
    with transaction.atomic():
        with connection.cursor() as cursor:  # the lock registrations and updates take for this birth date
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"ehr.patient_register:{BORN}"])
        register.start()
        update.start()
        wait_until(lambda: waiting_on_locks() >= 2, timeout=20, what="both writes blocked on the birth-date lock")
    for thread in (register, update):
        thread.join(timeout=30)
    assert errors == []
    assert sorted(outcomes.values()) == ["duplicate_suspected", "written"]
    assert Patient.objects.filter(given_name="Ines", family_name="Valadares", birth_date=BORN).count() == 1
