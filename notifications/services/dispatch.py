"""Sending the outbox exactly once: claim, hand over, record, reconcile, fall back.

The protocol (docs/notifications.md):

1. **Claim** (one committed transaction): due ``queued`` rows are locked with ``SKIP LOCKED``, checked (source still
   current, opt-outs, a provider configured), rendered once, moved to ``sending`` with an open ``DeliveryAttempt``.
2. **Hand over** (no transaction, no lock held): each claimed message goes to its provider, from a small thread pool.
   A call starts only within half the stale period of its claim, and provider timeouts are shorter than that, so no
   hand-over can still be running when the reconciler looks at the row.
3. **Record** (per message, under its row lock): accepted -> ``sent``; a transient error -> ``queued`` again with
   backoff while attempts and the fallback bound allow, else ``failed`` and the next channel; an ambiguous outcome
   (timeout, connection dropped) is looked up at the provider first. If the attempt was settled meanwhile (status
   callback, reconciler) the record is skipped.
4. **Reconcile**: a ``sending`` row untouched for ``NOTIFICATIONS_SENDING_STALE_SECONDS`` belongs to a dead worker.
   For Twilio the provider is asked (messages to the recipient since the attempt began, matched on the exact body,
   which is rendered once and stored) and the row becomes ``sent`` if found, ``queued`` otherwise. SMTP cannot be
   asked: the message is sent again with the same Message-ID (the one remaining window, documented).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications import providers, registry
from notifications.dto import MessageRef
from notifications.models import (
    Channel,
    ContactPreference,
    DeliveryAttempt,
    MessageState,
    MessageTemplate,
    OutboundMessage,
    Provider,
)
from notifications.providers import SendResult
from notifications.services.health import health_changed
from notifications.services.messages import contact_for, message_enqueue, preference_for
from notifications.services.rendering import render
from notifications.services.transitions import message_transition

logger = logging.getLogger(__name__)
S = MessageState
Outcome = DeliveryAttempt.Outcome
STATUS_PATH = "/api/v1/notifications/twilio/status/"


@dataclass(frozen=True)
class Claim:
    message_id: uuid.UUID
    number: int
    channel: str
    provider: str
    recipient: str
    subject: str
    body: str
    idempotency_key: str
    claimed_at: dt.datetime
    # Set when the previous attempt's outcome is unknown: ask the provider (since then) before sending again.
    look_up_since: dt.datetime | None


def _stale() -> dt.timedelta:
    return dt.timedelta(seconds=settings.NOTIFICATIONS_SENDING_STALE_SECONDS)


def _bound() -> dt.timedelta:
    return dt.timedelta(seconds=settings.NOTIFICATIONS_FALLBACK_WITHIN_SECONDS)


def status_callback_url(message_id: uuid.UUID | str, key: str) -> str:
    """Our message id and idempotency key ride in the callback URL (Twilio has no idempotency header for Messages)."""
    base = settings.NOTIFICATIONS_PUBLIC_BASE_URL.rstrip("/")
    return f"{base}{STATUS_PATH}?message={message_id}&idempotency_key={quote(key)}"


def _provider_for(message: OutboundMessage, number: int) -> str | None:
    if message.channel == Channel.EMAIL:
        return Provider.SMTP
    slots = providers.sms_providers()
    if not slots:
        return None
    if message.channel == Channel.VOICE:
        return slots[0]
    # Failover between carriers: a retry goes to the next configured slot.
    return slots[(number - 1) % len(slots)]


def _opted_out(message: OutboundMessage, preferences: dict[int, ContactPreference]) -> bool:
    if message.patient_id is None:
        return False
    preference = preferences.get(message.patient_id)
    if preference is None:
        return False
    if message.channel in (Channel.SMS, Channel.VOICE):
        return preference.sms_opt_out
    return preference.email_opt_out if message.channel == Channel.EMAIL else False


def _render(message: OutboundMessage, templates: dict[tuple[str, str, str], MessageTemplate | None]) -> None:
    context = dict(message.context)
    for provide in registry.context_providers(message.template_key):
        try:
            context.update(provide(context))
        except Exception:  # a missing link must not lose the reminder; it is sent without it
            logger.exception("context provider failed for message %s", message.id)
    message.subject, message.body = render(
        template_key=message.template_key,
        channel=message.channel,
        language=message.language,
        context=context,
        cache=templates,
    )


def _give_up(message: OutboundMessage, target: str, code: str) -> None:
    """``target`` is failed or undeliverable; the caller saves, then falls back."""
    message_transition(message, target)
    message.last_error_code = code
    message.save()


def _claim(limit: int) -> list[Claim]:
    now = timezone.now()
    claims: list[Claim] = []
    to_fall_back: list[uuid.UUID] = []
    with transaction.atomic():
        rows = list(
            OutboundMessage.objects.select_for_update(skip_locked=True)
            .filter(state=S.QUEUED, next_attempt_at__lte=now)
            .order_by("next_attempt_at")[:limit]
        )
        patient_ids = {m.patient_id for m in rows if m.patient_id is not None}
        preferences = {p.patient_id: p for p in ContactPreference.objects.filter(patient_id__in=patient_ids)}
        attempts_of = {m.pk: m.attempts for m in rows}
        first_started: dict[uuid.UUID, dt.datetime] = {}
        unknown_outcome: set[uuid.UUID] = set()
        for message_pk, number, started_at, outcome in DeliveryAttempt.objects.filter(
            message__in=list(attempts_of)
        ).values_list("message_id", "number", "started_at", "outcome"):
            first_started[message_pk] = min(started_at, first_started.get(message_pk, started_at))
            if number == attempts_of[message_pk] and outcome == Outcome.TIMEOUT:
                unknown_outcome.add(message_pk)
        current = _current_sources(rows)
        templates: dict[tuple[str, str, str], MessageTemplate | None] = {}
        sending: list[OutboundMessage] = []
        for message in rows:
            if message.source_type and (message.source_type, message.source_id) not in current:
                message_transition(message, S.WITHDRAWN)
                message.save()
                continue
            if _opted_out(message, preferences):
                _give_up(message, S.UNDELIVERABLE, "opted_out")
                to_fall_back.append(message.pk)
                continue
            number = message.attempts + 1
            provider = _provider_for(message, number)
            if provider is None or not message.recipient:
                _give_up(message, S.UNDELIVERABLE, "no_provider" if message.recipient else "no_recipient")
                to_fall_back.append(message.pk)
                continue
            if not message.body:
                _render(message, templates)
            message_transition(message, S.SENDING)
            message.attempts = number
            message.provider = provider
            sending.append(message)
            claims.append(
                Claim(
                    message_id=message.pk,
                    number=number,
                    channel=message.channel,
                    provider=provider,
                    recipient=message.recipient,
                    subject=message.subject,
                    body=message.body,
                    idempotency_key=message.idempotency_key,
                    claimed_at=now,
                    look_up_since=first_started.get(message.pk) if message.pk in unknown_outcome else None,
                )
            )
        # One UPDATE and one INSERT for the whole pass (the rows are locked above), not a save and a create each.
        OutboundMessage.objects.bulk_update(
            sending, ["state", "updated_at", "attempts", "provider", "subject", "body"], batch_size=500
        )
        DeliveryAttempt.objects.bulk_create(
            [DeliveryAttempt(message=m, number=m.attempts, provider=m.provider, started_at=now) for m in sending],
            batch_size=500,
        )
        for message_id in to_fall_back:
            message_fallback(message_id=message_id)
        if rows:
            health_changed()
    return claims


def _current_sources(rows: list[OutboundMessage]) -> set[tuple[str, str]]:
    """(source type, id) of the rows whose source still wants its messages: one check per source type."""
    by_type: dict[str, list[str]] = {}
    for message in rows:
        if message.source_type:
            by_type.setdefault(message.source_type, []).append(message.source_id)
    return {
        (source_type, source_id)
        for source_type, ids in by_type.items()
        for source_id in registry.sources_current(source_type, sorted(set(ids)))
    }


def _hand_over(claim: Claim) -> SendResult | None:
    """The provider call for one claim (no database access). None: too late to start safely; the reconciler will
    find the attempt unsent and queue the message again."""
    if timezone.now() - claim.claimed_at > _stale() / 2:
        return None
    if claim.channel == Channel.EMAIL:
        return providers.email_send(
            to=claim.recipient, subject=claim.subject, body=claim.body, message_id=claim.idempotency_key
        )
    if claim.look_up_since is not None and claim.channel == Channel.SMS:
        try:
            sid = providers.sms_lookup(
                provider=claim.provider, to=claim.recipient, body=claim.body, since=claim.look_up_since
            )
        except Exception:
            return SendResult(accepted=False, error_code="lookup_failed", ambiguous=True)
        if sid:
            return SendResult(accepted=True, provider_message_id=sid)
    if claim.channel == Channel.VOICE:
        return providers.voice_call(
            provider=claim.provider,
            to=claim.recipient,
            text=claim.body,
            status_callback=status_callback_url(claim.message_id, claim.idempotency_key),
        )
    return providers.sms_send(
        provider=claim.provider,
        to=claim.recipient,
        body=claim.body,
        status_callback=status_callback_url(claim.message_id, claim.idempotency_key),
    )


def _errors_so_far(message: OutboundMessage) -> int:
    return DeliveryAttempt.objects.filter(message=message, outcome=Outcome.ERROR).count()


def _record(claim: Claim, result: SendResult) -> None:
    fall_back = False
    with transaction.atomic():
        # The attempt and its message, both locked, in one query.
        attempt = (
            DeliveryAttempt.objects.select_for_update()
            .select_related("message")
            .get(message_id=claim.message_id, number=claim.number)
        )
        message = attempt.message
        health_changed()  # published after commit, whatever the outcome below
        if attempt.finished_at is not None or message.state != S.SENDING or message.attempts != claim.number:
            return  # settled meanwhile (status callback or reconciler)
        if result.ambiguous and message.channel == Channel.SMS:
            try:
                sid = providers.sms_lookup(
                    provider=claim.provider, to=claim.recipient, body=claim.body, since=attempt.started_at
                )
            except Exception:
                sid = None
            if sid:
                result = SendResult(accepted=True, provider_message_id=sid)
        now = timezone.now()
        attempt.finished_at = now
        if result.accepted:
            attempt.outcome = Outcome.ACCEPTED
            attempt.provider_message_id = result.provider_message_id
            attempt.save()
            message.provider_message_id = result.provider_message_id
            message.last_error_code = ""
            message_transition(message, S.SENT)
            message.save()
            return
        attempt.outcome = Outcome.TIMEOUT if result.ambiguous else Outcome.ERROR
        attempt.error_code = result.error_code
        attempt.save()
        message.last_error_code = result.error_code
        if result.error_code == providers.UNSUBSCRIBED and message.patient_id is not None:
            _opt_out_sms(message.patient_id)
        errors = _errors_so_far(message)
        backoff = settings.NOTIFICATIONS_RETRY_BACKOFF_SECONDS or [30]
        retry_at = now + dt.timedelta(seconds=backoff[min(errors, len(backoff)) - 1] if errors else 0)
        if not result.permanent and errors < message.max_attempts and retry_at <= message.due_at + _bound():
            message_transition(message, S.QUEUED)
            message.next_attempt_at = retry_at
            message.save()
            return
        message_transition(message, S.FAILED)
        message.save()
        fall_back = True
    if fall_back:
        message_fallback(message_id=claim.message_id)


def _opt_out_sms(patient_id: int) -> None:
    preference = preference_for(patient_id, lock=True)
    if not preference.sms_opt_out:
        preference.sms_opt_out = True
        preference.updated_at = timezone.now()
        preference.save(update_fields=["sms_opt_out", "updated_at"])


def messages_reconcile_stale(*, limit: int = 200) -> int:
    """Settle ``sending`` rows left by a dead worker (see the module docstring); returns how many were settled.
    A row whose provider cannot be asked right now is left for the next pass: never re-sent blind. Callers: the
    dispatcher, before it claims anything."""
    cutoff = timezone.now() - _stale()
    settled = 0
    with transaction.atomic():
        rows = list(
            OutboundMessage.objects.select_for_update(skip_locked=True)
            .filter(state=S.SENDING, updated_at__lt=cutoff)
            .order_by("updated_at")[:limit]
        )
        for message in rows:
            attempt = (
                DeliveryAttempt.objects.select_for_update().filter(message=message, number=message.attempts).first()
            )
            sid: str | None = None
            if message.channel == Channel.SMS and attempt is not None:
                try:
                    first = (
                        DeliveryAttempt.objects.filter(message=message)
                        .order_by("number")
                        .values_list("started_at", flat=True)
                        .first()
                    ) or attempt.started_at
                    sid = providers.sms_lookup(
                        provider=attempt.provider, to=message.recipient, body=message.body, since=first
                    )
                except Exception:
                    logger.warning("provider lookup failed for stale message %s; left for the next pass", message.id)
                    continue
            now = timezone.now()
            if attempt is not None and attempt.finished_at is None:
                attempt.finished_at = now
                attempt.outcome = Outcome.ACCEPTED if sid else Outcome.TIMEOUT
                attempt.error_code = "" if sid else "worker_lost"
                attempt.provider_message_id = sid or ""
                attempt.save()
            if sid:
                message.provider_message_id = sid
                message_transition(message, S.SENT)
            else:
                message_transition(message, S.QUEUED)
                message.next_attempt_at = now
            message.save()
            settled += 1
        if settled:
            health_changed()
    return settled


def messages_dispatch_due(*, limit: int = 200) -> int:
    """One pass of the dispatcher: reconcile stale ``sending`` rows, claim up to ``limit`` due messages, hand them
    to their providers and record each outcome. Returns how many were claimed. Safe to run concurrently in any
    number of workers (``SKIP LOCKED`` claims, row-locked records). Callers: the Celery tasks."""
    messages_reconcile_stale(limit=limit)
    claims = _claim(limit)
    if not claims:
        return 0
    threads = max(1, min(settings.NOTIFICATIONS_SEND_THREADS, len(claims)))
    # Each outcome is recorded as soon as its provider answers, not after the whole batch: a worker killed
    # mid-batch then leaves only the calls in flight unrecorded (SMS is looked up at the provider; an email accepted
    # in that instant is the one that can go out twice, so the window is kept as short as one record).
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="notify-send") as pool:
        pending = {pool.submit(_hand_over_safely, claim): claim for claim in claims}
        for future in as_completed(pending):
            result = future.result()
            if result is not None:
                _record(pending[future], result)
    return len(claims)


def _hand_over_safely(claim: Claim) -> SendResult | None:
    try:
        return _hand_over(claim)
    except Exception:
        logger.exception("provider call raised for message %s", claim.message_id)
        return SendResult(accepted=False, error_code="internal", ambiguous=True)


def _chain_channels(message: OutboundMessage) -> set[str]:
    channels = {message.channel}
    current = message
    while current.fallback_of_id is not None:
        current = OutboundMessage.objects.get(pk=current.fallback_of_id)
        channels.add(current.channel)
    return channels


def message_fallback(*, message_id: uuid.UUID | str) -> MessageRef | None:
    """Queue the message on the patient's next usable channel (preference order, opt-outs, contact on record) that
    this chain has not tried, due now; returns it, or None when no channel is left (the failure stays visible on the
    health screen). Idempotent: a message has at most one fallback. Callers: the dispatcher, the status callback."""
    with transaction.atomic():
        message = OutboundMessage.objects.select_for_update().filter(pk=message_id).first()
        if message is None or message.state not in (S.FAILED, S.UNDELIVERABLE) or message.patient_id is None:
            return None
        existing = OutboundMessage.objects.filter(fallback_of=message).first()
        if existing is not None:
            return MessageRef(
                id=str(existing.id),
                channel=existing.channel,
                kind=existing.kind,
                state=existing.state,
                due_at=existing.due_at,
                created=False,
            )
        if message.source_type and not registry.source_is_current(message.source_type, message.source_id):
            return None
        tried = _chain_channels(message)
        contact = contact_for(message.patient_id)
        following = [(c, r) for c, r in contact.channels if c not in tried]
        if not following:
            return None
        channel, recipient = following[0]
        health_changed()
        return message_enqueue(
            channel=channel,
            kind=message.kind,
            template_key=message.template_key,
            recipient=recipient,
            due_at=timezone.now(),
            context=message.context,
            patient_id=message.patient_id,
            source=(message.source_type, message.source_id, message.source_key) if message.source_type else None,
            language=contact.language,
            idempotency_key=f"{message.idempotency_key}:fb:{channel}",
            fallback_of_id=message.pk,
        )


TWILIO_DONE = {"delivered", "completed"}
TWILIO_SENT = {"sent"}
TWILIO_FAILED = {"undelivered", "failed", "busy", "no-answer", "canceled"}


def message_status_callback(
    *, message_id: str | None, provider_status: str, error_code: str = "", provider_message_id: str = ""
) -> str | None:
    """Apply a verified Twilio status callback (SMS ``MessageStatus`` or voice ``CallStatus``) to its message, found
    by our id (in the callback URL) or the provider's sid. ``undelivered``/``failed`` fail the message and fall back
    to the next channel; ``sent``/``delivered`` settle a message even if our own record of the hand-over was lost.
    Idempotent (repeated and out-of-order callbacks change nothing more). Returns the state after, or None when the
    message is unknown. Callers: the webhook view."""
    query = Q(pk=_uuid(message_id)) if _uuid(message_id) else Q(provider_message_id=provider_message_id or "-")
    fall_back = False
    with transaction.atomic():
        message = OutboundMessage.objects.select_for_update().filter(query).first()
        if message is None:
            return None
        status = provider_status.lower()
        if status not in TWILIO_DONE | TWILIO_SENT | TWILIO_FAILED:
            return message.state
        health_changed()
        if message.state == S.SENDING:
            _settle_open_attempt(message, provider_message_id, status)
            if status in TWILIO_FAILED:
                message.last_error_code = error_code or status
                message_transition(message, S.FAILED)
                message.save()
                fall_back = True
            else:
                message.provider_message_id = provider_message_id or message.provider_message_id or "unknown"
                message_transition(message, S.SENT)
                message.save()
        if message.state == S.SENT and status in TWILIO_DONE:
            message_transition(message, S.DELIVERED)
            message.save()
        elif message.state == S.SENT and status in TWILIO_FAILED:
            message.last_error_code = error_code or status
            message_transition(message, S.FAILED)
            message.save()
            fall_back = True
        if fall_back and error_code == providers.UNSUBSCRIBED and message.patient_id is not None:
            _opt_out_sms(message.patient_id)
        state = message.state
    if fall_back:
        message_fallback(message_id=message.pk)
    return state


def _settle_open_attempt(message: OutboundMessage, sid: str, status: str) -> None:
    attempt = DeliveryAttempt.objects.select_for_update().filter(message=message, number=message.attempts).first()
    if attempt is not None and attempt.finished_at is None:
        attempt.finished_at = timezone.now()
        attempt.outcome = Outcome.ACCEPTED if status not in TWILIO_FAILED or sid else Outcome.ERROR
        attempt.provider_message_id = sid
        attempt.save()


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
