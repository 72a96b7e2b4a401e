"""Wire protocol of ``/ws/v1/visits/<uuid>/`` (docs/signaling-protocol.md). Validation only: no I/O, no ORM.

The socket carries WebRTC signaling between the two participants of a video visit. Every client frame is a JSON
text frame of at most ``MAX_FRAME_BYTES`` bytes; a socket may send ``RATE_PER_S`` frames per second on average
with bursts of up to ``BURST`` frames (a token bucket: ICE candidates arrive in bursts). Client frames:

- ``{"kind": "signal", "type": "offer" | "answer", "sdp": str}``
- ``{"kind": "signal", "type": "candidate", "candidate": {candidate, sdpMid, sdpMLineIndex, usernameFragment?} | null}``
- ``{"kind": "signal", "type": "restart"}``                    (ask the offerer for an ICE restart)
- ``{"kind": "media", "audio": bool, "video": bool, "screen": bool}``
- ``{"kind": "ping"}``

``signal`` and ``media`` frames may carry an optional ``"seq"`` (a non-negative integer the client chooses), which
is relayed unchanged. Unknown fields are refused: what is relayed is exactly what this module validated.

A frame that breaks these rules raises ``FrameRejected``, which names the close code the consumer closes with:
``CLOSE_MALFORMED`` (4400), ``CLOSE_TOO_LARGE`` (4413) or ``CLOSE_RATE_LIMITED`` (4429, raised by the consumer from
``TokenBucket``). Nothing here ever holds or logs the content of a frame.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

MAX_FRAME_BYTES: Final = 16 * 1024
RATE_PER_S: Final = 60.0
BURST: Final = 120

MAX_CANDIDATE_CHARS: Final = 1024
MAX_SDP_MID_CHARS: Final = 64
MAX_UFRAG_CHARS: Final = 256
MAX_MLINE_INDEX: Final = 1023
MAX_SEQ: Final = 2**53 - 1  # what a JavaScript number holds exactly

CLOSE_MALFORMED: Final = 4400
CLOSE_NOT_AUTHENTICATED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_REPLACED: Final = 4409
CLOSE_VISIT_ENDED: Final = 4410
CLOSE_TOO_LARGE: Final = 4413
CLOSE_RATE_LIMITED: Final = 4429

CLOSE_CODES: Final = {
    CLOSE_MALFORMED: "malformed frame: not JSON, unknown kind, or a field that breaks the schema",
    CLOSE_NOT_AUTHENTICATED: "not signed in",
    CLOSE_FORBIDDEN: "not a participant of this visit (or no such visit)",
    CLOSE_REPLACED: "the same participant connected again from another socket (another tab or a reload)",
    CLOSE_VISIT_ENDED: "the visit has finished",
    CLOSE_TOO_LARGE: f"frame larger than {MAX_FRAME_BYTES} bytes",
    CLOSE_RATE_LIMITED: f"more than {RATE_PER_S:g} frames/s beyond a burst of {BURST}",
}

# The participant ids of a 1:1 visit (telehealth's SignalingGrant.participant_id): frames are relayed to the others.
PARTICIPANT_IDS: Final = frozenset({"patient", "practitioner"})

STATUS_IN_PROGRESS: Final = "in-progress"
STATUS_FINISHED: Final = "finished"

SignalType = Literal["offer", "answer", "candidate", "restart"]
SIGNAL_TYPES: Final = frozenset({"offer", "answer", "candidate", "restart"})
CLIENT_KINDS: Final = frozenset({"signal", "media", "ping"})
CANDIDATE_KEYS: Final = frozenset({"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})


class FrameRejected(ValueError):
    """A client frame the socket must be closed for: ``close_code`` plus an error ``code`` and ``detail``."""

    def __init__(self, close_code: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.close_code = close_code
        self.code = code
        self.detail = detail

    def frame(self) -> dict[str, str]:
        return error_frame(self.code, self.detail)


@dataclass(frozen=True)
class ClientFrame:
    """One validated client frame. ``relay`` is the JSON object to forward (without ``from``); None for ping."""

    kind: Literal["signal", "media", "ping"]
    signal_type: SignalType | None = None
    relay: dict[str, Any] | None = None


def _malformed(code: str, detail: str) -> FrameRejected:
    return FrameRejected(CLOSE_MALFORMED, code, detail)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN / Infinity are not JSON


def _check_keys(raw: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    extra = set(raw) - allowed
    if extra:
        raise _malformed("unknown_field", f"{what} frames have no field(s) {sorted(extra)}.")


def _int_between(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _seq(raw: dict[str, Any]) -> dict[str, int]:
    if "seq" not in raw:
        return {}
    seq = raw["seq"]
    if not _int_between(seq, 0, MAX_SEQ):
        raise _malformed("invalid_seq", '"seq" is an integer from 0 to 2^53-1.')
    return {"seq": seq}


def _opt_str(value: Any, limit: int, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _malformed("invalid_candidate", f'"{name}" is a string of at most {limit} characters, or null.')
    return value


def _candidate(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None  # end of candidates
    if not isinstance(value, dict):
        raise _malformed("invalid_candidate", '"candidate" is an object or null.')
    extra = set(value) - CANDIDATE_KEYS
    if extra:
        raise _malformed("invalid_candidate", f"Candidates have no field(s) {sorted(extra)}.")
    line = value.get("candidate")
    if not isinstance(line, str) or len(line) > MAX_CANDIDATE_CHARS:
        raise _malformed(
            "invalid_candidate", f'"candidate.candidate" is a string of at most {MAX_CANDIDATE_CHARS} characters.'
        )
    index = value.get("sdpMLineIndex")
    if index is not None and not _int_between(index, 0, MAX_MLINE_INDEX):
        raise _malformed("invalid_candidate", f'"sdpMLineIndex" is an integer from 0 to {MAX_MLINE_INDEX}, or null.')
    mid = _opt_str(value.get("sdpMid"), MAX_SDP_MID_CHARS, "sdpMid")
    if mid is None and index is None and line:
        raise _malformed("invalid_candidate", 'A candidate needs "sdpMid" or "sdpMLineIndex".')
    out: dict[str, Any] = {"candidate": line, "sdpMid": mid, "sdpMLineIndex": index}
    if "usernameFragment" in value:
        out["usernameFragment"] = _opt_str(value["usernameFragment"], MAX_UFRAG_CHARS, "usernameFragment")
    return out


def _signal(raw: dict[str, Any]) -> ClientFrame:
    kind_type = raw.get("type")
    if not isinstance(kind_type, str) or kind_type not in SIGNAL_TYPES:
        raise _malformed("invalid_signal", f'"type" is one of {sorted(SIGNAL_TYPES)}.')
    relay: dict[str, Any] = {"kind": "signal", "type": kind_type}
    if kind_type in ("offer", "answer"):
        _check_keys(raw, frozenset({"kind", "type", "sdp", "seq"}), f"{kind_type} signal")
        sdp = raw.get("sdp")
        if not isinstance(sdp, str) or not sdp.startswith("v="):
            raise _malformed("invalid_sdp", '"sdp" is a session description (a string starting with "v=").')
        relay["sdp"] = sdp
    elif kind_type == "candidate":
        _check_keys(raw, frozenset({"kind", "type", "candidate", "seq"}), "candidate signal")
        if "candidate" not in raw:
            raise _malformed("invalid_candidate", 'A candidate signal has a "candidate" (an object, or null).')
        relay["candidate"] = _candidate(raw["candidate"])
    else:
        _check_keys(raw, frozenset({"kind", "type", "seq"}), "restart signal")
    relay.update(_seq(raw))
    return ClientFrame(kind="signal", signal_type=cast(SignalType, kind_type), relay=relay)


def _media(raw: dict[str, Any]) -> ClientFrame:
    _check_keys(raw, frozenset({"kind", "audio", "video", "screen", "seq"}), "media")
    relay: dict[str, Any] = {"kind": "media"}
    for name in ("audio", "video", "screen"):
        value = raw.get(name)
        if not isinstance(value, bool):
            raise _malformed("invalid_media", f'"{name}" is true or false.')
        relay[name] = value
    relay.update(_seq(raw))
    return ClientFrame(kind="media", relay=relay)


def parse_client_frame(text: str | None, data: bytes | None) -> ClientFrame:
    """Validate one inbound frame; raise ``FrameRejected`` (with its close code) when it breaks the protocol."""
    if text is None:
        if data is not None and len(data) > MAX_FRAME_BYTES:
            raise FrameRejected(CLOSE_TOO_LARGE, "frame_too_large", f"Frames are limited to {MAX_FRAME_BYTES} bytes.")
        raise _malformed("binary_not_supported", "Send JSON text frames.")
    # A str of n characters encodes to at least n bytes: only a long one needs encoding to be measured.
    if len(text) > MAX_FRAME_BYTES or (len(text) > MAX_FRAME_BYTES // 4 and len(text.encode()) > MAX_FRAME_BYTES):
        raise FrameRejected(CLOSE_TOO_LARGE, "frame_too_large", f"Frames are limited to {MAX_FRAME_BYTES} bytes.")
    try:
        raw: Any = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        raise _malformed("malformed_json", "The frame is not valid JSON.") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("kind"), str):
        raise _malformed("invalid_frame", 'A frame is a JSON object with a string "kind".')
    kind = raw["kind"]
    if kind == "signal":
        return _signal(raw)
    if kind == "media":
        return _media(raw)
    if kind == "ping":
        _check_keys(raw, frozenset({"kind"}), "ping")
        return ClientFrame(kind="ping")
    raise _malformed("unknown_kind", f"Unknown kind; expected one of {sorted(CLIENT_KINDS)}.")


def signal_allowed(status: str) -> bool:
    """Signal frames are relayed only while the visit is in progress (admitted and not yet ended)."""
    return status == STATUS_IN_PROGRESS


def canonical_visit_id(value: str) -> str | None:
    """The visit id of the URL in canonical form (lower-case hyphenated uuid), or None when it is not a uuid."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


