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


class BreakGlassRequired(AccessDenied):
    """Denied, but a break-the-glass grant (``POST .../break-glass/`` with a reason) would allow it. Audited."""

    code = "break_glass_required"


class CareTeamOverlap(EhrError):
    """The person is already on this patient's care team for (part of) that period; nothing was written."""

    code = "care_team_overlap"


class CareTeamMemberNotFound(EhrError):
    code = "not_found"


class CareTeamAlreadyEnded(EhrError):
    code = "care_team_already_ended"


class InvalidAccessRequest(EhrError):
    """``fields`` maps each field name to its error messages; nothing was written."""

    code = "invalid"

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("invalid: " + ", ".join(sorted(fields)))
        self.fields = fields


class BreakGlassGrantNotFound(EhrError):
    code = "not_found"


class BreakGlassAlreadyReviewed(EhrError):
    code = "break_glass_already_reviewed"


class CannotReviewOwnBreakGlass(EhrError):
    code = "cannot_review_own_break_glass"


class NoPatientRecord(EhrError):
    """The signed-in patient account is not linked to a patient record."""

    code = "no_patient_record"


# --- Clinical record (ehr.services.clinical) --------------------------------------------------------------------


class ClinicalRecordNotFound(EhrError):
    """No such encounter, note, condition, allergy, medication or observation (``kind`` says which)."""

    code = "not_found"

    def __init__(self, kind: str, record_id: object) -> None:
        super().__init__(f"no {kind} {record_id}")
        self.kind = kind


class InvalidClinicalData(EhrError):
    """``fields`` maps each field name to its error messages (unknown code, impossible value, …); nothing was
    written."""

    code = "invalid"

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("invalid clinical data: " + ", ".join(sorted(fields)))
        self.fields = fields


class InvalidTransition(EhrError):
    """The record's status cannot go from ``current`` to ``target`` (see the transition tables); nothing written."""

    code = "invalid_transition"

    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"{kind} cannot go from {current} to {target}")
        self.kind = kind
        self.current = current
        self.target = target


class EncounterHasAppointment(EhrError):
    """The planned encounter was booked in scheduling (``appointment_id``): the appointment owns the booking, so the
    visit is cancelled by cancelling the appointment (which cancels the encounter too). Nothing was written."""

    code = "cancel_the_appointment"

    def __init__(self, encounter_id: int, appointment_id: int) -> None:
        super().__init__(f"encounter {encounter_id} belongs to appointment {appointment_id}")
        self.appointment_id = appointment_id


class PatientMerged(EhrError):
    """The patient record was merged into another (``merged_into_id``) between the access check and the write:
    PostgreSQL's compartment guard (migration 0014, constraint ``patient_not_merged``) refused the new row. Nothing
    was written; the caller retries on the surviving record."""

    code = "patient_merged"

    def __init__(self, patient_id: int, merged_into_id: int | None) -> None:
        super().__init__(f"patient {patient_id} was merged into {merged_into_id}")
        self.patient_id = patient_id
        self.merged_into_id = merged_into_id


class NoteSigned(EhrError):
    """The note is signed: its content is immutable; add an addendum instead. Nothing was written."""

    code = "note_signed"


class NotNoteAuthor(EhrError):
    """Only the note's author may edit its draft or sign it. The attempt has been audited as denied."""

    code = "not_note_author"


class DraftConflict(VersionConflict):
    """A draft save based on an older version: ``current`` holds the sections as they are now (version
    ``current_version``), so the client can merge what its user typed and save again. Nothing was written."""

    def __init__(self, current_version: int, current: dict[str, str]) -> None:
        super().__init__(current_version)
        self.current = current


# --- Documents (ehr.services.documents) -------------------------------------------------------------------------


class DocumentTooLarge(EhrError):
    """The upload is larger than ``DOCUMENT_MAX_BYTES`` (found while streaming it); nothing was kept."""

    code = "file_too_large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


class UnsupportedDocumentType(EhrError):
    """The bytes are not PDF, PNG, JPEG or UTF-8 text, or the file name's extension or the declared content type
    says something else than the bytes do. Nothing was kept."""

    code = "unsupported_file_type"


class DocumentContentUnavailable(EhrError):
    """The stored file of a document is missing or no longer matches its SHA-256 (storage damaged or tampered
    with). Nothing was served; operators restore it from backup (docs/documents.md)."""

    code = "document_content_unavailable"


# --- Merging duplicate patient records (ehr.services.patients.patient_merge) ------------------------------------


class MergeSamePatient(EhrError):
    """A record cannot be merged into itself. Nothing was written."""

    code = "merge_same_patient"


class MergePatientNotActive(EhrError):
    """One of the two records (``record``: ``"source"`` or ``"target"``) is not active (``status``: entered in
    error, or merged — then ``merged_into_id`` names where it went). Nothing was written."""

    code = "merge_patient_not_active"

    def __init__(self, record: str, status: str, merged_into_id: int | None = None) -> None:
        super().__init__(f"the {record} record is {status}")
        self.record = record
        self.status = status
        self.merged_into_id = merged_into_id


class PatientAlreadyMerged(MergePatientNotActive):
    """The duplicate was already merged (into ``merged_into_id``). Nothing was written."""

    code = "patient_already_merged"

    def __init__(self, merged_into_id: int | None) -> None:
        super().__init__("source", "merged", merged_into_id)


class MergePortalAccountConflict(EhrError):
    """Both records have a patient-portal login; one record keeps one login, so an administrator must first decide
    which account the person keeps. Nothing was written."""

    code = "merge_portal_account_conflict"


class MergeVersionConflict(VersionConflict):
    """The ``record`` (``"source"`` or ``"target"``) changed since the caller read it (now ``current_version``).
    Nothing was written."""

    def __init__(self, record: str, current_version: int) -> None:
        super().__init__(current_version)
        self.record = record
