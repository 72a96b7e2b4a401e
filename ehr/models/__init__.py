from ehr.models.audit import AuditAction, AuditEvent, AuditOutcome
from ehr.models.identity import Location, Organization, Role, User

__all__ = ["AuditAction", "AuditEvent", "AuditOutcome", "Location", "Organization", "Role", "User"]
