"""Typed errors raised by ehr services. API views translate them into ``{"code", "detail"}`` responses."""


class EhrError(Exception):
    code = "ehr_error"


class CannotDeactivateSelf(EhrError):
    code = "cannot_deactivate_self"


class UserNotFound(EhrError):
    code = "not_found"


class AccessDenied(EhrError):
    """The actor may not do this to this patient's record (``ehr.access``). The attempt has been audited."""

    code = "permission_denied"


class PatientNotFound(EhrError):
    code = "not_found"


class VersionConflict(EhrError):
    """The update was based on ``expected`` but the record is at ``current_version``; nothing was written."""

    code = "version_conflict"

    def __init__(self, current_version: int) -> None:
        super().__init__(f"record is at version {current_version}")
        self.current_version = current_version


class InvalidPatientData(EhrError):
    """``fields`` maps each field name to its error messages; nothing was written."""

    code = "invalid"

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("invalid patient data: " + ", ".join(sorted(fields)))
        self.fields = fields


class DuplicateSuspected(EhrError):
    """Registration found active patients that may be the same person (``candidate_ids``); nothing was written."""

    code = "duplicate_suspected"

    def __init__(self, candidate_ids: list[int]) -> None:
        super().__init__(f"{len(candidate_ids)} possible duplicate(s)")
        self.candidate_ids = candidate_ids
