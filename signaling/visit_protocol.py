"""Wire protocol of ``/ws/v1/visits/<uuid>/`` (docs/signaling-protocol.md). Validation only: no I/O, no ORM.

The socket carries WebRTC signaling between the participants of a video visit: browser to browser in ``direct``
mode (patient and practitioner), and browser to the media relay in ``relay`` mode (everyone, guests included).
Every client frame is a JSON text frame of at most ``MAX_FRAME_BYTES`` bytes; a socket may send ``RATE_PER_S``
frames per second on average with bursts of up to ``BURST`` frames (a token bucket: ICE candidates arrive in
bursts). Client frames:

- ``{"kind": "signal", "type": "offer" | "answer", "sdp": str}``
- ``{"kind": "signal", "type": "candidate", "candidate": {candidate, sdpMid, sdpMLineIndex, usernameFragment?} | null}``
- ``{"kind": "signal", "type": "restart"}``                    (ask the offerer for an ICE restart)
- ``{"kind": "media", "audio": bool, "video": bool, "screen": bool}``
- ``{"kind": "ping"}``
- ``{"kind": "signal", "to": "relay", "pc": "pub" | "sub:<participant id>", "type": "offer", "sdp": str}``
- ``{"kind": "signal", "to": "relay", "pc": ..., "type": "candidate", "candidate": {...} | null}``
- ``{"kind": "signal", "to": "relay", "pc": ..., "type": "close"}``
- ``{"kind": "control", "action": "mute" | "unmute" | "remove", "participant_id": "patient" | "guest-<hex>"}``

``signal`` and ``media`` frames may carry an optional ``"seq"`` (a non-negative integer the client chooses), which
is relayed unchanged. Unknown fields are refused: what is relayed is exactly what this module validated.

A frame that breaks these rules raises ``FrameRejected``, which names the close code the consumer closes with:
``CLOSE_MALFORMED`` (4400), ``CLOSE_TOO_LARGE`` (4413) or ``CLOSE_RATE_LIMITED`` (4429, raised by the consumer from
``TokenBucket``). Nothing here ever holds or logs the content of a frame.
"""

from __future__ import annotations

import json
import re
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
CLOSE_REMOVED: Final = 4411
CLOSE_TOO_LARGE: Final = 4413
CLOSE_RATE_LIMITED: Final = 4429

CLOSE_CODES: Final = {
    CLOSE_MALFORMED: "malformed frame: not JSON, unknown kind, or a field that breaks the schema",
    CLOSE_NOT_AUTHENTICATED: "not signed in",
    CLOSE_FORBIDDEN: "not a participant of this visit (or no such visit)",
    CLOSE_REPLACED: "the same participant connected again from another socket (another tab or a reload)",
    CLOSE_VISIT_ENDED: "the visit has finished",
    CLOSE_REMOVED: "the practitioner removed this guest from the visit; do not reconnect",
    CLOSE_TOO_LARGE: f"frame larger than {MAX_FRAME_BYTES} bytes",
    CLOSE_RATE_LIMITED: f"more than {RATE_PER_S:g} frames/s beyond a burst of {BURST}",
}

# The participant ids of a 1:1 visit (telehealth's SignalingGrant.participant_id): direct-mode signal frames are
# relayed between these two only. Guests are ``guest-<32 hex>`` and signal only to the relay.
PARTICIPANT_IDS: Final = frozenset({"patient", "practitioner"})
PARTICIPANT_ID_PATTERN: Final = re.compile(r"^(patient|practitioner|guest-[0-9a-f]{32})$")
RELAY_PC_PATTERN: Final = re.compile(r"^(pub|sub:(patient|practitioner|guest-[0-9a-f]{32}))$")
MAX_PC_CHARS: Final = 80
RELAY_SIGNAL_TYPES: Final = frozenset({"offer", "candidate", "close"})
CONTROL_ACTIONS: Final = frozenset({"mute", "unmute", "remove"})
CONTROL_TARGET_PATTERN: Final = re.compile(r"^(patient|guest-[0-9a-f]{32})$")
MODE_RELAY: Final = "relay"

STATUS_IN_PROGRESS: Final = "in-progress"
STATUS_FINISHED: Final = "finished"

SignalType = Literal["offer", "answer", "candidate", "restart"]
SIGNAL_TYPES: Final = frozenset({"offer", "answer", "candidate", "restart"})
CLIENT_KINDS: Final = frozenset({"signal", "media", "ping", "control"})
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
    """One validated client frame. ``relay`` is the JSON object to forward (without ``from``, and for a
    relay-bound signal without ``to``); None for ping. ``to_relay``: a signal for the media relay, ``pc`` its
    peer connection id. ``action``/``target``: a practitioner's control frame."""

    kind: Literal["signal", "media", "ping", "control"]
    signal_type: str | None = None
    relay: dict[str, Any] | None = None
    to_relay: bool = False
    pc: str | None = None
    action: str | None = None
    target: str | None = None


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


