"""Call-quality summaries from the browsers."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ehr.models import User
from telehealth.dto import QualityReportRef
from telehealth.errors import InvalidInput, RateLimited, VisitNotFound
from telehealth.models import CallQualityReport, Visit
from telehealth.selectors import parse_uuid

# name -> (kind, minimum, maximum)
NUMBERS: dict[str, tuple[type, float, float]] = {
    "rtt_ms": (float, 0, 60_000),
    "jitter_ms": (float, 0, 60_000),
    "packet_loss_pct": (float, 0, 100),
    "bitrate_in_kbps": (float, 0, 1_000_000),
    "bitrate_out_kbps": (float, 0, 1_000_000),
    "frames_decoded": (int, 0, 10**12),
    "frames_per_second": (float, 0, 1000),
    "frame_width": (int, 0, 16384),
    "frame_height": (int, 0, 16384),
}
CANDIDATE_TYPES = frozenset({"host", "srflx", "prflx", "relay"})
FLAGS = ("relay", "audio_only")


def quality_stats_validate(stats: Any) -> dict[str, Any]:
    """The stored summary: each known number within its range (or null/absent), candidate types from
    host/srflx/prflx/relay, ``relay`` and ``audio_only`` booleans. Anything else (SDP, addresses, unknown keys) is
    refused with ``InvalidInput``."""
    if not isinstance(stats, dict):
        raise InvalidInput({"stats": ["Send the stats as an object."]})
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    allowed = set(NUMBERS) | {"local_candidate_type", "remote_candidate_type"} | set(FLAGS)
    for key in stats:
        if key not in allowed:
            errors[f"stats.{key}"] = ["Unknown field."]
    for key, (kind, low, high) in NUMBERS.items():
        value = stats.get(key)
        if value is None:
            continue
        ok_type = isinstance(value, int | float) and not isinstance(value, bool)
        if kind is int and ok_type and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not ok_type or (kind is int and not isinstance(value, int)) or not math.isfinite(value):
            errors[f"stats.{key}"] = ["A number." if kind is float else "A whole number."]
        elif not low <= value <= high:
            errors[f"stats.{key}"] = [f"Between {low:g} and {high:g}."]
        else:
            clean[key] = value
    for key in ("local_candidate_type", "remote_candidate_type"):
        value = stats.get(key)
        if value is None:
            continue
        if value not in CANDIDATE_TYPES:
            errors[f"stats.{key}"] = ["One of: host, srflx, prflx, relay."]
        else:
            clean[key] = value
    for key in FLAGS:
        value = stats.get(key)
        if value is None:
            continue
        if not isinstance(value, bool):
            errors[f"stats.{key}"] = ["true or false."]
        else:
            clean[key] = value
    if errors:
        raise InvalidInput(errors)
    return clean


def visit_quality_report(*, actor: User, visit_id: str, stats: Any) -> QualityReportRef:
    """A participant's browser reports a summary of its WebRTC stats. Only the visit's patient or practitioner;
    at most one report per user and visit every ``TELEHEALTH_QUALITY_MIN_INTERVAL_SECONDS`` (5 s): checked under a
    transaction-scoped advisory lock on (visit, user), so concurrent reports cannot both pass (``RateLimited``,
    429)."""
    clean = quality_stats_validate(stats)
    parsed = parse_uuid(visit_id)
    row = Visit.objects.filter(pk=parsed).values_list("patient_user_id", "practitioner_id").first() if parsed else None
    if parsed is None or row is None or actor.pk not in row:
        raise VisitNotFound()
    role = "practitioner" if actor.pk == row[1] else "patient"
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"telehealth.quality:{parsed}:{actor.pk}"])
        since = now - dt.timedelta(seconds=settings.TELEHEALTH_QUALITY_MIN_INTERVAL_SECONDS)
        if CallQualityReport.objects.filter(visit_id=parsed, user=actor, created_at__gt=since).exists():
            raise RateLimited()
        report = CallQualityReport.objects.create(visit_id=parsed, user=actor, role=role, stats=clean, created_at=now)
    return QualityReportRef(
        id=report.pk,
        visit_id=str(parsed),
        user_id=actor.pk,
        user_name=actor.display_name,
        role=role,
        created_at=report.created_at,
        stats=clean,
    )
