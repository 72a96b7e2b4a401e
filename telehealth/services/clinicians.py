"""The console heartbeat: what waiting patients see of their doctor's status."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ehr.models import Role, User
from telehealth import events
from telehealth.dto import PresenceRef
from telehealth.errors import Forbidden, InvalidInput
from telehealth.models import ClinicianPresence, PresenceStatus
from telehealth.services.visits import waiting_patients


def clinician_presence_touch(*, actor: User, status: str = "available") -> PresenceRef:
    """The virtual clinic console's heartbeat (every 20 s): the practitioner (or nurse) is ``available`` or
    ``away``. Patients waiting for them are told only when what they see changes (coming online, going away),
    not on every beat. One row per clinician, locked while it changes."""
    if not actor.has_role(Role.PRACTITIONER, Role.NURSE):
        raise Forbidden("Only clinicians have a console presence.")
    if status not in PresenceStatus.values:
        raise InvalidInput({"status": ["One of: available, away."]})
    now = timezone.now()
    online_since = now - dt.timedelta(seconds=settings.TELEHEALTH_PRESENCE_SECONDS)
    with transaction.atomic():
        presence, created = ClinicianPresence.objects.select_for_update().get_or_create(
            pk=actor.pk, defaults={"status": status, "last_seen_at": now}
        )
        before = "offline" if created or presence.last_seen_at < online_since else presence.status
        presence.status = status
        presence.last_seen_at = now
        presence.save()
        if before != status:
            events.waiting_changed(patients=waiting_patients([actor.pk]))
    return PresenceRef(status=presence.status, last_seen_at=presence.last_seen_at)
