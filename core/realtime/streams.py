"""Stream names, the channel-layer group each maps to, and who may receive which stream.

A stream is ``<kind>:<key>``:

- ``user:<id>``      everything addressed to one person (all their tabs and devices)
- ``role:<role>``    everyone currently holding a role
- ``session:<id>``   the tabs of one sign-in session (``id`` is an opaque hash, never the session key)
- ``group:<name>``   an application-defined audience (``location.3``, later ``visit.<uuid>``); membership is
                     decided by an authoriser that the owning app registers for the name's prefix
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Protocol

from django.utils.crypto import salted_hmac

STREAM_RE = re.compile(r"^(user|role|session|group):([A-Za-z0-9_.\-]{1,100})$")


class StreamUser(Protocol):
    """What the spine needs to know about a user; ``ehr.User`` satisfies it."""

    pk: object
    roles: list[str]
    is_authenticated: bool


GroupAuthoriser = Callable[[StreamUser, str], bool]
_group_authorisers: dict[str, GroupAuthoriser] = {}


def register_group_authoriser(prefix: str, authoriser: GroupAuthoriser) -> None:
    """Let the app owning ``group:<prefix>.*`` decide who may subscribe (call from ``AppConfig.ready``)."""
    _group_authorisers[prefix] = authoriser


def user_stream(user_id: object) -> str:
    return f"user:{user_id}"


def role_stream(role: str) -> str:
    return f"role:{role}"


def group_stream(name: str) -> str:
    return f"group:{name}"


def session_stream_id(session_key: str) -> str:
    """Opaque, stable id of a sign-in session: safe to show to the browser and to put in events."""
    return salted_hmac("consulta.realtime.session", session_key).hexdigest()[:24]


def session_stream(session_key: str) -> str:
    return f"session:{session_stream_id(session_key)}"


def is_valid_stream(name: str) -> bool:
    return bool(STREAM_RE.match(name))


def channel_group(stream: str) -> str:
    """Channel-layer group for a stream (group names allow only ``[A-Za-z0-9_.-]``)."""
    return "rt." + stream.replace(":", ".", 1)


def default_streams(*, user: StreamUser, session_key: str | None) -> list[str]:
    """The streams a signed-in socket joins without asking: its user, each role, its session."""
    names = [user_stream(user.pk)] + [role_stream(r) for r in user.roles]
    if session_key:
        names.append(session_stream(session_key))
    return names


def may_receive(*, user: StreamUser, stream: str, session_key: str | None) -> bool:
    """Whether ``user`` (in the session ``session_key``) may receive ``stream``, live or through catch-up."""
    if not user.is_authenticated or not is_valid_stream(stream):
        return False
    if stream in default_streams(user=user, session_key=session_key):
        return True
    if stream.startswith("group:"):
        name = stream.removeprefix("group:")
        authoriser = _group_authorisers.get(name.split(".", 1)[0])
        return authoriser is not None and authoriser(user, name)
    return False


def streams_for_roles(roles: Iterable[str]) -> list[str]:
    return [role_stream(r) for r in roles]
