from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Infrastructure every app shares: the realtime event spine, API error shapes, health. No domain data."""

    name = "core"
    default_auto_field = "django.db.models.BigAutoField"
