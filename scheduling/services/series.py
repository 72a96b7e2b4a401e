"""Recurring appointments: an RFC 5545 RRULE over wall-clock starts in a time zone, materialised as one
``Appointment`` per occurrence, each with its own status from then on.

Invariants:
- Occurrences are expanded as wall-clock times in the series' time zone, so 09:00 stays 09:00 local on both sides of
  a daylight-saving change (the UTC instant moves instead). Each is converted with ``scheduling.timeutil.local_to_utc``:
  a start the clocks skip (gap) or repeat (fold) refuses the whole series, naming the date.
- A series is all or nothing: every occurrence is booked through ``appointment_book`` (slots under the exclusion
  constraint, planned encounter, domain event) inside one transaction; any refusal of any occurrence (conflict,
  outside working hours, past the booking horizon ...) refuses the series with the occurrence named, and nothing
  is written.
- Rules are a deliberately small, always-terminating subset of RFC 5545 (see ``parse_rule``): dateutil's expansion
  of an arbitrary rule can loop for seconds (``INTERVAL=0`` forever), and these rules come from users.
- Cancelling the series (``series_cancel``) cancels the remaining occurrences, each exactly as ``appointment_cancel``
  does; cancelling one occurrence is an ordinary ``appointment_cancel`` and leaves the others alone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from zoneinfo import ZoneInfo, available_timezones

from dateutil import rrule as recurrence
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ehr.models import User
from scheduling.dto import SeriesRef
from scheduling.errors import (
    AmbiguousLocalTime,
    BeyondHorizon,
    BookingForbidden,
    BookingInPast,
    InvalidBooking,
    MissingResource,
    NonexistentLocalTime,
    NotFound,
    OutsideAvailability,
    SchedulingError,
    SlotUnavailable,
    TooLate,
)
from scheduling.models import Appointment, AppointmentSeries, AppointmentStatus, AppointmentType
from scheduling.selectors import appointment_dtos, appointments_query
from scheduling.services.booking import appointment_book, appointment_cancel, authorise_booking
from scheduling.timeutil import local_to_utc

MAX_OCCURRENCES = 52
MAX_INTERVAL = 52
MAX_SPAN = dt.timedelta(days=5 * 366)  # first to last start; booking horizons refuse far less anyway
RRULE_MAX_LENGTH = 500  # AppointmentSeries.rrule
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
SUPPORTED_PARTS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "WKST"})
# Valid RFC 5545 parts this subset refuses by name (rather than as unknown).
UNSUPPORTED_PARTS = frozenset({"BYMONTH", "BYSETPOS", "BYYEARDAY", "BYWEEKNO", "BYHOUR", "BYMINUTE", "BYSECOND"})
WEEKDAYS = frozenset({"MO", "TU", "WE", "TH", "FR", "SA", "SU"})
_BYDAY = re.compile(r"^([+-]?\d{1,2})?([A-Z]{2})$")
_UNTIL = re.compile(r"^(\d{8})(?:T(\d{6})(Z?))?$")
# Before any of these, nothing about the series is refused; these describe one occurrence and are reported with it.
_OCCURRENCE_ERRORS = (
    BookingInPast,
    TooLate,
    BeyondHorizon,
    OutsideAvailability,
    SlotUnavailable,
    MissingResource,
    NonexistentLocalTime,
    AmbiguousLocalTime,
    InvalidBooking,
)
# Occurrences that have not started to happen yet; only these are cancelled with the series.
CANCELLABLE_STATUSES = (AppointmentStatus.PROPOSED, AppointmentStatus.PENDING, AppointmentStatus.BOOKED)


class SeriesOccurrenceRefused(SchedulingError):
    """One occurrence of a series could not be booked (or cancelled), so the whole series was refused and nothing
    was written. ``cause`` is the occurrence's own error (``SlotUnavailable``, ``NonexistentLocalTime`` ...); the code
    and HTTP status are the cause's, the message names the occurrence's local date and time."""

    def __init__(self, *, index: int, local_start: dt.datetime, time_zone: str, cause: SchedulingError) -> None:
        super().__init__(f"occurrence {index} on {local_start:%Y-%m-%d} at {local_start:%H:%M} ({time_zone}): {cause}")
        self.index = index
        self.local_start = local_start
        self.time_zone = time_zone
        self.cause = cause
        self.code = cause.code
        self.status = cause.status


@dataclass(frozen=True)
class ParsedRule:
    """A validated rule: ``text`` as stored (upper case, no ``RRULE:`` prefix), ``expansion`` the same without COUNT
    and UNTIL (handed to dateutil), and exactly one of ``count`` / ``until_local`` (a wall-clock bound, inclusive)."""

    text: str
    expansion: str
    count: int | None
    until_local: dt.datetime | None


def _invalid(field: str, message: str) -> InvalidBooking:
    return InvalidBooking({field: [message]})


def check_time_zone(time_zone: object) -> str:
    """The IANA zone name, or ``InvalidBooking`` on ``time_zone``."""
    if not isinstance(time_zone, str) or time_zone not in available_timezones():
        raise _invalid("time_zone", "Not an IANA time zone.")
    return time_zone


def _int_in(value: str, low: int, high: int) -> int | None:
    if not re.fullmatch(r"[+-]?\d{1,4}", value):
        return None
    number = int(value)
    return number if low <= number <= high else None


def _until_local(value: str, tz: ZoneInfo) -> dt.datetime:
    """UNTIL as a wall-clock bound: a DATE means the end of that local day; a local DATE-TIME is taken as it is; a
    UTC DATE-TIME (``Z``) is converted to the zone's wall clock."""
    match = _UNTIL.match(value)
    if match is None:
        raise _invalid("rrule", "UNTIL must look like 20310401, 20310401T090000 or 20310401T090000Z.")
    day, time, utc = match.groups()
    try:
        date = dt.date(int(day[:4]), int(day[4:6]), int(day[6:]))
        if time is None:
            return dt.datetime.combine(date, dt.time.max)
        moment = dt.datetime.combine(date, dt.time(int(time[:2]), int(time[2:4]), int(time[4:])))
    except ValueError:
        raise _invalid("rrule", "UNTIL is not a valid date.") from None
    if utc:
        return moment.replace(tzinfo=dt.UTC).astimezone(tz).replace(tzinfo=None)
    return moment


