"""Two clinicians PATCH the same patient with the same If-Match at the same moment: exactly one wins.

Each clinician runs in its own thread with its own database connection. To make the race real rather than lucky,
the test holds the patient's row lock while both requests start, waits (on a condition, via pg_locks) until both
are blocked on that lock, then lets them go at once.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from ehr.models import AuditEvent, Patient, PatientVersion
from tests.conftest import csrf_login
from tests.factories import CareTeamMemberFactory, PatientFactory
from tests.support.servers import wait_until


def waiting_on_locks() -> int:
    """Sessions of this database waiting for a lock (pg_locks is live; pg_stat_activity would be a snapshot)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_one_200_one_412_and_the_loser_changes_nothing(doctor, doctor2) -> None:
    patient = PatientFactory(registrar=doctor, city="Origin")
    for clinician in (doctor, doctor2):  # access rule: clinicians edit patients in their care
        CareTeamMemberFactory(patient=patient, member=clinician)
    clients = {}
    for username in ("dr-test", "dr-two"):
        client = APIClient(enforce_csrf_checks=True)
        assert csrf_login(client, username).status_code == 200
        clients[username] = client
    edits = {"dr-test": "Lisbon", "dr-two": "Porto"}
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def edit(username: str) -> None:
        try:
            client = clients[username]
            results[username] = client.patch(
                f"/api/v1/ehr/patients/{patient.pk}/",
                {"city": edits[username], "reason": f"edit by {username}"},
                format="json",
                HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
                HTTP_IF_MATCH='"1"',
            )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=edit, args=(name,)) for name in edits]
    with transaction.atomic():
        Patient.objects.select_for_update().get(pk=patient.pk)  # both requests will queue behind this lock
        for thread in threads:
            thread.start()
        wait_until(lambda: waiting_on_locks() >= 2, timeout=20, what="both PATCHes blocked on the row lock")
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    statuses = sorted(response.status_code for response in results.values())
    assert statuses == [200, 412]
    winner = next(name for name, response in results.items() if response.status_code == 200)
    loser = next(name for name, response in results.items() if response.status_code == 412)
    assert results[loser].json()["code"] == "version_conflict"
    assert results[loser].json()["current_version"] == 2

    patient.refresh_from_db()
    assert (patient.city, patient.version) == (edits[winner], 2)
    versions = list(PatientVersion.objects.filter(patient=patient).order_by("version"))
    assert [v.version for v in versions] == [1, 2]
    assert versions[1].reason == f"edit by {winner}"
    assert AuditEvent.objects.filter(patient_id=patient.pk, action="update", entity_type="Patient").count() == 1
