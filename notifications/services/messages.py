"""Writing to the outbox: enqueue (in the caller's transaction), withdraw, resend, staff alerts."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.realtime.services import publish_to_user
from ehr.models import Patient, Role, User
from notifications.dto import MessageRef
from notifications.errors import Forbidden, InvalidInput, MessageNotFound, NotResendable
from notifications.models import Channel, ContactPreference, MessageState, OutboundMessage, StaffContact
from notifications.services.rendering import LANGUAGE_CODES, e164
from notifications.services.transitions import messages_transition_bulk

S = MessageState
STAFF_RESENDERS = (Role.ADMIN, Role.SCHEDULER)
DEFAULT_CHANNELS = ["sms", "email"]


def _ref(message: OutboundMessage, *, created: bool) -> MessageRef:
    return MessageRef(
        id=str(message.id),
        channel=message.channel,
        kind=message.kind,
        state=message.state,
        due_at=message.due_at,
        created=created,
    )


def message_enqueue(
    *,
    channel: str,
    kind: str,
    template_key: str,
    recipient: str,
    due_at: dt.datetime,
    context: dict[str, Any],
    patient_id: int | None = None,
    user_id: int | None = None,
    source: tuple[str, str | int, str] | None = None,
    language: str | None = None,
    idempotency_key: str | None = None,
    fallback_of_id: uuid.UUID | None = None,
    state: str = S.QUEUED,
    last_error_code: str = "",
) -> MessageRef:
    """Write one message to the outbox in the caller's transaction (it is sent only if that commits). Idempotent:
    with a ``source`` (type, id, key) a second call while the first is not withdrawn returns the existing message
    (``created=False``), and so does a repeated ``idempotency_key``. ``context`` holds names, times and links only,
    never clinical details. Callers: services of other apps (reminder plans, alerts)."""
    if channel not in Channel.values:
        raise InvalidInput({"channel": [f"Use one of: {', '.join(Channel.values)}."]})
    source_type, source_id, source_key = ("", "", "") if source is None else (source[0], str(source[1]), source[2])
    if source is not None and fallback_of_id is None:
        existing = (
            OutboundMessage.objects.filter(
                source_type=source_type, source_id=source_id, source_key=source_key, fallback_of__isnull=True
            )
            .exclude(state=S.WITHDRAWN)
            .first()
        )
        if existing is not None:
            return _ref(existing, created=False)
    key = idempotency_key or f"msg-{uuid.uuid4().hex}"
    if idempotency_key:
        existing = OutboundMessage.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return _ref(existing, created=False)
    now = timezone.now()
    message = OutboundMessage(
        channel=channel,
        kind=kind,
        template_key=template_key,
        language=language or "en",
        recipient=recipient,
        patient_id=patient_id,
        user_id=user_id,
        context=context,
        state=state,
        due_at=due_at,
        next_attempt_at=due_at,
        max_attempts=settings.NOTIFICATIONS_MAX_ATTEMPTS,
        idempotency_key=key,
        fallback_of_id=fallback_of_id,
        source_type=source_type,
        source_id=source_id,
        source_key=source_key,
        last_error_code=last_error_code,
        created_at=now,
        updated_at=now,
    )
    try:
        with transaction.atomic():  # a savepoint: losing a race for the source leaves the caller's transaction usable
            message.save(force_insert=True)
    except IntegrityError:
        racer = OutboundMessage.objects.filter(idempotency_key=key).first() or (
            OutboundMessage.objects.filter(
                source_type=source_type, source_id=source_id, source_key=source_key, fallback_of__isnull=True
            )
            .exclude(state=S.WITHDRAWN)
            .first()
        )
        if racer is None:
            raise
        return _ref(racer, created=False)
    return _ref(message, created=True)


@dataclass(frozen=True)
class Contact:
    """Where and how a patient can be reached now: the channels in preference order that have a contact and no
    opt-out, with the recipient for each."""

    channels: list[tuple[str, str]]
    language: str
    time_zone: str


def preference_for(patient_id: int, *, lock: bool = False) -> ContactPreference:
    """The patient's preference row, created with the defaults on first use (language from the patient record)."""
    queryset = ContactPreference.objects.select_for_update() if lock else ContactPreference.objects
    preference = queryset.filter(patient_id=patient_id).first()
    if preference is not None:
        return preference
    language = Patient.objects.filter(pk=patient_id).values_list("preferred_language", flat=True).first() or "en"
    language = language.split("-")[0].lower()
    try:
        with transaction.atomic():
            ContactPreference.objects.create(
                patient_id=patient_id,
                channels=list(DEFAULT_CHANNELS),
                language=language if language in LANGUAGE_CODES else "en",
            )
    except IntegrityError:
        pass  # created by a racer
    return queryset.get(patient_id=patient_id)