def _check_byday(value: str, freq: str) -> None:
    if freq not in ("WEEKLY", "MONTHLY"):
        raise _invalid("rrule", "BYDAY needs FREQ=WEEKLY or FREQ=MONTHLY.")
    for item in value.split(","):
        match = _BYDAY.match(item)
        if match is None or match.group(2) not in WEEKDAYS:
            raise _invalid("rrule", f"BYDAY: {item!r} is not a weekday (MO, TU, WE, TH, FR, SA, SU).")
        ordinal = match.group(1)
        # 1st-4th and last-4th exist in every month, so such a rule always has occurrences.
        if ordinal is not None and (freq != "MONTHLY" or _int_in(ordinal, -4, 4) in (None, 0)):
            raise _invalid("rrule", "BYDAY ordinals (e.g. 2TU, -1FR) are 1-4 or -1 to -4, with FREQ=MONTHLY.")


def parse_rule(*, rrule: object, time_zone: str) -> ParsedRule:
    """Validate an RRULE for a series. The accepted subset always terminates quickly and always has occurrences:
    FREQ (DAILY, WEEKLY, MONTHLY, YEARLY), INTERVAL (1-52), exactly one of COUNT (1-52) or UNTIL, BYDAY (weekdays with
    WEEKLY; weekdays optionally with an ordinal 1-4 / -1 to -4 with MONTHLY), BYMONTHDAY (MONTHLY, not with BYDAY) and
    WKST. Raises ``InvalidBooking`` on ``rrule``."""
    if not isinstance(rrule, str) or not rrule.strip() or len(rrule) > RRULE_MAX_LENGTH:
        raise _invalid("rrule", f"Give an RFC 5545 RRULE of at most {RRULE_MAX_LENGTH} characters.")
    text = rrule.strip().upper()
    if text.startswith("RRULE:"):
        text = text[len("RRULE:") :]
    if re.search(r"\s", text):
        raise _invalid("rrule", "Give one RRULE line, e.g. FREQ=WEEKLY;BYDAY=MO;COUNT=10.")
    parts: dict[str, str] = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise _invalid("rrule", f"{item!r} is not NAME=VALUE.")
        if key in parts:
            raise _invalid("rrule", f"{key} appears twice.")
        if key in UNSUPPORTED_PARTS:
            raise _invalid("rrule", f"{key} is not supported for appointment series.")
        if key not in SUPPORTED_PARTS:
            raise _invalid("rrule", f"{key} is not an RRULE part.")
        parts[key] = value
    freq = parts.get("FREQ")
    if freq not in FREQUENCIES:
        raise _invalid("rrule", "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY.")
    if "INTERVAL" in parts and _int_in(parts["INTERVAL"], 1, MAX_INTERVAL) is None:
        raise _invalid("rrule", f"INTERVAL must be a whole number from 1 to {MAX_INTERVAL}.")
    if ("COUNT" in parts) == ("UNTIL" in parts):
        raise _invalid("rrule", "Give exactly one of COUNT or UNTIL, so the series ends.")
    count: int | None = None
    if "COUNT" in parts:
        count = _int_in(parts["COUNT"], 1, 9999)
        if count is None:
            raise _invalid("rrule", "COUNT must be a whole number of at least 1.")
        if count > MAX_OCCURRENCES:
            raise _invalid("rrule", f"A series has at most {MAX_OCCURRENCES} occurrences.")
    until = _until_local(parts["UNTIL"], ZoneInfo(time_zone)) if "UNTIL" in parts else None
    if "BYDAY" in parts:
        _check_byday(parts["BYDAY"], freq)
    if "BYMONTHDAY" in parts:
        if freq != "MONTHLY" or "BYDAY" in parts:
            raise _invalid("rrule", "BYMONTHDAY needs FREQ=MONTHLY and no BYDAY.")
        for item in parts["BYMONTHDAY"].split(","):
            if _int_in(item, -31, 31) in (None, 0):
                raise _invalid("rrule", "BYMONTHDAY values are 1 to 31 or -1 to -31.")
    if "WKST" in parts and parts["WKST"] not in WEEKDAYS:
        raise _invalid("rrule", "WKST must be a weekday (MO ... SU).")
    expansion = ";".join(f"{k}={v}" for k, v in parts.items() if k not in ("COUNT", "UNTIL"))
    return ParsedRule(text=text, expansion=expansion, count=count, until_local=until)


