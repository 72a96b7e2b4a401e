from django.contrib import admin

from notifications.models import ContactPreference, MessageTemplate, StaffContact


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


@admin.register(StaffContact)
class StaffContactAdmin(admin.ModelAdmin[StaffContact]):
    """A clinician's mobile number for wait alerts by SMS (no patient names are ever sent)."""

    list_display = ("user", "sms_alerts", "email_alerts", "updated_at")
    raw_id_fields = ("user",)
