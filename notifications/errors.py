"""Typed errors of notifications services; each means nothing was written. ``notifications.api`` maps them to
HTTP with the project's error body ``{"code", "detail", "fields"?}``."""

from __future__ import annotations


class NotificationsError(Exception):
    code = "notifications_error"
    status = 400

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.__class__.__doc__ or self.code)
        self.detail = detail or (self.__class__.__doc__ or self.code).strip()


class InvalidInput(NotificationsError):
    """``fields`` maps each field name to its messages."""

    code = "invalid"

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("Some fields are not valid.")
        self.fields = fields


class Forbidden(NotificationsError):
    """You may not do this."""

    code = "permission_denied"
    status = 403


class MessageNotFound(NotificationsError):
    """No such message."""

    code = "not_found"
    status = 404


class NotResendable(NotificationsError):
    """Only a failed or undeliverable message that was not resent already can be resent."""

    code = "not_resendable"
    status = 409


class NoPatientRecord(NotificationsError):
    """Your account has no patient record."""

    code = "no_patient_record"
    status = 404


class InvalidTransition(NotificationsError):
    code = "invalid_transition"
    status = 409

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"A message cannot go from {current} to {target}.")
        self.current = current
        self.target = target
