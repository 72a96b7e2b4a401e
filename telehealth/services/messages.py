"""Chat around a visit, and the clinician's notice to everyone waiting for them."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from ehr.models import Role, User
from telehealth import events
from telehealth.dto import MessageRef, NoticeRef
from telehealth.errors import Forbidden, InvalidInput, VisitClosed, VisitNotFound
from telehealth.models import ClinicianNotice, MessageKind, VisitMessage, VisitStatus
from telehealth.selectors import message_ref, viewer_role
from telehealth.services.visits import lock_visit, waiting_patients

BODY_MAX_LENGTH = 1000
NOTICE_MAX_LENGTH = 280


def _clean_body(body: Any, *, maximum: int, field: str = "body") -> str:
    if not isinstance(body, str) or not body.strip():
        raise InvalidInput({field: ["Write a message."]})
    text = str(body).strip()
    if len(text) > maximum:
        raise InvalidInput({field: [f"At most {maximum} characters."]})
    return text


def visit_message_send(*, actor: User, visit_id: str, body: Any) -> MessageRef:
    """A chat line from the visit's patient (to the clinic's staff), its practitioner or staff of its location,
    while the patient waits or is in the visit. 1 to 1000 characters. Pushed (``visit.message``) to the visit's
    stream only, whose members may read it; never logged."""
    text = _clean_body(body, maximum=BODY_MAX_LENGTH)
    with transaction.atomic():
        visit = lock_visit(visit_id)
        if viewer_role(actor, visit) is None:
            raise VisitNotFound()
        if visit.status not in (VisitStatus.WAITING, VisitStatus.IN_PROGRESS):
            raise VisitClosed()
        message = VisitMessage.objects.create(visit=visit, sender=actor, kind=MessageKind.CHAT, body=text)
        ref = message_ref(visit, message)
        events.visit_message(visit_id=visit.pk, data=ref.wire())
    return ref


def _tell_waiting(practitioner_id: int) -> None:
    events.queue_changed(practitioner_ids=[practitioner_id])
    events.waiting_changed(patients=waiting_patients([practitioner_id]))


def clinician_notice_set(*, actor: User, body: Any) -> NoticeRef:
    """A practitioner tells everyone waiting for them something ("running 10 minutes late"); it replaces their
    previous notice (one active notice each, a partial UNIQUE index). 1 to 280 characters."""
    if not actor.has_role(Role.PRACTITIONER):
        raise Forbidden("Only practitioners post a notice to their waiting room.")
    text = _clean_body(body, maximum=NOTICE_MAX_LENGTH)
    now = timezone.now()
    with transaction.atomic():
        # Locks the actor's active notice (if any) so two concurrent posts replace one another in turn.
        ClinicianNotice.objects.select_for_update().filter(practitioner=actor, cleared_at__isnull=True).update(
            cleared_at=now
        )
        notice = ClinicianNotice.objects.create(practitioner=actor, body=text, created_at=now)
        _tell_waiting(actor.pk)
    return NoticeRef(body=notice.body, created_at=notice.created_at)


def clinician_notice_clear(*, actor: User) -> None:
    """The practitioner clears their notice (no-op when there is none)."""
    if not actor.has_role(Role.PRACTITIONER):
        raise Forbidden("Only practitioners post a notice to their waiting room.")
    with transaction.atomic():
        cleared = ClinicianNotice.objects.filter(practitioner=actor, cleared_at__isnull=True).update(
            cleared_at=timezone.now()
        )
        if cleared:
            _tell_waiting(actor.pk)
