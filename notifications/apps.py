from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """The outbox of messages (SMS, email, voice) with provider failover, delivery receipts, two-way SMS and
    opt-outs (docs/notifications.md). Depends on ehr and core only; other apps plug in through
    ``notifications.registry``."""

    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.realtime.streams import register_group_authoriser
        from notifications.selectors import health_may_receive

        register_group_authoriser("notifications", health_may_receive)
