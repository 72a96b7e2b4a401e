"""Two tabs autosave the same draft note at the same moment, both based on version 1: exactly one wins, the other
gets 412 with the note as it now is (so its editor can merge what was typed), and nothing is half-written.

Each tab runs in its own thread with its own database connection. The test holds the note's row lock while both
requests start, waits (on pg_locks) until both are blocked on it, then releases them together.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from ehr.models import AuditEvent, ClinicalNote, ClinicalNoteVersion
from ehr.services.clinical import clinical_note_add
from tests.conftest import csrf_login
from tests.factories import EncounterFactory, PatientFactory, care_team_join
from tests.support.servers import wait_until


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_two_tabs_autosave_the_same_draft_one_wins_the_other_gets_412_with_current_text(doctor) -> None:
    chart = PatientFactory()
    care_team_join(patient=chart, member=doctor)
    encounter = EncounterFactory(patient=chart, practitioner=doctor)
    note = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"subjective": "Cough"})
    tabs = {}
    for tab in ("left", "right"):
        client = APIClient(enforce_csrf_checks=True)
        assert csrf_login(client, "dr-test").status_code == 200
        tabs[tab] = client
    typed = {"left": "Plan typed in the left tab", "right": "Plan typed in the right tab"}
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def autosave(tab: str) -> None:
        try:
            client = tabs[tab]
            results[tab] = client.patch(
                f"/api/v1/ehr/notes/{note.id}/",
                {"plan": typed[tab]},
                format="json",
                HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
                HTTP_IF_MATCH='"1"',
            )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=autosave, args=(tab,)) for tab in typed]
    with transaction.atomic():
        ClinicalNote.objects.select_for_update().get(pk=note.id)
        for thread in threads:
            thread.start()
        wait_until(lambda: waiting_on_locks() >= 2, timeout=20, what="both autosaves blocked on the note's row lock")
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    assert sorted(r.status_code for r in results.values()) == [200, 412]
    winner = next(tab for tab, r in results.items() if r.status_code == 200)
    loser = next(tab for tab, r in results.items() if r.status_code == 412)
    conflict = results[loser].json()
    assert conflict["code"] == "version_conflict"
    assert conflict["current_version"] == 2
    assert conflict["current"] == {"subjective": "Cough", "objective": "", "assessment": "", "plan": typed[winner]}

    # The losing tab merges its text into the current version and saves again: nothing typed is lost.
    merged = f"{typed[winner]}\n{typed[loser]}"
    client = tabs[loser]
    retry = client.patch(
        f"/api/v1/ehr/notes/{note.id}/",
        {"plan": merged},
        format="json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
        HTTP_IF_MATCH=f'"{conflict["current_version"]}"',
    )
    assert retry.status_code == 200
    row = ClinicalNote.objects.get(pk=note.id)
    assert (row.plan, row.version) == (merged, 3)
    assert list(
        ClinicalNoteVersion.objects.filter(record_id=note.id).order_by("version").values_list("version", flat=True)
    ) == [1, 2, 3]
    assert AuditEvent.objects.filter(entity_type="ClinicalNote", action="update", entity_id=str(note.id)).count() == 2
