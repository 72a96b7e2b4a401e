from ehr.models.audit import AuditAction, AuditEvent, AuditOutcome
from ehr.models.identity import Location, Organization, Role, User
from ehr.models.patient import AdministrativeGender, Patient, PatientStatus, PatientVersion

__all__ = [
    "AdministrativeGender",
    "AuditAction",
    "AuditEvent",
    "AuditOutcome",
    "Location",
    "Organization",
    "Patient",
    "PatientStatus",
    "PatientVersion",
    "Role",
    "User",
]
