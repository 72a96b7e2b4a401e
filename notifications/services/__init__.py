"""Writes of notifications (keyword-only, each owning its transaction or joining the caller's where documented)."""

from notifications.services.dispatch import (
    message_fallback,
    message_status_callback,
    messages_dispatch_due,
    messages_reconcile_stale,
)
from notifications.services.inbound import inbound_sms_handle
from notifications.services.messages import (
    message_enqueue,
    message_enqueue_for_patient,
    message_resend,
    messages_enqueue_batch,
    messages_withdraw_for_source,
    staff_alert_send,
)
from notifications.services.preferences import preference_get, preference_update
from notifications.services.rendering import in_quiet_hours, quiet_hours_adjust

__all__ = [
    "in_quiet_hours",
    "inbound_sms_handle",
    "message_enqueue",
    "message_enqueue_for_patient",
    "message_fallback",
    "message_resend",
    "message_status_callback",
    "messages_dispatch_due",
    "messages_enqueue_batch",
    "messages_reconcile_stale",
    "messages_withdraw_for_source",
    "preference_get",
    "preference_update",
    "quiet_hours_adjust",
    "staff_alert_send",
]
