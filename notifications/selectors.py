"""Reads of notifications: the reminder health screen and the failures list. The failures list names patients only
through ``ehr.selectors.patient_refs_get`` (access-checked and audited), never from the rows themselves."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import CharField, Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Cast, TruncDate
from django.http import HttpRequest
from django.utils import timezone

from core.realtime.streams import StreamUser
from ehr import selectors as ehr_selectors
from ehr.errors import EhrError
from ehr.models import Role, User
from notifications.dto import FailureRow, Health, HealthDay, HealthTotals
from notifications.errors import Forbidden
from notifications.models import MessageState, OutboundMessage
from notifications.services.rendering import mask_email, mask_phone

S = MessageState
HEALTH_VIEWERS = (Role.ADMIN, Role.SCHEDULER)


def health_may_receive(user: StreamUser, name: str) -> bool:
    """Realtime authoriser for ``group:notifications.*``: the health stream is for admins and schedulers."""
    return name == "notifications.health" and isinstance(user, User) and user.has_role(*HEALTH_VIEWERS)


def _authorise(actor: User) -> None:
    if not actor.has_role(*HEALTH_VIEWERS):
        raise Forbidden("Only administrators and schedulers see reminder health.")


def message_health(*, actor: User, days: int = 14) -> Health:
    """Per day (of creation, in the server's zone) and channel: how many messages are queued, sent (handed to the
    provider, delivered included), delivered, failed, undeliverable and fell back (a fallback message exists).
    Withdrawn messages are not counted. Admins and schedulers only. Two queries whatever the volume."""
    _authorise(actor)
    zone = ZoneInfo(settings.TIME_ZONE)
    today = timezone.now().astimezone(zone).date()
    first = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    fell_back = Exists(OutboundMessage.objects.filter(fallback_of=OuterRef("pk")))
    rows = (
        OutboundMessage.objects.filter(created_at__gte=since)
        .exclude(state=S.WITHDRAWN)
        .annotate(day=TruncDate("created_at", tzinfo=zone), has_fallback=fell_back)
        .values("day", "channel")
        .annotate(
            queued=Count("id", filter=Q(state__in=[S.QUEUED, S.SENDING])),
            sent=Count("id", filter=Q(state__in=[S.SENT, S.DELIVERED])),
            delivered=Count("id", filter=Q(state=S.DELIVERED)),
            failed=Count("id", filter=Q(state=S.FAILED)),
            undeliverable=Count("id", filter=Q(state=S.UNDELIVERABLE)),
            fell_back=Count("id", filter=Q(has_fallback=True)),
        )
        .order_by("day", "channel")
    )
    result = [
        HealthDay(
            date=row["day"],
            channel=row["channel"],
            queued=row["queued"],
            sent=row["sent"],
            delivered=row["delivered"],
            failed=row["failed"],
            undeliverable=row["undeliverable"],
            fell_back=row["fell_back"],
        )
        for row in rows
    ]
    sent = sum(d.sent for d in result)
    delivered = sum(d.delivered for d in result)
    totals = HealthTotals(
        sent=sent,
        delivered=delivered,
        failed=sum(d.failed + d.undeliverable for d in result),
        fell_back=sum(d.fell_back for d in result),
        delivery_rate=round(delivered / sent, 4) if sent else None,
    )
    return Health(days=result, totals=totals)


def message_failures_queryset(*, actor: User) -> QuerySet[OutboundMessage]:
    """Failed and undeliverable messages, newest first, with the fallback fetched in the same query (names come from
    ``failure_rows``). Admins and schedulers only."""
    _authorise(actor)
    return (
        OutboundMessage.objects.filter(state__in=[S.FAILED, S.UNDELIVERABLE])
        .select_related("fallback")
        .annotate(
            resent=Exists(
                OutboundMessage.objects.filter(
                    source_type="message", source_id=Cast(OuterRef("id"), output_field=CharField())
                )
            )
        )
        .order_by("-created_at", "id")
    )


FAILURES_PURPOSE = "reminder_failures"


def failure_rows(
    *, actor: User, messages: list[OutboundMessage], request: HttpRequest | None = None
) -> list[FailureRow]:
    """The failures list's rows for one page. Patient names are read through ``ehr.selectors.patient_refs_get`` for
    the page's patients at once: access-checked, and one ``read`` audit row (``PatientSearch``, purpose
    ``reminder_failures``, the ids) per page that names anyone; a page of staff alerts only audits nothing. Names the
    actor may not read come back empty rather than failing the list. Admins and schedulers only."""
    _authorise(actor)
    ids = sorted({m.patient_id for m in messages if m.patient_id is not None})
    names: dict[int, str] = {}
    if ids:
        try:
            refs = ehr_selectors.patient_refs_get(
                actor=actor, patient_ids=ids, purpose=FAILURES_PURPOSE, request=request
            )
            names = {pk: ref.display_name for pk, ref in refs.items()}
        except EhrError:
            names = {}
    return [_failure_row(m, names.get(m.patient_id, "") if m.patient_id is not None else "") for m in messages]


def _failure_row(message: OutboundMessage, patient_name: str) -> FailureRow:
    fallback = getattr(message, "fallback", None)
    masked = mask_email(message.recipient) if message.channel == "email" else mask_phone(message.recipient)
    return FailureRow(
        id=str(message.id),
        kind=message.kind,
        channel=message.channel,
        state=message.state,
        attempts=message.attempts,
        last_error_code=message.last_error_code,
        recipient_masked=masked,
        patient_name=patient_name,
        created_at=message.created_at,
        fell_back_to=fallback.channel if fallback is not None else None,
        resendable=not getattr(message, "resent", False),
    )


def message_sources_alerted(*, source_type: str, source_ids: list[str], source_key: str) -> set[str]:
    """Which of ``source_ids`` already have a message of ``source_key`` that was not withdrawn (queued, sent or
    failed alike): one query. Lets a caller that runs every minute skip sources it has already messaged before it
    calls an idempotent service. Callers: services of other apps (telehealth's wait alerts)."""
    if not source_ids:
        return set()
    return set(
        OutboundMessage.objects.filter(source_type=source_type, source_id__in=source_ids, source_key=source_key)
        .exclude(state=S.WITHDRAWN)
        .values_list("source_id", flat=True)
    )