def series_occurrences(*, rrule: str, first_start_local: dt.datetime, time_zone: str) -> list[dt.datetime]:
    """The wall-clock starts (naive, in ``time_zone``) of a series, in order, at most ``MAX_OCCURRENCES``. The first
    start must itself be the rule's first occurrence (RFC 5545: DTSTART is synchronised with the rule). Pure: reads
    and writes nothing. Raises ``InvalidBooking``."""
    return _expand(rrule=rrule, first_start_local=first_start_local, time_zone=time_zone)[1]


def _expand(*, rrule: str, first_start_local: dt.datetime, time_zone: str) -> tuple[ParsedRule, list[dt.datetime]]:
    time_zone = check_time_zone(time_zone)
    if not isinstance(first_start_local, dt.datetime) or first_start_local.tzinfo is not None:
        raise _invalid("first_start", "Give the first start as a wall-clock time without a UTC offset.")
    if first_start_local.second or first_start_local.microsecond:
        raise _invalid("first_start", "Give the first start in whole minutes.")
    if not 2000 <= first_start_local.year <= 9000:
        raise _invalid("first_start", "Give a first start between the years 2000 and 9000.")
    rule = parse_rule(rrule=rrule, time_zone=time_zone)
    try:
        expanded = recurrence.rrulestr(rule.expansion, dtstart=first_start_local)
        if not isinstance(expanded, recurrence.rrule):
            raise ValueError("not a single rule")
        bounded = expanded.replace(count=rule.count, until=rule.until_local)
        starts = list(islice(bounded, MAX_OCCURRENCES + 1))
    except (ValueError, IndexError, OverflowError) as exc:
        raise _invalid("rrule", f"Not a valid RRULE ({exc}).") from None
    if len(starts) > MAX_OCCURRENCES:
        raise _invalid("rrule", f"A series has at most {MAX_OCCURRENCES} occurrences.")
    if not starts:
        raise _invalid("rrule", "The rule has no occurrences from the first start on.")
    if starts[0] != first_start_local:
        raise _invalid("first_start", "The first start must be the rule's first occurrence (e.g. a Monday for MO).")
    if starts[-1] - starts[0] > MAX_SPAN:
        raise _invalid("rrule", "A series spans at most five years.")
    return rule, starts


