from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    """Schedules of bookable resources, availability, appointment types, slot search, holds, atomic booking and the
    appointment state machine (docs/scheduling.md, docs/concurrency.md)."""

    name = "scheduling"
    verbose_name = "Scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.realtime.streams import register_group_authoriser
        from scheduling.selectors import board_may_receive

        register_group_authoriser("scheduling", board_may_receive)

        from scheduling.reminders import register as register_reminder_handlers

        register_reminder_handlers()
