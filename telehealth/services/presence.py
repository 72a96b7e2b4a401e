"""Whether the waiting patient's socket is connected (the grace period) and the doctors' console heartbeat."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from telehealth import events
from telehealth.models import Visit, VisitStatus
from telehealth.selectors import parse_uuid


def visit_presence_mark(*, visit_id: str, user_id: int, present: bool) -> None:
    """The signaling consumer reports that the visit's patient connected (``present``) or disconnected. Sets
    ``patient_connected``; a disconnect stamps ``patient_left_at`` (a waiting patient keeps their place for
    ``TELEHEALTH_GRACE_SECONDS`` after it, see ``visits_expire_grace``). Calls for anyone but the visit's patient,
    unknown visits and repeats of the current state do nothing. One UPDATE; when it changed something, the
    practitioner's queue is told (``queue.changed``). Callers: the signaling consumer only."""
    parsed = parse_uuid(visit_id)
    if parsed is None:
        return
    now = timezone.now()
    with transaction.atomic():
        query = Visit.objects.filter(pk=parsed, patient_user_id=user_id).exclude(patient_connected=present)
        if present:
            rows = query.filter(Q(status=VisitStatus.WAITING) | Q(status=VisitStatus.IN_PROGRESS))
            changed = rows.update(patient_connected=True, patient_left_at=None, updated_at=now)
        else:
            changed = query.update(patient_connected=False, patient_left_at=now, updated_at=now)
        if not changed:
            return
        practitioner_id = Visit.objects.filter(pk=parsed).values_list("practitioner_id", flat=True).first()
        if practitioner_id is not None:
            events.queue_changed(practitioner_ids=[practitioner_id])
