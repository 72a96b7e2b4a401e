"""The visit state machine's table and the invariants PostgreSQL enforces even against code that skips services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from telehealth.errors import InvalidTransition
from telehealth.models import CallQualityReport, CheckInLink, ClinicianNotice, Visit, VisitMessage
from telehealth.services.transitions import VISIT_TRANSITIONS, visit_transition
from tests.factories.telehealth import visit_row

pytestmark = pytest.mark.django_db

ALL = ["waiting", "in-progress", "finished", "left"]
ALLOWED = {("waiting", "in-progress"), ("waiting", "left"), ("in-progress", "finished"), ("left", "waiting")}


def test_the_transition_table_is_exactly_the_contracts() -> None:
    assert {(a, b) for a, targets in VISIT_TRANSITIONS.items() for b in targets} == ALLOWED


@pytest.mark.parametrize(("current", "target"), [(a, b) for a in ALL for b in ALL])
def test_visit_transition_allows_only_the_table(current: str, target: str) -> None:
    now = timezone.now()
    visit = Visit(status=current, admitted_at=now - dt.timedelta(minutes=5), version=1)
    if (current, target) in ALLOWED:
        assert visit_transition(visit, target) == current
        assert visit.status == target
        assert visit.version == 2
        if target == "finished":
            assert visit.ended_at is not None
            assert visit.duration_seconds is not None
            assert visit.duration_seconds >= 300
    else:
        with pytest.raises(InvalidTransition):
            visit_transition(visit, target)
        assert visit.status == current


def _rejected(**changes: object) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Visit.objects.filter(pk=changes.pop("pk")).update(**changes)


def test_sql_rejects_unknown_status_and_unadmitted_or_unended_visits(patient, doctor) -> None:
    visit = visit_row(patient=patient, practitioner=doctor)
    _rejected(pk=visit.pk, status="teleported")
    _rejected(pk=visit.pk, status="in-progress")  # no admitted_at
    _rejected(pk=visit.pk, status="finished", admitted_at=timezone.now())  # no ended_at / duration
    _rejected(pk=visit.pk, version=0)
    visit.refresh_from_db()
    assert visit.status == "waiting"


def test_sql_allows_one_visit_per_appointment(patient, doctor) -> None:
    visit = visit_row(patient=patient, practitioner=doctor)
    with pytest.raises(IntegrityError), transaction.atomic():
        visit_row(patient=patient, practitioner=doctor, appointment_id=visit.appointment_id)


def test_sql_allows_one_visit_in_progress_per_practitioner(patient, patient2, doctor) -> None:
    now = timezone.now()
    visit_row(patient=patient, practitioner=doctor, status="in-progress", admitted_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        visit_row(patient=patient2, practitioner=doctor, status="in-progress", admitted_at=now)


def test_sql_rejects_empty_or_long_messages_and_second_active_notice(patient, doctor) -> None:
    visit = visit_row(patient=patient, practitioner=doctor)
    for body in ("", "x" * 1001):
        with pytest.raises(IntegrityError), transaction.atomic():
            VisitMessage.objects.create(visit=visit, sender=doctor, body=body)
    with pytest.raises(IntegrityError), transaction.atomic():
        VisitMessage.objects.create(visit=visit, sender=doctor, body="hi", kind="shout")
    ClinicianNotice.objects.create(practitioner=doctor, body="Late")
    with pytest.raises(IntegrityError), transaction.atomic():
        ClinicianNotice.objects.create(practitioner=doctor, body="Very late")
    assert not VisitMessage.objects.exists()


def test_sql_rejects_links_expiring_before_creation_and_reports_with_unknown_roles(patient, doctor) -> None:
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        CheckInLink.objects.create(appointment_id=1, expires_at=now - dt.timedelta(seconds=1), created_at=now)
    visit = visit_row(patient=patient, practitioner=doctor)
    with pytest.raises(IntegrityError), transaction.atomic():
        CallQualityReport.objects.create(visit=visit, user=doctor, role="spectator")