def _instants(starts: list[dt.datetime], time_zone: str) -> list[dt.datetime]:
    """UTC instants of the wall-clock starts; a start in a DST gap or fold refuses the series, naming it."""
    instants: list[dt.datetime] = []
    for index, local in enumerate(starts, start=1):
        try:
            instants.append(local_to_utc(local, time_zone))
        except NonexistentLocalTime:
            cause: SchedulingError = NonexistentLocalTime("the clocks skip this time (daylight-saving change)")
            raise SeriesOccurrenceRefused(index=index, local_start=local, time_zone=time_zone, cause=cause) from None
        except AmbiguousLocalTime:
            cause = AmbiguousLocalTime("this time happens twice (daylight-saving change)")
            raise SeriesOccurrenceRefused(index=index, local_start=local, time_zone=time_zone, cause=cause) from None
    return instants


def series_book(
    *,
    actor: User,
    appointment_type_id: int,
    patient_id: int,
    practitioner_id: int,
    first_start_local: dt.datetime,
    time_zone: str,
    rrule: str,
    resource_ids: list[int] | None = None,
    comment: str = "",
    request: HttpRequest | None = None,
) -> SeriesRef:
    """Book a recurring series: ``rrule`` from ``first_start_local`` (wall clock in ``time_zone``), every occurrence
    with the same patient, practitioner, type and resources, in ONE transaction through ``appointment_book`` (so each
    occurrence is checked, slotted, gets its planned encounter and event exactly like a single booking; the events
    are recorded, in occurrence order, once every occurrence is booked).

    All or nothing: a bad rule or zone raises ``InvalidBooking``; an occurrence in a DST gap/fold, in the past, past
    the horizon, outside working hours or in conflict raises ``SeriesOccurrenceRefused`` naming the occurrence (with
    its cause); either way nothing is written. The first occurrence takes the practitioner's booking lock
    (``_insert_slots``), held until commit, so two series racing for one practitioner queue rather than interleave;
    the exclusion constraint decides, as for single bookings. Callers: as
    ``appointment_book`` (staff who may schedule the patient; the patient for themselves, patient-bookable types)."""
    if not isinstance(comment, str) or len(comment) > 500:
        raise _invalid("comment", "At most 500 characters.")
    rule, starts = _expand(rrule=rrule, first_start_local=first_start_local, time_zone=time_zone)
    instants = _instants(starts, time_zone)
    # Authorised before the transaction, so a denial's audit row is kept.
    authorise_booking(actor=actor, patient_id=patient_id, request=request)
    if not AppointmentType.objects.filter(pk=appointment_type_id, active=True).exists():
        raise _invalid("appointment_type_id", "Unknown or inactive appointment type.")
    # Each occurrence's "booked" event is recorded after the last occurrence is booked: an event takes the realtime
    # stream counters, which come after the booking locks in the global lock order, and a later occurrence may
    # take a booking lock the first did not (another auto-picked room).
    events: list[Callable[[], object]] = []
    with transaction.atomic():
        series = AppointmentSeries.objects.create(
            patient_id=patient_id,
            appointment_type_id=appointment_type_id,
            rrule=rule.text,
            time_zone=time_zone,
            first_start=instants[0],
            created_by=actor,
            created_at=timezone.now(),
        )
        for index, (local, start) in enumerate(zip(starts, instants, strict=True), start=1):
            try:
                appointment_book(
                    actor=actor,
                    appointment_type_id=appointment_type_id,
                    patient_id=patient_id,
                    start=start,
                    practitioner_id=practitioner_id,
                    resource_ids=resource_ids,
                    comment=comment,
                    series_id=series.pk,
                    request=request,
                    deferred_events=events,
                )
            except _OCCURRENCE_ERRORS as exc:
                if isinstance(exc, InvalidBooking) and set(exc.fields) != {"start"}:
                    raise  # about the request as a whole (type, practitioner, resources), not this date
                raise SeriesOccurrenceRefused(index=index, local_start=local, time_zone=time_zone, cause=exc) from exc
        for record in events:
            record()
    ref = series_get(series_id=series.pk)
    assert ref is not None  # just committed
    return ref


