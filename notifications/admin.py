from django.contrib import admin

from notifications.models import ContactPreference, MessageTemplate


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin[MessageTemplate]):
    """The clinic edits its wording here (no clinical details in SMS)."""

    list_display = ("kind", "channel", "language", "subject")
    list_filter = ("channel", "language")


@admin.register(ContactPreference)
class ContactPreferenceAdmin(admin.ModelAdmin[ContactPreference]):
    list_display = ("patient_id", "channels", "language", "sms_opt_out", "email_opt_out")
    readonly_fields = ("patient", "channels", "language", "sms_opt_out", "email_opt_out", "time_zone", "updated_at")

    def has_add_permission(self, request: object) -> bool:
        return False
