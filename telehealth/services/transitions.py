"""The visit state machine: one table, one function. Nothing else assigns ``Visit.status``."""

from __future__ import annotations

from django.utils import timezone

from telehealth.errors import InvalidTransition
from telehealth.models import Visit, VisitStatus

S = VisitStatus

VISIT_TRANSITIONS: dict[str, frozenset[str]] = {
    S.WAITING: frozenset({S.IN_PROGRESS, S.LEFT}),
    S.IN_PROGRESS: frozenset({S.FINISHED}),
    S.LEFT: frozenset({S.WAITING}),
    S.FINISHED: frozenset(),
}


def visit_transition(visit: Visit, target: str) -> str:
    """Move ``visit`` to ``target`` if the table allows it, stamping the matching time, bumping ``version``;
    returns the previous status. Raises ``InvalidTransition``. Does not save (the calling service does, under its
    row lock). Finishing records ``ended_at`` and ``duration_seconds`` (from admission)."""
    current = visit.status
    if target not in VISIT_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(current, target)
    now = timezone.now()
    visit.status = target
    if target == S.IN_PROGRESS:
        visit.admitted_at = now
    elif target == S.FINISHED:
        visit.ended_at = now
        assert visit.admitted_at is not None  # the table admits before it finishes
        visit.duration_seconds = max(0, int((now - visit.admitted_at).total_seconds()))
    elif target == S.WAITING:
        visit.checked_in_at = now
        visit.patient_left_at = None
    elif target == S.LEFT:
        visit.patient_left_at = visit.patient_left_at or now
    visit.version += 1
    visit.updated_at = now
    return current
