"""The message state machine: one table, one function. Nothing else assigns ``OutboundMessage.state``."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from notifications.errors import InvalidTransition
from notifications.models import MessageState, OutboundMessage

S = MessageState

MESSAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    # queued -> undeliverable: opted out, no contact, or no provider configured, found at dispatch.
    S.QUEUED: frozenset({S.SENDING, S.WITHDRAWN, S.UNDELIVERABLE}),
    # sending -> queued: a retry after a provider error; sending -> sent/failed: the provider's answer (or what the
    # reconciler learnt from the provider after a crash).
    S.SENDING: frozenset({S.SENT, S.QUEUED, S.FAILED, S.UNDELIVERABLE}),
    # sent -> failed: an "undelivered"/"failed" status callback.
    S.SENT: frozenset({S.DELIVERED, S.FAILED}),
    S.DELIVERED: frozenset(),
    S.FAILED: frozenset(),
    S.UNDELIVERABLE: frozenset(),
    S.WITHDRAWN: frozenset(),
}

FINAL_STATES = frozenset({S.DELIVERED, S.FAILED, S.UNDELIVERABLE, S.WITHDRAWN})


def message_transition(message: OutboundMessage, target: str) -> str:
    """Move ``message`` to ``target`` if the table allows it, stamping the matching time; returns the previous state.
    Raises ``InvalidTransition``. Does not save: the calling service does, under the row's lock."""
    current = message.state
    if target not in MESSAGE_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(current, target)
    now = timezone.now()
    message.state = target
    if target == S.SENT:
        message.sent_at = message.sent_at or now
    elif target == S.DELIVERED:
        message.delivered_at = now
    message.updated_at = now
    return current


def messages_transition_bulk(queryset: QuerySet[OutboundMessage], *, source: str, target: str) -> int:
    """Move every message of ``queryset`` that is in state ``source`` to ``target`` in one UPDATE (the row locks
    are taken by the UPDATE itself); returns how many moved. Only for targets that stamp no time (e.g. queued ->
    withdrawn). Raises ``InvalidTransition`` if the table does not allow the move."""
    if target not in MESSAGE_TRANSITIONS.get(source, frozenset()) or target in (S.SENT, S.DELIVERED):
        raise InvalidTransition(source, target)
    return queryset.filter(state=source).update(state=target, updated_at=timezone.now())
