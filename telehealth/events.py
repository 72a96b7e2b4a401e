"""Realtime events of telehealth (docs/telehealth.md). Payloads are small (ids, statuses, versions): browsers
refetch over REST. Chat bodies go only to the visit's own stream, whose members may read them.

Streams:
- ``group:visit.<uuid>``                    ``visit.changed`` {visit_id, status, version}; ``visit.message``
- ``group:telehealth.queue.<practitioner>`` ``queue.changed`` {practitioner_id}
- ``user:<patient user>``                   ``waiting.changed`` {visit_id}
All are published inside the caller's transaction (numbered, stored) and pushed after commit by the core spine.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.realtime.services import publish_to_group, publish_to_user

VISIT_CHANGED = "visit.changed"
VISIT_MESSAGE = "visit.message"
QUEUE_CHANGED = "queue.changed"
WAITING_CHANGED = "waiting.changed"


def visit_group(visit_id: object) -> str:
    return f"visit.{visit_id}"


def queue_group(practitioner_id: int) -> str:
    return f"telehealth.queue.{practitioner_id}"


def visit_changed(*, visit_id: object, status: str, version: int) -> None:
    publish_to_group(
        name=visit_group(visit_id),
        type=VISIT_CHANGED,
        data={"visit_id": str(visit_id), "status": status, "version": version},
    )


def visit_message(*, visit_id: object, data: dict[str, Any]) -> None:
    publish_to_group(name=visit_group(visit_id), type=VISIT_MESSAGE, data=data)


def queue_changed(*, practitioner_ids: Iterable[int]) -> None:
    for practitioner_id in sorted(set(practitioner_ids)):
        publish_to_group(
            name=queue_group(practitioner_id), type=QUEUE_CHANGED, data={"practitioner_id": practitioner_id}
        )


def waiting_changed(*, patients: Iterable[tuple[int, object]]) -> None:
    """``patients``: (patient user id, visit id) of each waiting patient whose view changed."""
    for user_id, visit_id in sorted({(u, str(v)) for u, v in patients}):
        publish_to_user(user_id=user_id, type=WAITING_CHANGED, data={"visit_id": visit_id})