def series_authorise(*, actor: User, series_id: int, request: HttpRequest | None = None) -> int:
    """Who may see or change a series: whoever may book for its patient (staff who may schedule them, the patient).
    Returns the patient id. An outsider gets ``NotFound``, so series ids cannot be probed."""
    patient_id = AppointmentSeries.objects.filter(pk=series_id).values_list("patient_id", flat=True).first()
    if patient_id is None:
        raise NotFound("Series", series_id)
    try:
        authorise_booking(actor=actor, patient_id=patient_id, request=request)
    except (BookingForbidden, NotFound) as exc:
        raise NotFound("Series", series_id) from exc
    return patient_id


def _reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise _invalid("reason", "Give a reason.")
    if len(reason) > 500:
        raise _invalid("reason", "At most 500 characters.")
    return reason.strip()


def series_cancel(
    *,
    actor: User,
    series_id: int,
    reason: str,
    from_start: dt.datetime | None = None,
    request: HttpRequest | None = None,
) -> SeriesRef:
    """Cancel the remaining occurrences of a series: those not started yet (proposed, pending, booked) that start
    after now and at or after ``from_start`` (an instant; default now). Each goes through ``appointment_cancel`` (slots
    released, planned encounter cancelled, waitlist offered the time, event recorded), all in one transaction: if any
    one is refused (a patient inside an occurrence's cancellation window) none is cancelled, and the error names it.
    Past, arrived, fulfilled and already-cancelled occurrences keep their status. Cancelling nothing is not an error.
    Callers: whoever may book for the series' patient."""
    reason = _reason(reason)
    if from_start is not None and (not isinstance(from_start, dt.datetime) or from_start.tzinfo is None):
        raise _invalid("from_start", "Give an instant with a UTC offset.")
    series_authorise(actor=actor, series_id=series_id, request=request)
    with transaction.atomic():
        series = AppointmentSeries.objects.select_for_update().get(pk=series_id)  # one series cancel at a time
        now = timezone.now()
        since = max(from_start, now) if from_start is not None else now
        # Lock the occurrences (id order, like every multi-row lock here) before deciding, so a concurrent single
        # cancel either finished before (and its occurrence is skipped) or waits for us.
        locked = list(
            Appointment.objects.select_for_update()
            .filter(series=series, status__in=CANCELLABLE_STATUSES, start__gt=now, start__gte=since)
            .order_by("id")
            .values_list("pk", "start")
        )
        ordinals = {
            pk: index
            for index, pk in enumerate(
                Appointment.objects.filter(series=series).order_by("start", "id").values_list("pk", flat=True),
                start=1,
            )
        }
        tz = ZoneInfo(series.time_zone)
        for pk, start in sorted(locked, key=lambda row: (row[1], row[0])):
            try:
                appointment_cancel(actor=actor, appointment_id=pk, reason=reason, request=request)
            except TooLate as exc:
                local = start.astimezone(tz).replace(tzinfo=None)
                raise SeriesOccurrenceRefused(
                    index=ordinals[pk], local_start=local, time_zone=series.time_zone, cause=exc
                ) from exc
    ref = series_get(series_id=series_id)
    assert ref is not None
    return ref


def series_get(*, series_id: int) -> SeriesRef | None:
    """A read: the series with every occurrence (start order) and its status. The caller has authorised the actor
    (``series_authorise``). Three queries."""
    series = AppointmentSeries.objects.filter(pk=series_id).first()
    if series is None:
        return None
    occurrences = appointment_dtos(list(appointments_query().filter(series=series).order_by("start", "id")))
    return SeriesRef(
        id=series.pk,
        patient_id=series.patient_id,
        appointment_type_id=series.appointment_type_id,
        rrule=series.rrule,
        time_zone=series.time_zone,
        first_start=series.first_start,
        first_start_local=series.first_start.astimezone(ZoneInfo(series.time_zone)).replace(tzinfo=None),
        created_at=series.created_at,
        occurrences=tuple(occurrences),
    )
