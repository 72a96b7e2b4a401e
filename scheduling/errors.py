"""Typed errors of scheduling services; each means nothing was written. ``scheduling.api`` maps them to HTTP."""

from __future__ import annotations


class SchedulingError(Exception):
    code = "scheduling_error"
    status = 400


class InvalidBooking(SchedulingError):
    """``fields`` maps each field name to its messages."""

    code = "invalid"

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("invalid booking: " + ", ".join(sorted(fields)))
        self.fields = fields


class NotFound(SchedulingError):
    code = "not_found"
    status = 404

    def __init__(self, kind: str, id: object) -> None:
        super().__init__(f"{kind} {id} not found")
        self.kind = kind


class BookingForbidden(SchedulingError):
    """The actor may not book or change appointments for this patient (or this appointment type)."""

    code = "permission_denied"
    status = 403


class BookingInPast(SchedulingError):
    code = "booking_in_past"


class TooLate(SchedulingError):
    """Inside the appointment type's minimum notice, or its cancellation window."""

    code = "too_late"


class BeyondHorizon(SchedulingError):
    code = "beyond_booking_horizon"


class NonexistentLocalTime(SchedulingError):
    """A wall-clock time that does not exist in the time zone (a daylight-saving gap) or is ambiguous (a fold)."""

    code = "nonexistent_local_time"


class AmbiguousLocalTime(SchedulingError):
    code = "ambiguous_local_time"


class MissingResource(SchedulingError):
    """The appointment type needs a resource of this kind and none was given or none is free."""

    code = "missing_resource"

    def __init__(self, kind: str, category: str = "") -> None:
        super().__init__(f"no {kind}{' (' + category + ')' if category else ''} available")
        self.kind = kind
        self.category = category


class OutsideAvailability(SchedulingError):
    """The time is outside a resource's working hours (or in its blocked time)."""

    code = "outside_availability"
    status = 422

    def __init__(self, schedule_id: int, schedule_name: str) -> None:
        super().__init__(f"{schedule_name} is not available then")
        self.schedule_id = schedule_id
        self.schedule_name = schedule_name


class SlotUnavailable(SchedulingError):
    """Another booking or hold already has this resource then (the exclusion constraint said so)."""

    code = "slot_unavailable"
    status = 409

    def __init__(self, schedule_id: int, schedule_name: str) -> None:
        super().__init__(f"{schedule_name} is already booked then")
        self.schedule_id = schedule_id
        self.schedule_name = schedule_name


class HoldExpired(SchedulingError):
    code = "hold_expired"
    status = 409


class HoldNotActive(SchedulingError):
    code = "hold_not_active"
    status = 409


class InvalidTransition(SchedulingError):
    code = "invalid_transition"
    status = 409

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"an appointment cannot go from {current} to {target}")
        self.current = current
        self.target = target


class VersionConflict(SchedulingError):
    code = "version_conflict"
    status = 412

    def __init__(self, current_version: int) -> None:
        super().__init__(f"appointment is at version {current_version}")
        self.current_version = current_version


class OfferUnavailable(SchedulingError):
    """The waitlist offer was accepted by someone else, withdrawn or expired."""

    code = "offer_unavailable"
    status = 409


class PatientRecordMerged(SchedulingError):
    """The patient's record was merged into another (``merged_into_id``) while booking; book on that record."""

    code = "patient_merged"
    status = 409

    def __init__(self, merged_into_id: int | None) -> None:
        super().__init__(f"the patient record was merged into {merged_into_id}")
        self.merged_into_id = merged_into_id
