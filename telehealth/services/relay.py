"""Short-lived tokens between the signaling consumer and the media relay (docs/telehealth.md, "Media relay").

The consumer signs every relay-bound frame's (visit, participant) with ``RELAY_SECRET`` (salt
``telehealth.relay``); the relay process verifies it and refuses anything older than ``RELAY_TOKEN_MAX_AGE_S``.
The token is what authenticates a browser's peer connection at the relay: it can only have come from a socket that
the signaling grant admitted. Pure functions: no database, no I/O."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core import signing

RELAY_SALT = "telehealth.relay"
RELAY_TOKEN_MAX_AGE_S = 60


class RelayTokenInvalid(ValueError):
    """The token does not verify, names nothing, or is older than the maximum age."""


def relay_secret() -> str:
    """``settings.RELAY_SECRET``, or one derived from ``SECRET_KEY`` when it is empty (local runs and tests)."""
    configured = getattr(settings, "RELAY_SECRET", "")
    if configured:
        return str(configured)
    return hashlib.sha256(f"relay:{settings.SECRET_KEY}".encode()).hexdigest()


def relay_token_issue(*, visit_id: str, participant_id: str) -> str:
    """A token for one relay-bound frame of ``participant_id`` in ``visit_id`` (made by the signaling consumer)."""
    return signing.dumps({"v": str(visit_id), "p": participant_id}, salt=RELAY_SALT, key=relay_secret())


def relay_token_verify(*, token: Any, max_age: int = RELAY_TOKEN_MAX_AGE_S) -> tuple[str, str]:
    """(visit id, participant id) of a valid token no older than ``max_age`` seconds; raises ``RelayTokenInvalid``.
    Called by the relay process for every message it receives."""
    if not isinstance(token, str) or not token or len(token) > 500:
        raise RelayTokenInvalid("no token")
    try:
        data = signing.loads(token, salt=RELAY_SALT, key=relay_secret(), max_age=max_age)
    except signing.SignatureExpired:
        raise RelayTokenInvalid("expired") from None
    except signing.BadSignature:
        raise RelayTokenInvalid("bad signature") from None
    if not isinstance(data, dict) or not isinstance(data.get("v"), str) or not isinstance(data.get("p"), str):
        raise RelayTokenInvalid("malformed")
    return data["v"], data["p"]
