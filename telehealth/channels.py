"""The channel-layer group of a visit's signaling sockets, and the one message telehealth sends to it.

The signaling consumer (signaling/consumers/visit.py) joins ``visit_channel_group(visit_id)`` and forwards
``{"type": "visit.state", "status": ...}`` to the browser as ``{"kind": "visit-state", "status": ...}``; it closes
its socket with 4410 when the status is ``finished``.
"""

from __future__ import annotations

from django.db import transaction

from core.realtime import push

VISIT_STATE = "visit.state"


def visit_channel_group(visit_id: object) -> str:
    """``telehealth.visit.<uuid>``: the group of the visit's signaling sockets."""
    return f"telehealth.visit.{visit_id}"


def visit_state_send_on_commit(*, visit_id: object, status: str) -> None:
    """After the caller's transaction commits, tell the visit's signaling sockets its new status. Must run inside
    the service's ``transaction.atomic()``; nothing is sent if it rolls back."""
    group = visit_channel_group(visit_id)
    message = {"type": VISIT_STATE, "status": status}
    transaction.on_commit(lambda: push.group_send(group, message))
