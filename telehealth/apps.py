from django.apps import AppConfig


class TelehealthConfig(AppConfig):
    """Virtual waiting rooms, the live queue, 1:1 video visits, check-in links, TURN credentials and call quality
    (docs/telehealth.md). Depends on scheduling, ehr and core; never on signaling."""

    name = "telehealth"
    verbose_name = "Telehealth"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.realtime.streams import register_group_authoriser
        from scheduling.listeners import register_status_listener
        from telehealth.selectors import queue_group_may_receive, visit_group_may_receive
        from telehealth.services.visits import visit_appointment_status_changed

        register_group_authoriser("visit", visit_group_may_receive)
        register_group_authoriser("telehealth", queue_group_may_receive)
        register_status_listener(visit_appointment_status_changed)
