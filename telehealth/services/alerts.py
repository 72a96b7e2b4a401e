"""Wait alerts: the practitioner hears when a patient has waited too long in their virtual waiting room.

Run by the one-minute beat (``telehealth.tasks.visits_alert_long_waits``). A patient's wait counts from the later of
their check-in and their appointment's start: someone who checks in early is not yet kept waiting by the doctor
(the console shows time since check-in; the alert is about lateness). Once a waiting patient's wait passes
``TELEHEALTH_WAIT_ALERT_MINUTES``, the visit's current practitioner gets one staff alert through notifications
(SMS to their staff contact number, else email; plus a realtime event on their user stream for the console). One
alert per visit: the notifications source (``visit``, id, ``wait_alert``) is unique while not withdrawn. The alert
carries no patient name (docs/telehealth.md)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from ehr.models import Location
from notifications.selectors import message_sources_alerted
from notifications.services import staff_alert_send
from telehealth.models import Visit, VisitStatus
from telehealth.selectors import parse_uuid

S = VisitStatus
WAIT_ALERT_SOURCE = "visit"
WAIT_ALERT_KEY = "wait_alert"
WAIT_ALERT_TEMPLATE = "staff_wait_alert"
CLINIC_PATH = "/clinic/virtual"


def _waited_since(visit: Visit) -> dt.datetime:
    return max(visit.checked_in_at, visit.queue_key)


def visits_alert_long_waits(*, limit: int = 200) -> int:
    """Alert each waiting visit's practitioner once the patient has waited longer than
    ``TELEHEALTH_WAIT_ALERT_MINUTES`` (0 = off); returns how many alerts were raised. Visits already alerted are
    skipped with one query; each new alert is written under the visit's row lock (``skip_locked``: a visit being
    admitted or transferred right now is looked at again next minute) and in the same transaction as the visit is
    re-checked, so an admitted patient never triggers one. Idempotent and safe to run concurrently (the
    notifications source key is unique). Callers: the beat task."""
    minutes = settings.TELEHEALTH_WAIT_ALERT_MINUTES
    if minutes <= 0:
        return 0
    now = timezone.now()
    cutoff = now - dt.timedelta(minutes=minutes)
    candidates = [
        str(pk)
        for pk in Visit.objects.annotate(since=Greatest(F("checked_in_at"), F("queue_key")))
        .filter(status=S.WAITING, since__lt=cutoff)
        .order_by("since")
        .values_list("pk", flat=True)[: limit * 2]
    ]
    alerted = message_sources_alerted(source_type=WAIT_ALERT_SOURCE, source_ids=candidates, source_key=WAIT_ALERT_KEY)
    raised = 0
    base = settings.NOTIFICATIONS_PUBLIC_BASE_URL.rstrip("/")
    for visit_id in [pk for pk in candidates if pk not in alerted][:limit]:
        with transaction.atomic():
            visit = Visit.objects.select_for_update(skip_locked=True).filter(pk=visit_id, status=S.WAITING).first()
            if visit is None or _waited_since(visit) >= cutoff:
                continue
            waited = int((now - _waited_since(visit)).total_seconds() // 60)
            zone = (
                Location.objects.filter(pk=visit.location_id).values_list("timezone", flat=True).first()
                if visit.location_id is not None
                else None
            ) or settings.TIME_ZONE
            ref = staff_alert_send(
                user_id=visit.practitioner_id,
                kind=WAIT_ALERT_TEMPLATE,
                context={
                    "visit_id": str(visit.pk),
                    "minutes": waited,
                    "time": visit.queue_key.astimezone(ZoneInfo(zone)).strftime("%H:%M"),
                    "clinic_url": base + CLINIC_PATH,
                },
                source=(WAIT_ALERT_SOURCE, str(visit.pk), WAIT_ALERT_KEY),
            )
            raised += int(ref.created)
    return raised


def wait_alert_is_current(source_id: str) -> bool:
    """Notifications source check (registered in ``TelehealthConfig.ready``): a wait alert not yet sent is dropped
    if the patient is no longer waiting (admitted, left) by the time the dispatcher picks it up."""
    parsed = parse_uuid(source_id)
    return parsed is not None and Visit.objects.filter(pk=parsed, status=S.WAITING).exists()
