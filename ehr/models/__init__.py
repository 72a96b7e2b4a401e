from ehr.models.identity import Location, Organization, Role, User

__all__ = ["Location", "Organization", "Role", "User"]
