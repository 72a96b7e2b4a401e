"""Templates, contact details and quiet hours: pure helpers the services share."""

from __future__ import annotations

import datetime as dt
import string
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from notifications.models import MessageTemplate

LANGUAGES: list[tuple[str, str]] = [("en", "English"), ("es", "Español"), ("fr", "Français"), ("de", "Deutsch")]
LANGUAGE_CODES = frozenset(code for code, _ in LANGUAGES)


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def render(
    *,
    template_key: str,
    channel: str,
    language: str,
    context: dict[str, Any],
    cache: dict[tuple[str, str, str], MessageTemplate | None] | None = None,
) -> tuple[str, str]:
    """(subject, body) of a template over ``context``; an unknown placeholder renders empty, never an error. The
    language falls back to English, a missing template to a neutral one-liner (so a message is never lost for want
    of wording). ``cache`` (a dict the caller keeps for one dispatch pass) saves the template query for every
    message after the first of its kind, channel and language."""
    key = (template_key, channel, language)
    if cache is not None and key in cache:
        template = cache[key]
    else:
        template = (
            MessageTemplate.objects.filter(kind=template_key, channel=channel, language__in=[language, "en"])
            .order_by(_english_last(language))
            .first()
        )
        if cache is not None:
            cache[key] = template
    if template is None:
        return ("Message from your clinic", "You have a message from your clinic. Please sign in to Consulta.")
    values = _Lenient(context)
    formatter = string.Formatter()
    subject = formatter.vformat(template.subject, (), values)
    body = formatter.vformat(template.body, (), values)
    return subject, body


def _english_last(language: str) -> Any:
    from django.db.models import Case, IntegerField, Value, When

    return Case(When(language=language, then=Value(0)), default=Value(1), output_field=IntegerField())


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    return "" if not digits else ("•" * max(0, len(digits) - 4)) + digits[-4:]


def mask_email(email: str) -> str:
    if "@" not in email:
        return ""
    local, domain = email.split("@", 1)
    return f"{local[:1]}•••@{domain}"


def e164(phone: str) -> str:
    """The patient record keeps digits with an optional leading +; Twilio wants E.164."""
    phone = phone.strip()
    return phone if phone.startswith("+") else (f"+{phone}" if phone else "")


def quiet_window() -> tuple[dt.time, dt.time]:
    start, end = settings.NOTIFICATIONS_QUIET_HOURS.split("-")
    return dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())


def in_quiet_hours(instant: dt.datetime, time_zone: str) -> bool:
    start, end = quiet_window()
    local = instant.astimezone(ZoneInfo(time_zone)).time()
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_adjust(*, due_at: dt.datetime, time_zone: str) -> dt.datetime:
    """``due_at`` moved earlier to the end of the previous allowed window when it falls in quiet hours (in
    ``time_zone``); unchanged otherwise. With 21:00-08:00, 06:30 and 23:10 both become 20:59 of the evening
    before the quiet period (the last minute of the allowed window). Callers keep the result no later than the
    appointment and no earlier than now."""
    if not in_quiet_hours(due_at, time_zone):
        return due_at
    zone = ZoneInfo(time_zone)
    start, _end = quiet_window()
    local = due_at.astimezone(zone)
    day = local.date() if local.time() >= start else local.date() - dt.timedelta(days=1)
    quiet_start = dt.datetime.combine(day, start, tzinfo=zone)
    # The wall-clock quiet start may not exist or be ambiguous on a DST change; normalising through UTC picks the
    # instant PostgreSQL would.
    return (quiet_start.astimezone(dt.UTC) - dt.timedelta(minutes=1)).astimezone(dt.UTC)
