"""Wire protocol of ``/ws/v1/events/`` (docs/realtime.md). Validation only: no I/O, no ORM.

Client frames are JSON objects of at most ``MAX_FRAME_BYTES``, at most ``RATE_LIMIT`` per ``RATE_WINDOW_S``:

- ``{"kind": "ping"}``                                   → ``{"kind": "pong"}``
- ``{"kind": "subscribe", "stream": "group:<name>"}``    → ``{"kind": "subscribed", "stream", "seq"}``
- ``{"kind": "unsubscribe", "stream": "group:<name>"}``  → ``{"kind": "unsubscribed", "stream"}``

Server frames: ``hello``, ``event``, ``pong``, ``subscribed``, ``unsubscribed`` and ``error``
(``{"kind": "error", "code", "detail"}``). A bad frame gets an ``error`` frame and changes nothing; a client
that exceeds the rate limit is closed with ``CLOSE_RATE_LIMITED``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from core.realtime.streams import is_valid_stream

MAX_FRAME_BYTES = 4096
RATE_LIMIT = 20
RATE_WINDOW_S = 1.0

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_SESSION_REVOKED = 4403
CLOSE_RATE_LIMITED = 4429

CLIENT_KINDS = frozenset({"ping", "subscribe", "unsubscribe"})


class ProtocolError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def frame(self) -> dict[str, str]:
        return {"kind": "error", "code": self.code, "detail": self.detail}


@dataclass(frozen=True)
class ClientFrame:
    kind: str
    stream: str | None = None


def parse_client_frame(text: str | None, data: bytes | None) -> ClientFrame:
    """Validate one inbound frame; raise ProtocolError with a code the client can act on."""
    if text is None:
        raise ProtocolError("binary_not_supported", "Send JSON text frames.")
    if len(text.encode()) > MAX_FRAME_BYTES:
        raise ProtocolError("frame_too_large", f"Frames are limited to {MAX_FRAME_BYTES} bytes.")
    try:
        raw: Any = json.loads(text)
    except ValueError:
        raise ProtocolError("malformed_json", "The frame is not valid JSON.") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("kind"), str):
        raise ProtocolError("invalid_frame", 'A frame is a JSON object with a string "kind".')
    kind = raw["kind"]
    if kind not in CLIENT_KINDS:
        raise ProtocolError("unknown_kind", f"Unknown kind; expected one of {sorted(CLIENT_KINDS)}.")
    if kind == "ping":
        return ClientFrame(kind="ping")
    stream = raw.get("stream")
    if not isinstance(stream, str) or not is_valid_stream(stream) or not stream.startswith("group:"):
        raise ProtocolError("invalid_stream", 'Only "group:<name>" streams can be subscribed to.')
    return ClientFrame(kind=kind, stream=stream)


@dataclass
class RateLimiter:
    """Fixed-window counter: cheap, per socket, no shared state."""

    limit: int = RATE_LIMIT
    window_s: float = RATE_WINDOW_S
    _window_start: float = field(default=0.0)
    _count: int = field(default=0)

    def allow(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._window_start >= self.window_s:
            self._window_start, self._count = now, 0
        self._count += 1
        return self._count <= self.limit
