"""Two doctors admit the same pool patient at the same moment, against the real PostgreSQL: exactly one wins.

The racers are threads with their own connections. The main thread holds the visit's row lock while they start
and waits (through ``pg_locks``) until both are blocked on it, so both have passed every check made before the
lock; then it lets go. What decides the race is the row lock taken first thing in ``visit_admit``.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction

from ehr.models import Encounter
from scheduling.selectors import appointment_get
from telehealth import services
from telehealth.errors import TelehealthError, VisitNotWaiting
from telehealth.models import Visit
from tests.support.servers import wait_until
from tests.telehealth.test_visit_flow import check_in

pytestmark = pytest.mark.django_db(transaction=True)


def _blocked_on_visit_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(DISTINCT pid) FROM pg_locks
            WHERE NOT granted AND pid <> pg_backend_pid() AND locktype IN ('transactionid', 'tuple')
            """
        )
        return int(cursor.fetchone()[0])


def test_two_doctors_admitting_one_pool_patient_exactly_one_wins(appointment, patient_user, doctor, doctor2) -> None:
    visit_id = check_in(patient_user, appointment).id
    won: dict[int, Any] = {}
    refused: dict[int, TelehealthError] = {}
    crashed: list[BaseException] = []
    start = threading.Barrier(3)

    def racer(user: Any) -> None:
        try:
            start.wait()
            won[user.pk] = services.visit_admit(actor=user, visit_id=visit_id)
        except TelehealthError as exc:
            refused[user.pk] = exc
        except BaseException as exc:
            crashed.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=racer, args=(u,)) for u in (doctor, doctor2)]
    with transaction.atomic():
        Visit.objects.select_for_update().get(pk=visit_id)  # the gate
        for thread in threads:
            thread.start()
        start.wait()
        wait_until(lambda: _blocked_on_visit_lock() >= 2, timeout=30, what="both admits blocked on the visit lock")
    for thread in threads:
        thread.join(60)
    assert not crashed
    assert len(won) == 1
    assert len(refused) == 1
    assert isinstance(next(iter(refused.values())), VisitNotWaiting)
    (winner,) = won
    visit = Visit.objects.get(pk=visit_id)
    assert (visit.status, visit.practitioner_id) == ("in-progress", winner)
    assert appointment_get(appointment_id=appointment.id).visit_started_at is not None
    assert Encounter.objects.get(pk=appointment.encounter_id).status == "in-progress"
