"""Typed errors raised by ehr services. API views translate them into ``{"code", "detail"}`` responses."""


class EhrError(Exception):
    code = "ehr_error"


class CannotDeactivateSelf(EhrError):
    code = "cannot_deactivate_self"


class UserNotFound(EhrError):
    code = "not_found"
