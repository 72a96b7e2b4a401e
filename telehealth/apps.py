from typing import Any

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

        from notifications.registry import register_context_provider

        register_context_provider("video_checkin", checkin_link_for_reminder)

        from notifications.registry import register_source_check
        from telehealth.services.alerts import WAIT_ALERT_SOURCE, wait_alert_is_current

        register_source_check(WAIT_ALERT_SOURCE, wait_alert_is_current)


def checkin_link_for_reminder(context: dict[str, Any]) -> dict[str, Any]:
    """The signed single-use check-in link of a video reminder, minted when the message is sent (notifications
    renders and stores the text once, so a re-send after a crash sends the same link)."""
    from django.conf import settings

    from telehealth.services.links import checkin_link_create

    ref = checkin_link_create(actor=None, appointment_id=int(context["appointment_id"]))
    return {"checkin_url": settings.NOTIFICATIONS_PUBLIC_BASE_URL.rstrip("/") + ref.url}
