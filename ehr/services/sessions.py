"""Sign-in sessions as the realtime spine sees them."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.realtime.services import event_publish, publish_to_user
from core.realtime.streams import session_stream, session_stream_id
from ehr import events
from ehr.models import User

USER_AGENT_MAX = 120


def session_sign_in(*, user: User, session_key: str, user_agent: str) -> str:
    """Tell the user's other tabs and devices that a new session started; returns the session's opaque id.

    Called by the login view right after ``django.contrib.auth.login``. The user agent is trimmed and is the
    only client detail shared; no address, no location.
    """
    session_id = session_stream_id(session_key)
    with transaction.atomic():
        publish_to_user(
            user_id=user.pk,
            type=events.SESSION_SIGNED_IN_ELSEWHERE,
            data={"session": session_id, "user_agent": user_agent[:USER_AGENT_MAX], "at": timezone.now().isoformat()},
        )
    return session_id


def session_sign_out(*, session_key: str) -> None:
    """Close every tab of this session (other tabs learn at once instead of failing on their next request)."""
    with transaction.atomic():
        event_publish(
            stream=session_stream(session_key),
            type=events.SESSION_REVOKED,
            data={"reason": "logged_out"},
            close_code=events.CLOSE_SESSION_REVOKED,
        )
