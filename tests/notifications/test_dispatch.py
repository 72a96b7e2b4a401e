"""The dispatcher against the local fake Twilio and fake SMTP: send, retry with backoff, fall back to email within
the bound, undelivered callbacks, opt-outs, stale `sending` reconciliation (nothing sent twice)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from notifications.errors import InvalidTransition
from notifications.models import DeliveryAttempt, OutboundMessage
from notifications.services import (
    message_enqueue_for_patient,
    message_status_callback,
    messages_dispatch_due,
    messages_reconcile_stale,
)
from notifications.services.messages import preference_for
from notifications.services.transitions import messages_transition_bulk

pytestmark = pytest.mark.django_db(transaction=True)


def _queue(patient: Any, key: str = "reminder:120", *, due: dt.datetime | None = None) -> str:
    from django.utils import timezone

    with transaction.atomic():
        ref = message_enqueue_for_patient(
            patient_id=patient.pk,
            kind="reminder",
            template_key="reminder",
            due_at=due or timezone.now(),
            context={"first_name": "Ana", "practitioner": "Dr Who", "clinic": "Lisbon", "when": "Tue 10:00"},
            source=("test", 1, key),
        )
    return ref.id


def test_dispatch_sends_sms_once_through_the_real_sdk(providers, patient, frozen_now):  # type: ignore[no-untyped-def]
    twilio, _smtp = providers
    message_id = _queue(patient)
    assert messages_dispatch_due(limit=10) == 1
    message = OutboundMessage.objects.get(pk=message_id)
    assert message.state == "sent"
    assert message.provider_message_id.startswith("SM")
    assert twilio.count_key(message.idempotency_key) == 1
    assert twilio.count("+15551230001", message.body) == 1
    assert "Reply C to confirm" in message.body
    # Nothing due any more: a second pass sends nothing.
    assert messages_dispatch_due(limit=10) == 0
    assert twilio.count_key(message.idempotency_key) == 1


def test_sms_provider_down_retries_with_backoff_then_falls_back_to_email_within_bound(  # type: ignore[no-untyped-def]
    providers, patient, frozen_now
):
    twilio, smtp = providers
    twilio.fail_next(10, status=503)
    message_id = _queue(patient)
    start = frozen_now.time() if hasattr(frozen_now, "time") else None
    assert messages_dispatch_due(limit=10) == 1
    message = OutboundMessage.objects.get(pk=message_id)
    assert message.state == "queued"
    assert message.attempts == 1
    first_retry = message.next_attempt_at
    frozen_now.shift(dt.timedelta(seconds=30))
    messages_dispatch_due(limit=10)
    message.refresh_from_db()
    assert message.state == "queued"
    assert message.attempts == 2
    assert message.next_attempt_at - first_retry == dt.timedelta(seconds=120)
    frozen_now.shift(dt.timedelta(seconds=120))
    messages_dispatch_due(limit=10)  # third attempt fails -> failed -> email fallback queued
    message.refresh_from_db()
    assert message.state == "failed"
    assert message.last_error_code
    fallback = OutboundMessage.objects.get(fallback_of=message)
    assert fallback.channel == "email"
    messages_dispatch_due(limit=10)
    fallback.refresh_from_db()
    assert fallback.state == "sent"
    assert (
        smtp.count_message_id(f"<{fallback.idempotency_key}@consulta>") == 1
        or smtp.count_recipient("pat@example.test") == 1
    )
    assert fallback.sent_at is not None
    assert fallback.sent_at - message.due_at <= dt.timedelta(seconds=900)
    assert DeliveryAttempt.objects.filter(message=message, outcome="error").count() == 3
    assert twilio.messages == []  # nothing reached a phone
    del start


def test_permanent_sms_error_falls_back_at_once_and_21610_opts_out(providers, patient, frozen_now):  # type: ignore[no-untyped-def]
    twilio, smtp = providers
    twilio.block("+15551230001")
    message_id = _queue(patient)
    messages_dispatch_due(limit=10)
    message = OutboundMessage.objects.get(pk=message_id)
    assert message.state == "failed"
    assert message.last_error_code == "21610"
    assert preference_for(patient.pk).sms_opt_out is True
    messages_dispatch_due(limit=10)
    assert smtp.count_recipient("pat@example.test") == 1


def test_undelivered_status_callback_triggers_fallback(providers, patient, frozen_now):  # type: ignore[no-untyped-def]
    _twilio, smtp = providers
    message_id = _queue(patient)
    messages_dispatch_due(limit=10)
    message = OutboundMessage.objects.get(pk=message_id)
    assert message.state == "sent"
    state = message_status_callback(
        message_id=message_id,
        provider_status="undelivered",
        error_code="30005",
        provider_message_id=message.provider_message_id,
    )
    assert state == "failed"
    fallback = OutboundMessage.objects.get(fallback_of_id=message_id)
    assert fallback.channel == "email"
    # The same callback again changes nothing more.
    message_status_callback(message_id=message_id, provider_status="undelivered", error_code="30005")
    assert OutboundMessage.objects.filter(fallback_of_id=message_id).count() == 1
    messages_dispatch_due(limit=10)
    assert smtp.count_recipient("pat@example.test") == 1


def test_delivered_callback_marks_delivered(providers, patient, frozen_now):  # type: ignore[no-untyped-def]
    _queue(patient)
    messages_dispatch_due(limit=10)
    message = OutboundMessage.objects.get()
    message_status_callback(
        message_id=None, provider_status="delivered", provider_message_id=message.provider_message_id
    )
    message.refresh_from_db()
    assert message.state == "delivered"
    assert message.delivered_at is not None


def test_opted_out_patient_gets_no_sms_and_email_instead(providers, patient, frozen_now):  # type: ignore[no-untyped-def]
    twilio, smtp = providers
    message_id = _queue(patient)  # queued on SMS while opted in
    preference = preference_for(patient.pk)
    preference.sms_opt_out = True
    preference.save()
    messages_dispatch_due(limit=10)
    messages_dispatch_due(limit=10)
    assert OutboundMessage.objects.get(pk=message_id).state == "undeliverable"
    assert twilio.messages == []
    assert smtp.count_recipient("pat@example.test") == 1


def test_stale_sending_row_accepted_by_provider_is_not_sent_again(providers, patient, frozen_now, settings):  # type: ignore[no-untyped-def]
    """A worker died after Twilio accepted the message but before recording it: the reconciler finds the message at
    the provider (same recipient, same body, since the attempt began) and marks it sent without re-sending."""
    from notifications.services.dispatch import _claim, _hand_over

    twilio, _smtp = providers
    _queue(patient)
    claims = _claim(10)
    assert len(claims) == 1
    result = _hand_over(claims[0])  # the provider accepted it; the "worker" dies before _record
    assert result is not None
    assert result.accepted
    frozen_now.shift(dt.timedelta(seconds=settings.NOTIFICATIONS_SENDING_STALE_SECONDS + 1))
    assert messages_reconcile_stale() == 1
    message = OutboundMessage.objects.get()
    assert message.state == "sent"
    assert message.provider_message_id == result.provider_message_id
    messages_dispatch_due(limit=10)
    assert twilio.count_key(message.idempotency_key) == 1


def test_stale_sending_row_never_sent_is_sent_once(providers, patient, frozen_now, settings):  # type: ignore[no-untyped-def]
    from notifications.services.dispatch import _claim

    twilio, _smtp = providers
    _queue(patient)
    assert len(_claim(10)) == 1  # claimed, then the worker died before calling the provider
    frozen_now.shift(dt.timedelta(seconds=settings.NOTIFICATIONS_SENDING_STALE_SECONDS + 1))
    messages_dispatch_due(limit=10)
    message = OutboundMessage.objects.get()
    assert message.state == "sent"
    assert twilio.count_key(message.idempotency_key) == 1
    assert list(DeliveryAttempt.objects.filter(message=message).values_list("outcome", "error_code")) == [
        ("timeout", "worker_lost"),
        ("accepted", ""),
    ]


def test_bulk_transition_refuses_moves_outside_the_table(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidTransition):
        messages_transition_bulk(OutboundMessage.objects.all(), source="sent", target="withdrawn")
    with pytest.raises(InvalidTransition):  # a target that stamps a time goes through message_transition
        messages_transition_bulk(OutboundMessage.objects.all(), source="sending", target="sent")


def test_stale_row_is_found_behind_hundreds_of_later_messages_to_the_same_number(
    providers, patient, frozen_now, settings
):  # type: ignore[no-untyped-def]
    """The provider lists newest first; the lookup pages back until the attempt's start, so a message accepted
    before 250 later ones to the same number (a busy clinic line, a family sharing a phone) is still found."""
    from notifications.services.dispatch import _claim, _hand_over

    twilio, _smtp = providers
    _queue(patient)
    [claim] = _claim(10)
    result = _hand_over(claim)  # accepted; the worker dies before recording it
    assert result is not None
    assert result.accepted
    message = OutboundMessage.objects.get()
    client = twilio.client()
    for n in range(250):
        client.messages.create(to=message.recipient, from_="+15005550006", body=f"other message {n}")
    frozen_now.shift(dt.timedelta(seconds=settings.NOTIFICATIONS_SENDING_STALE_SECONDS + 1))
    assert messages_reconcile_stale() == 1
    message.refresh_from_db()
    assert (message.state, message.provider_message_id) == ("sent", result.provider_message_id)
    assert twilio.count_key(message.idempotency_key) == 1


def test_claiming_costs_the_same_queries_for_five_or_twenty_messages(providers, patient, frozen_now):  # type: ignore[no-untyped-def]
    """A claim pass locks, checks sources and preferences, renders and marks its batch with a fixed number of
    queries (one UPDATE and one INSERT for the whole batch), whatever the batch size."""
    from notifications.services.dispatch import _claim

    counts = []
    for n in (5, 20):
        for i in range(n):
            _queue(patient, key=f"reminder:{n}:{i}")
        with CaptureQueriesContext(connection) as queries:
            assert len(_claim(100)) == n
        # The claim's own transaction (up to its COMMIT); after it, on commit, a throttled live-health event may
        # or may not be published (notifications/services/health.py), which is not the claim's cost.
        sql = [q["sql"] for q in queries.captured_queries]
        counts.append(sql.index("COMMIT") + 1 if "COMMIT" in sql else len(sql))
    assert counts[0] == counts[1]
    assert counts[0] <= 8
