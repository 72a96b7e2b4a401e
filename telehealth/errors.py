"""Typed errors of telehealth services; each means nothing was written. ``telehealth.api`` maps them to HTTP with
the project's error body ``{"code", "detail", "fields"?}``."""

from __future__ import annotations


class TelehealthError(Exception):
    code = "telehealth_error"
    status = 400

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.__class__.__doc__ or self.code)
        self.detail = detail or (self.__class__.__doc__ or self.code).strip()


class InvalidInput(TelehealthError):
    """``fields`` maps each field name to its messages."""

    code = "invalid"

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("Some fields are not valid.")
        self.fields = fields


class VisitNotFound(TelehealthError):
    """No such visit (or not one you may see)."""

    code = "not_found"
    status = 404


class AppointmentNotFound(TelehealthError):
    """No such appointment (or not one you may check in for)."""

    code = "not_found"
    status = 404


class Forbidden(TelehealthError):
    """You may not do this."""

    code = "permission_denied"
    status = 403


class NotVideoAppointment(TelehealthError):
    """Only video appointments have a virtual waiting room."""

    code = "not_video"
    status = 409


class CheckInClosed(TelehealthError):
    """Check-in is open from shortly before the appointment until its no-show time."""

    code = "check_in_closed"
    status = 409


class ConsentRequired(TelehealthError):
    """Consent to a video visit is needed to check in."""

    code = "consent_required"
    status = 400


class InvalidTransition(TelehealthError):
    code = "invalid_transition"
    status = 409

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"A visit cannot go from {current} to {target}.")
        self.current = current
        self.target = target


class VisitNotWaiting(TelehealthError):
    """The patient is no longer waiting (admitted by someone else, left or finished)."""

    code = "not_waiting"
    status = 409


class VisitNotInProgress(TelehealthError):
    """The visit is not in progress."""

    code = "not_in_progress"
    status = 409


class PractitionerBusy(TelehealthError):
    """End your current visit before admitting another patient."""

    code = "practitioner_busy"
    status = 409


class AppointmentUnavailable(TelehealthError):
    """The appointment cannot take part in a visit now (cancelled, rescheduled or already completed)."""

    code = "appointment_unavailable"
    status = 409


class LinkInvalid(TelehealthError):
    """This check-in link is not valid, has been used or has expired. Sign in to check in."""

    code = "link_invalid"
    status = 400


class RateLimited(TelehealthError):
    """Too many requests; wait a few seconds."""

    code = "rate_limited"
    status = 429


class VisitClosed(TelehealthError):
    """The visit is over or the patient has left; nothing more can be added to it."""

    code = "visit_closed"
    status = 409


class InvalidToken(TelehealthError):
    """This invitation link is not valid. Ask the person who invited you for a new one."""

    code = "invalid_token"
    status = 400


class InvitationUsed(TelehealthError):
    """This invitation link has already been used in another browser. Ask for a new one."""

    code = "invitation_used"
    status = 409


class InvitationExpired(TelehealthError):
    """This invitation link has expired (or the visit is over). Ask for a new one."""

    code = "invitation_expired"
    status = 410


class InvitationRevoked(TelehealthError):
    """The doctor removed this guest from the visit."""

    code = "invitation_revoked"
    status = 410


class GuestNotFound(TelehealthError):
    """No such guest in this visit."""

    code = "not_found"
    status = 404


class NoGuestSession(TelehealthError):
    """This browser has not opened an invitation link."""

    code = "no_guest_session"
    status = 404


class GuestNotJoined(TelehealthError):
    """The guest has not opened their invitation link yet."""

    code = "guest_not_joined"
    status = 409


class NotAllowed(TelehealthError):
    """Not possible for this participant."""

    code = "not_allowed"
    status = 409
