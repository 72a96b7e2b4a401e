from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.test import Client


def session_headers(user, origin: str = "http://testserver") -> list[tuple[bytes, bytes]]:  # type: ignore[no-untyped-def]
    """Headers of a browser signed in as ``user``: its session cookie and a same-site Origin."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
        (b"origin", origin.encode()),
    ]


# --- video visits (issue 5) -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitRefs:
    """A waiting video visit and its two participants, as the signaling tests need them."""

    id: str
    patient_user: Any
    practitioner: Any
    patient_name: str


def make_visit(*, practitioner: Any, patient_user: Any) -> VisitRefs:
    """A waiting visit of ``patient_user`` (a registered patient with that portal login) with ``practitioner``."""
    from tests.factories import PatientFactory
    from tests.factories.telehealth import visit_row

    patient = PatientFactory(user=patient_user, given_name="Secretname", family_name="Signalpatient")
    row = visit_row(patient=patient, practitioner=practitioner)
    return VisitRefs(id=str(row.pk), patient_user=patient_user, practitioner=practitioner, patient_name="Secretname")


def _move(visit: VisitRefs, status: str) -> None:
    from django.db import transaction

    from telehealth.channels import visit_state_send_on_commit
    from telehealth.models import Visit
    from telehealth.services.transitions import visit_transition

    with transaction.atomic():
        row = Visit.objects.select_for_update().get(pk=visit.id)
        visit_transition(row, status)
        row.save()
        visit_state_send_on_commit(visit_id=row.pk, status=status)


def visit_admit_now(visit: VisitRefs) -> None:
    """The practitioner admits the patient (visit in progress; the sockets get ``visit.state``)."""
    _move(visit, "in-progress")


def visit_end_now(visit: VisitRefs) -> None:
    """The practitioner ends the visit (finished; the sockets get ``visit.state`` and close with 4410)."""
    _move(visit, "finished")


def visit_patient_connected(visit: VisitRefs) -> bool:
    from telehealth.models import Visit

    return bool(Visit.objects.values_list("patient_connected", flat=True).get(pk=visit.id))


@pytest.fixture
def visit(doctor: Any, patient: Any) -> VisitRefs:
    return make_visit(practitioner=doctor, patient_user=patient)
