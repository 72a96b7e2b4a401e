from django.apps import AppConfig


class EhrConfig(AppConfig):
    """The shared record. Owns identity (users, roles, organizations, locations), access and audit."""

    name = "ehr"
    verbose_name = "EHR and identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.realtime.streams import register_group_authoriser
        from ehr import checks  # noqa: F401 -- registers the system checks
        from ehr.access import Relationship, register_relationship_test
        from ehr.selectors import location_may_receive, patient_seen_at_actor_clinic

        register_group_authoriser("location", location_may_receive)
        register_relationship_test(Relationship.SAME_CLINIC, patient_seen_at_actor_clinic)
