"""What the relay accepts on its channel-layer group and what it sends back (docs/relay.md, "Control interface").

Validation only, no I/O. A message the relay cannot accept becomes a ``RelayRefused`` carrying the code of the
``relay-error`` frame the participant gets; nothing is created for it.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from telehealth.channels import participant_inbox

PARTICIPANT_RE = re.compile(r"^(patient|practitioner|guest-[0-9a-f]{32})$")
PC_RE = re.compile(r"^(pub|sub:(patient|practitioner|guest-[0-9a-f]{32}))$")
MAX_PC_LEN = 80
MAX_SDP_BYTES = 16 * 1024  # the signaling socket's frame cap: no valid offer can be larger
MAX_CANDIDATE_LEN = 1024

# relay-error codes (the contract's list).
UNKNOWN_PARTICIPANT = "unknown_participant"
BAD_SDP = "bad_sdp"
NOT_ALLOWED = "not_allowed"
OVERLOADED = "overloaded"

SIGNAL_TYPES = ("offer", "candidate", "close")


class RelayRefused(Exception):
    """A relay-bound message refused with a ``relay-error`` code; ``inbox`` is None when nobody can be told."""

    def __init__(self, code: str, detail: str, *, pc: str | None = None, inbox: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail, self.pc, self.inbox = code, detail, pc, inbox

    def frame(self) -> dict[str, Any]:
        return error_frame(pc=self.pc, code=self.code, detail=self.detail)


@dataclass(frozen=True)
class Signal:
    """A validated ``relay.signal`` message. ``target`` is the participant a ``sub:`` pc subscribes to."""

    visit_id: str
    participant_id: str
    inbox: str
    pc: str
    type: str
    sdp: str | None = None
    candidate: dict[str, Any] | None = None

    @property
    def target(self) -> str | None:
        return self.pc[4:] if self.pc.startswith("sub:") else None


def canonical_uuid(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def parse_signal(message: dict[str, Any], *, verified: tuple[str, str] | None) -> Signal:
    """Validate a ``relay.signal`` message whose token verified to ``verified`` (visit id, participant id), or
    None when it did not verify. Raises ``RelayRefused``."""
    visit_id = canonical_uuid(message.get("visit_id"))
    participant_id = message.get("participant_id")
    frame = message.get("frame")
    pc = frame.get("pc") if isinstance(frame, dict) else None
    pc = pc if isinstance(pc, str) and len(pc) <= MAX_PC_LEN else None
    if visit_id is None or not isinstance(participant_id, str) or not PARTICIPANT_RE.fullmatch(participant_id):
        # Nobody to answer: the inbox is derived from these, never taken from the message.
        raise RelayRefused(UNKNOWN_PARTICIPANT, "No such participant.", pc=pc)
    inbox = participant_inbox(visit_id, participant_id)
    if verified is None or verified != (visit_id, participant_id) or message.get("inbox") != inbox:
        raise RelayRefused(NOT_ALLOWED, "The relay token does not verify.", pc=pc, inbox=inbox)
    if not isinstance(frame, dict):
        raise RelayRefused(BAD_SDP, "No signal frame.", pc=pc, inbox=inbox)
    if pc is None or not PC_RE.fullmatch(pc):
        raise RelayRefused(UNKNOWN_PARTICIPANT, "Unknown pc id.", pc=pc, inbox=inbox)
    if pc == f"sub:{participant_id}":
        raise RelayRefused(NOT_ALLOWED, "A participant cannot subscribe to itself.", pc=pc, inbox=inbox)
    kind, type_ = frame.get("kind"), frame.get("type")
    if kind != "signal" or type_ not in SIGNAL_TYPES:
        raise RelayRefused(BAD_SDP, "Expected an offer, a candidate or a close.", pc=pc, inbox=inbox)
    if type_ == "offer":
        sdp = frame.get("sdp")
        if not isinstance(sdp, str) or not sdp.startswith("v="):
            raise RelayRefused(BAD_SDP, "The offer has no SDP.", pc=pc, inbox=inbox)
        if len(sdp.encode()) > MAX_SDP_BYTES:
            raise RelayRefused(BAD_SDP, "The offer is too large.", pc=pc, inbox=inbox)
        return Signal(visit_id, participant_id, inbox, pc, type_, sdp=sdp)
    if type_ == "candidate":
        candidate = frame.get("candidate")
        if candidate is not None and not _candidate_ok(candidate):
            raise RelayRefused(BAD_SDP, "Malformed ICE candidate.", pc=pc, inbox=inbox)
        return Signal(visit_id, participant_id, inbox, pc, type_, candidate=candidate)
    return Signal(visit_id, participant_id, inbox, pc, type_)


def _candidate_ok(candidate: Any) -> bool:
    if not isinstance(candidate, dict):
        return False
    line, mid, index = candidate.get("candidate"), candidate.get("sdpMid"), candidate.get("sdpMLineIndex")
    if not isinstance(line, str) or len(line) > MAX_CANDIDATE_LEN:
        return False
    if mid is not None and (not isinstance(mid, str) or len(mid) > 64):
        return False
    if index is not None and (not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 1024):
        return False
    return line == "" or mid is not None or index is not None


def answer_frame(*, pc: str, sdp: str) -> dict[str, Any]:
    return {"kind": "signal", "from": "relay", "pc": pc, "type": "answer", "sdp": sdp}


def error_frame(*, pc: str | None, code: str, detail: str) -> dict[str, Any]:
    return {"kind": "relay-error", "pc": pc, "code": code, "detail": detail}


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))