def contact_for(patient_id: int) -> Contact:
    """The patient's usable channels (in preference order, with their addresses), language and time zone. One
    query when the preference row exists (read with the record's phone and email)."""
    row = (
        Patient.objects.filter(pk=patient_id)
        .values_list(
            "phone",
            "email",
            "contact_preference__id",
            "contact_preference__channels",
            "contact_preference__language",
            "contact_preference__sms_opt_out",
            "contact_preference__email_opt_out",
            "contact_preference__time_zone",
        )
        .get()
    )
    phone, email, preference_id, channels, language, sms_opt_out, email_opt_out, time_zone = row
    if preference_id is None:
        preference = preference_for(patient_id)
    else:
        preference = ContactPreference(
            pk=preference_id,
            patient_id=patient_id,
            channels=channels,
            language=language,
            sms_opt_out=sms_opt_out,
            email_opt_out=email_opt_out,
            time_zone=time_zone,
        )
    usable: list[tuple[str, str]] = []
    for channel in preference.channels or DEFAULT_CHANNELS:
        if channel == Channel.SMS and phone and not preference.sms_opt_out and settings.NOTIFICATIONS_SMS_ENABLED:
            usable.append((channel, e164(phone)))
        elif (
            channel == Channel.EMAIL and email and not preference.email_opt_out and settings.NOTIFICATIONS_EMAIL_ENABLED
        ):
            usable.append((channel, email))
    return Contact(channels=usable, language=preference.language, time_zone=preference.time_zone)


def message_enqueue_for_patient(
    *,
    patient_id: int,
    kind: str,
    template_key: str,
    due_at: dt.datetime,
    context: dict[str, Any],
    source: tuple[str, str | int, str] | None = None,
) -> MessageRef:
    """Queue a message on the patient's first usable channel (preferences, opt-outs, contact details on the record)
    in their language. With no usable channel the row is written as ``undeliverable`` so the health screen shows
    it: never silently dropped. Same transaction and idempotency rules as ``message_enqueue``."""
    contact = contact_for(patient_id)
    if not contact.channels:
        return message_enqueue(
            channel=Channel.SMS,
            kind=kind,
            template_key=template_key,
            recipient="",
            due_at=due_at,
            context=context,
            patient_id=patient_id,
            source=source,
            language=contact.language,
            state=S.UNDELIVERABLE,
            last_error_code="no_channel",
        )
    channel, recipient = contact.channels[0]
    return message_enqueue(
        channel=channel,
        kind=kind,
        template_key=template_key,
        recipient=recipient,
        due_at=due_at,
        context=context,
        patient_id=patient_id,
        source=source,
        language=contact.language,
    )


@dataclass(frozen=True)
class PlannedMessage:
    """One message of a batch for ``messages_enqueue_batch``: its template, when it is due and its source
    key (unique per source while not withdrawn)."""

    template_key: str
    due_at: dt.datetime
    source_key: str


def messages_enqueue_batch(
    *,
    patient_id: int,
    kind: str,
    messages: list[PlannedMessage],
    context: dict[str, Any],
    source: tuple[str, str | int],
    contact: Contact | None = None,
) -> None:
    """Queue several messages of one source for one patient (e.g. an appointment's reminders) in the caller's
    transaction, in one INSERT. Same rules as ``message_enqueue_for_patient``
    (first usable channel, ``undeliverable`` with no channel) and the same idempotency: a message whose source key
    already has a live message is skipped by the database (``outbound_one_per_source``, ON CONFLICT DO NOTHING),
    so a second call writes nothing. ``contact`` may be passed when the caller already read it. Callers: services
    of other apps on hot paths (booking)."""
    if not messages:
        return
    contact = contact or contact_for(patient_id)
    channel, recipient = contact.channels[0] if contact.channels else (Channel.SMS, "")
    state, error = (S.QUEUED, "") if contact.channels else (S.UNDELIVERABLE, "no_channel")
    now = timezone.now()
    rows = [
        OutboundMessage(
            channel=channel,
            kind=kind,
            template_key=planned.template_key,
            language=contact.language,
            recipient=recipient,
            patient_id=patient_id,
            context=context,
            state=state,
            due_at=planned.due_at,
            next_attempt_at=planned.due_at,
            max_attempts=settings.NOTIFICATIONS_MAX_ATTEMPTS,
            idempotency_key=f"msg-{uuid.uuid4().hex}",
            source_type=source[0],
            source_id=str(source[1]),
            source_key=planned.source_key,
            last_error_code=error,
            created_at=now,
            updated_at=now,
        )
        for planned in messages
    ]
    # ignore_conflicts: a live message of the same source key (a repeated call) is kept and this one dropped,
    # without aborting the caller's transaction (no savepoint needed, unlike a failed plain INSERT).
    OutboundMessage.objects.bulk_create(rows, ignore_conflicts=True)