def _relay_signal(raw: dict[str, Any]) -> ClientFrame:
    """A signal for the media relay: the browser is always the offerer; ``pc`` names its peer connection."""
    if raw.get("to") != "relay":
        # Frames are never addressed to a participant: direct signals go to "the other side" implicitly.
        raise _malformed("unknown_field", '"to" may only be "relay" (leave it out for a direct signal).')
    pc = raw.get("pc")
    if not isinstance(pc, str) or len(pc) > MAX_PC_CHARS or RELAY_PC_PATTERN.match(pc) is None:
        raise _malformed("invalid_pc", '"pc" is "pub" or "sub:<participant id>".')
    kind_type = raw.get("type")
    if not isinstance(kind_type, str) or kind_type not in RELAY_SIGNAL_TYPES:
        raise _malformed("invalid_signal", f'"type" of a relay signal is one of {sorted(RELAY_SIGNAL_TYPES)}.')
    relay: dict[str, Any] = {"kind": "signal", "pc": pc, "type": kind_type}
    base = frozenset({"kind", "to", "pc", "type", "seq"})
    if kind_type == "offer":
        _check_keys(raw, base | {"sdp"}, "relay offer signal")
        sdp = raw.get("sdp")
        if not isinstance(sdp, str) or not sdp.startswith("v="):
            raise _malformed("invalid_sdp", '"sdp" is a session description (a string starting with "v=").')
        relay["sdp"] = sdp
    elif kind_type == "candidate":
        _check_keys(raw, base | {"candidate"}, "relay candidate signal")
        if "candidate" not in raw:
            raise _malformed("invalid_candidate", 'A candidate signal has a "candidate" (an object, or null).')
        relay["candidate"] = _candidate(raw["candidate"])
    else:
        _check_keys(raw, base, "relay close signal")
    relay.update(_seq(raw))
    return ClientFrame(kind="signal", signal_type=kind_type, relay=relay, to_relay=True, pc=pc)


def _control(raw: dict[str, Any]) -> ClientFrame:
    _check_keys(raw, frozenset({"kind", "action", "participant_id"}), "control")
    action = raw.get("action")
    if not isinstance(action, str) or action not in CONTROL_ACTIONS:
        raise _malformed("invalid_control", f'"action" is one of {sorted(CONTROL_ACTIONS)}.')
    target = raw.get("participant_id")
    if not isinstance(target, str) or CONTROL_TARGET_PATTERN.match(target) is None:
        raise _malformed("invalid_control", '"participant_id" is "patient" or "guest-<32 hex>".')
    return ClientFrame(kind="control", action=action, target=target)


def _signal(raw: dict[str, Any]) -> ClientFrame:
    if "to" in raw:
        return _relay_signal(raw)
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
    if kind == "control":
        return _control(raw)
    raise _malformed("unknown_kind", f"Unknown kind; expected one of {sorted(CLIENT_KINDS)}.")


def signal_allowed(status: str) -> bool:
    """Signal frames are relayed only while the visit is in progress (admitted and not yet ended)."""
    return status == STATUS_IN_PROGRESS


def relay_signal_refusal(*, status: str, mode: str, admitted: bool, pc: str, participant_id: str) -> str | None:
    """Why a relay-bound signal may not go to the relay now (an error code; the socket stays open), or None:
    ``not_admitted`` before the visit is in progress or before this guest is admitted; ``not_allowed`` while the
    visit is in direct mode or for a subscription to one's own media."""
    if not signal_allowed(status) or not admitted:
        return "not_admitted"
    if mode != MODE_RELAY or pc == f"sub:{participant_id}":
        return "not_allowed"
    return None


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


NOT_ALLOWED_DETAILS: Final = {
    "direct_guest": "Guests send media through the relay only.",
    "direct_mode": "The visit is not in relay mode.",
    "own_media": "A participant does not subscribe to their own media.",
    "control": "Only the practitioner controls participants.",
}


def not_allowed_frame(detail: str) -> dict[str, str]:
    return error_frame("not_allowed", detail)


def welcome_frame(
    *, role: str, participant_id: str, status: str, mode: str | None = None, name: str | None = None
) -> dict[str, str]:
    frame = {"kind": "welcome", "role": role, "participant_id": participant_id, "status": status}
    if mode is not None:
        frame["mode"] = mode
    if name is not None:
        frame["name"] = name
    return frame


def peer_frame(
    kind: Literal["peer-joined", "peer-present"], *, participant_id: str, role: str, name: str | None = None
) -> dict[str, str]:
    frame = {"kind": kind, "participant_id": participant_id, "role": role}
    if name is not None:
        frame["name"] = name
    return frame


def visit_mode_frame(*, mode: str) -> dict[str, str]:
    return {"kind": "visit-mode", "mode": mode}


def roster_frame(*, participants: list[dict[str, Any]], connected: set[str]) -> dict[str, Any]:
    """The roster as this socket sends it: ``connected`` is what this socket knows (its peers and itself)."""
    return {
        "kind": "roster",
        "participants": [{**p, "connected": p.get("participant_id") in connected} for p in participants],
    }


def removed_frame() -> dict[str, str]:
    return error_frame("removed", "The practitioner removed you from the visit.")


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
