"""Telling open reminder-health screens that the figures changed (docs/notifications.md, "Live health").

A state change of any message (claimed, sent, delivered, failed, fell back, resent) calls ``health_changed``. After
the change commits, one event ``notifications.health_changed`` goes to the group stream ``notifications.health``
(admins and schedulers), at most once per ``HEALTH_EVENT_WINDOW_SECONDS``: a busy dispatcher would otherwise
publish (two writes) per message. The event says only "refetch"; screens refetch on it and once more just after the
window, so a change that committed inside the window, after the event went out, still shows. A screen that joins
the stream also refetches once more a window later: the window may have opened before it joined."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import transaction

from core.realtime.services import publish_to_group

logger = logging.getLogger(__name__)

HEALTH_GROUP = "notifications.health"
HEALTH_CHANGED = "notifications.health_changed"
HEALTH_EVENT_WINDOW_SECONDS = 2
_THROTTLE_KEY = "notifications:health-event"


def health_changed() -> None:
    """Callers: notifications services that change a message's state, inside or outside their transaction."""
    transaction.on_commit(_publish)


def _publish() -> None:
    try:
        if not cache.add(_THROTTLE_KEY, 1, timeout=HEALTH_EVENT_WINDOW_SECONDS):
            return  # an event went out less than a window ago; screens refetch after it
        with transaction.atomic():
            publish_to_group(
                name=HEALTH_GROUP, type=HEALTH_CHANGED, data={"window_seconds": HEALTH_EVENT_WINDOW_SECONDS}
            )
    except Exception:
        # The figures are in the database either way; an open screen shows them on its next refresh.
        logger.warning("reminder health event not published", exc_info=True)