def messages_withdraw_for_source(*, source_type: str, source_id: str | int, key_prefix: str = "") -> int:
    """Withdraw every queued message of a source (e.g. the reminders of a rescheduled or cancelled appointment) in
    the caller's transaction; returns how many. Messages already being sent or sent are left alone (a message in
    flight cannot be called back; the dispatcher also checks the source before sending)."""
    # One UPDATE instead of a locked read and a save per row; the state machine still decides (queued ->
    # withdrawn must be in its table) and the WHERE clause takes only rows still queued, under the rows' locks.
    return messages_transition_bulk(
        OutboundMessage.objects.filter(
            source_type=source_type, source_id=str(source_id), source_key__startswith=key_prefix
        ),
        source=S.QUEUED,
        target=S.WITHDRAWN,
    )


def message_resend(*, actor: User, message_id: str) -> MessageRef:
    """Staff (admin, scheduler) resend a failed or undeliverable message: a new message of kind ``manual_resend``
    on the patient's first usable channel now (or the same recipient for staff alerts). At most one resend per
    message (the source key ``message:<id>:resend`` is unique). Raises ``Forbidden``, ``MessageNotFound``,
    ``NotResendable``."""
    if not actor.has_role(*STAFF_RESENDERS):
        raise Forbidden("Only administrators and schedulers resend messages.")
    try:
        pk = uuid.UUID(str(message_id))
    except ValueError:
        raise MessageNotFound() from None
    with transaction.atomic():
        original = OutboundMessage.objects.select_for_update().filter(pk=pk).first()
        if original is None:
            raise MessageNotFound()
        if original.state not in (S.FAILED, S.UNDELIVERABLE):
            raise NotResendable()
        source = ("message", str(original.id), "resend")
        if OutboundMessage.objects.filter(source_type="message", source_id=str(original.id)).exists():
            raise NotResendable("This message was resent already.")
        now = timezone.now()
        if original.patient_id is not None:
            ref = message_enqueue_for_patient(
                patient_id=original.patient_id,
                kind="manual_resend",
                template_key=original.template_key,
                due_at=now,
                context=original.context,
                source=source,
            )
        else:
            ref = message_enqueue(
                channel=original.channel,
                kind="manual_resend",
                template_key=original.template_key,
                recipient=original.recipient,
                due_at=now,
                context=original.context,
                user_id=original.user_id,
                source=source,
                language=original.language,
            )
    return ref


STAFF_ALERT_EVENT = "notifications.staff_alert"


def staff_alert_send(
    *,
    user_id: int,
    kind: str,
    context: dict[str, Any],
    source: tuple[str, str | int, str] | None = None,
) -> MessageRef:
    """Alert a staff member now, in the caller's transaction: one message by SMS to their ``StaffContact`` phone
    (when they have one and take SMS alerts), else by email to their login's address, else an ``undeliverable`` row
    (visible on the health screen); and, for a new alert, a realtime event ``notifications.staff_alert``
    ``{kind, message_id, **context}`` on their user stream (``user:<id>``) so an open console shows it at once.
    ``kind`` is the template key (e.g. ``staff_wait_alert``). ``context``: ids, numbers and times only — never a
    patient's name or anything clinical (it is rendered into an SMS and pushed as is). Idempotent on ``source``
    (type, id, key): a second call for the same source returns the existing message and pushes nothing.
    Callers: telehealth and scheduling services."""
    row = User.objects.filter(pk=user_id).values_list("email", flat=True).first()
    if row is None:
        raise InvalidInput({"user_id": ["Unknown user."]})
    staff = StaffContact.objects.filter(user_id=user_id).first()
    email = row if (staff is None or staff.email_alerts) and settings.NOTIFICATIONS_EMAIL_ENABLED else ""
    phone = e164(staff.phone) if staff is not None and staff.sms_alerts and settings.NOTIFICATIONS_SMS_ENABLED else ""
    channel, recipient = (Channel.SMS, phone) if phone else (Channel.EMAIL, email)
    ref = message_enqueue(
        channel=channel,
        kind="staff_alert",
        template_key=kind,
        recipient=recipient,
        due_at=timezone.now(),
        context=context,
        user_id=user_id,
        source=source,
        state=S.QUEUED if recipient else S.UNDELIVERABLE,
        last_error_code="" if recipient else "no_channel",
    )
    if ref.created:
        publish_to_user(user_id=user_id, type=STAFF_ALERT_EVENT, data={**context, "kind": kind, "message_id": ref.id})
    return ref
