"""Two browsers open the same guest link at the same moment, against the real PostgreSQL: exactly one becomes the
guest, the other gets ``InvitationUsed``.

The racers are threads with their own connections and their own (real, database-backed) sessions. The main thread
holds the invitation's row lock while they start and waits (through ``pg_locks``) until both are blocked on it, so
both have verified the token and read their session before the lock decides; then it lets go.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.cached_db import SessionStore
from django.db import connection, transaction
from django.test import RequestFactory

from telehealth import services
from telehealth.errors import InvitationUsed, TelehealthError
from telehealth.models import VisitInvitation
from telehealth.services.guests import session_hash
from tests.support.servers import wait_until
from tests.telehealth.test_admit_race import _blocked_on_visit_lock as blocked_on_row_locks
from tests.telehealth.test_visit_flow import check_in

pytestmark = pytest.mark.django_db(transaction=True)


def browser_request() -> Any:
    request = RequestFactory().post("/api/v1/telehealth/invitations/consume/")
    request.session = SessionStore()
    request.user = AnonymousUser()
    return request


def test_two_browsers_consuming_one_link_at_once_exactly_one_wins(appointment, patient_user, doctor) -> None:
    visit_id = check_in(patient_user, appointment).id
    ref = services.invitation_create(actor=doctor, visit_id=visit_id, role="interpreter", name="Ana Interp")
    requests = [browser_request(), browser_request()]
    won: list[Any] = []
    refused: list[TelehealthError] = []
    crashed: list[BaseException] = []
    start = threading.Barrier(3)

    def racer(request: Any) -> None:
        try:
            start.wait()
            won.append((request, services.invitation_consume(token=ref.token, request=request)))
        except TelehealthError as exc:
            refused.append(exc)
        except BaseException as exc:
            crashed.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=racer, args=(r,)) for r in requests]
    with transaction.atomic():
        VisitInvitation.objects.select_for_update().get(pk=ref.id)  # the gate
        for thread in threads:
            thread.start()
        start.wait()
        wait_until(lambda: blocked_on_row_locks() >= 2, timeout=30, what="both consumes blocked on the row lock")
    for thread in threads:
        thread.join(60)
    assert not crashed
    assert len(won) == 1
    assert len(refused) == 1
    assert isinstance(refused[0], InvitationUsed)
    winner_request, info = won[0]
    assert info.participant_id == ref.participant_id
    row = VisitInvitation.objects.get(pk=ref.id)
    assert row.used_session == session_hash(winner_request.session.session_key)
    loser = next(r for r in requests if r is not winner_request)
    assert "telehealth_guests" not in loser.session
    assert winner_request.session["telehealth_guests"] == [ref.id]
