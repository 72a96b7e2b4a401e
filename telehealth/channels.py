"""The channel-layer groups telehealth talks to, and what it sends there after commit.

- ``telehealth.visit.<uuid>``: the visit's signaling sockets (signaling/consumers/visit.py). ``visit.state``
  {status} (4410 on ``finished``), ``visit.mode`` {mode}, ``visit.roster`` {participants},
  ``visit.removed`` {participant_id} (that guest's sockets close with 4411).
- ``telehealth.visit.<uuid>.<participant_id>``: one participant's inbox. ``visit.frame`` {frame} is sent to the
  browser as is (the ``muted`` notice); the relay's answers arrive as ``visit.relay`` {text}.
- ``telehealth.relay``: the media relay process (signaling/relay/). ``relay.participant_mute`` {visit_id,
  participant_id, audio}, ``relay.participant_remove`` {visit_id, participant_id}, ``relay.visit_end`` {visit_id};
  the consumer sends ``relay.signal`` there itself.

Every ``*_on_commit`` helper must run inside the calling service's ``transaction.atomic()``: nothing is sent if it
rolls back.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from core.realtime import push

VISIT_STATE = "visit.state"
VISIT_MODE = "visit.mode"
VISIT_ROSTER = "visit.roster"
VISIT_REMOVED = "visit.removed"
VISIT_FRAME = "visit.frame"

RELAY_GROUP = "telehealth.relay"
RELAY_SIGNAL = "relay.signal"
RELAY_PARTICIPANT_MUTE = "relay.participant_mute"
RELAY_PARTICIPANT_REMOVE = "relay.participant_remove"
RELAY_VISIT_END = "relay.visit_end"


def visit_channel_group(visit_id: object) -> str:
    """``telehealth.visit.<uuid>``: the group of the visit's signaling sockets."""
    return f"telehealth.visit.{visit_id}"


def participant_inbox(visit_id: object, participant_id: str) -> str:
    """``telehealth.visit.<uuid>.<participant_id>``: the inbox of one participant's sockets."""
    return f"{visit_channel_group(visit_id)}.{participant_id}"


def _send_on_commit(group: str, message: dict[str, Any]) -> None:
    transaction.on_commit(lambda: push.group_send(group, message))


def visit_state_send_on_commit(*, visit_id: object, status: str) -> None:
    """After commit, tell the visit's signaling sockets its new status."""
    _send_on_commit(visit_channel_group(visit_id), {"type": VISIT_STATE, "status": status})


def visit_mode_send_on_commit(*, visit_id: object, mode: str) -> None:
    """After commit, tell the visit's sockets its media mode (they switch to the relay without a reload)."""
    _send_on_commit(visit_channel_group(visit_id), {"type": VISIT_MODE, "mode": mode})


def visit_roster_send_on_commit(*, visit_id: object, participants: list[dict[str, Any]]) -> None:
    """After commit, the visit's roster (as ``telehealth.selectors.visit_roster`` built it inside the
    transaction); each socket fills in ``connected`` from the peers it knows."""
    _send_on_commit(visit_channel_group(visit_id), {"type": VISIT_ROSTER, "participants": participants})


def visit_removed_send_on_commit(*, visit_id: object, participant_id: str) -> None:
    """After commit: the sockets of ``participant_id`` close with 4411; the others drop it."""
    _send_on_commit(visit_channel_group(visit_id), {"type": VISIT_REMOVED, "participant_id": participant_id})


def participant_frame_send_on_commit(*, visit_id: object, participant_id: str, frame: dict[str, Any]) -> None:
    """After commit, a server frame to one participant's sockets (e.g. ``muted``)."""
    _send_on_commit(participant_inbox(visit_id, participant_id), {"type": VISIT_FRAME, "frame": frame})


def relay_participant_mute_send_on_commit(*, visit_id: object, participant_id: str, audio: bool) -> None:
    """After commit, the relay stops (``audio`` false) or resumes forwarding the participant's audio."""
    _send_on_commit(
        RELAY_GROUP,
        {"type": RELAY_PARTICIPANT_MUTE, "visit_id": str(visit_id), "participant_id": participant_id, "audio": audio},
    )


def relay_participant_remove_send_on_commit(*, visit_id: object, participant_id: str) -> None:
    """After commit, the relay closes all the participant's peer connections and stops forwarding it."""
    _send_on_commit(
        RELAY_GROUP, {"type": RELAY_PARTICIPANT_REMOVE, "visit_id": str(visit_id), "participant_id": participant_id}
    )


def relay_visit_end_send_on_commit(*, visit_id: object) -> None:
    """After commit, the relay drops everything of the visit."""
    _send_on_commit(RELAY_GROUP, {"type": RELAY_VISIT_END, "visit_id": str(visit_id)})