@dataclass
class TokenBucket:
    """Per-socket rate limit: ``rate`` frames per second on average, bursts of up to ``burst``. No shared state."""

    rate: float = RATE_PER_S
    burst: int = BURST
    _tokens: float = field(default=-1.0)
    _last: float = field(default=0.0)

    def allow(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self._tokens < 0:  # first frame: the bucket starts full
            self._tokens, self._last = float(self.burst), now
        else:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


# --- server frames ------------------------------------------------------------------------------------------------


def error_frame(code: str, detail: str) -> dict[str, str]:
    return {"kind": "error", "code": code, "detail": detail}


def not_admitted_frame() -> dict[str, str]:
    return error_frame("not_admitted", "Signaling starts when the practitioner admits the patient.")


def welcome_frame(*, role: str, participant_id: str, status: str) -> dict[str, str]:
    return {"kind": "welcome", "role": role, "participant_id": participant_id, "status": status}


def peer_frame(kind: Literal["peer-joined", "peer-present"], *, participant_id: str, role: str) -> dict[str, str]:
    return {"kind": kind, "participant_id": participant_id, "role": role}


def peer_left_frame(*, participant_id: str) -> dict[str, str]:
    return {"kind": "peer-left", "participant_id": participant_id}


def visit_state_frame(*, status: str) -> dict[str, str]:
    return {"kind": "visit-state", "status": status}


PONG: Final = {"kind": "pong"}


def dumps(frame: dict[str, Any]) -> str:
    """A server frame as compact JSON text."""
    return json.dumps(frame, separators=(",", ":"))


def relayed_text(relay: dict[str, Any], *, sender: str) -> str:
    """The JSON text a peer receives for a relayed frame: the validated frame plus ``"from"``."""
    return dumps({**relay, "from": sender})
