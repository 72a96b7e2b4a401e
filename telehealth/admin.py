"""Django admin for telehealth: intake questions are configuration and editable; visits, check-in links and call
quality are read-only and shown by ids (no names, intake answers, chat or summaries: PHI is read through the API,
which audits it), because every change to them goes through ``telehealth.services``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from telehealth.models import CallQualityReport, CheckInLink, IntakeQuestion, Visit


@admin.register(IntakeQuestion)
class IntakeQuestionAdmin(admin.ModelAdmin[IntakeQuestion]):
    list_display = ["appointment_type_id", "position", "key", "text", "kind", "required", "active"]
    list_filter = ["appointment_type_id", "active"]


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Visit)
class VisitAdmin(ReadOnlyAdmin):
    list_display = ["id", "appointment_id", "status", "practitioner_id", "checked_in_at", "admitted_at", "ended_at"]
    list_filter = ["status"]
    fields = [
        "id",
        "appointment_id",
        "status",
        "practitioner_id",
        "location_id",
        "encounter_id",
        "ready",
        "checked_in_at",
        "admitted_at",
        "ended_at",
        "duration_seconds",
        "audio_only",
        "patient_connected",
        "patient_left_at",
        "version",
    ]


@admin.register(CheckInLink)
class CheckInLinkAdmin(ReadOnlyAdmin):
    list_display = ["id", "appointment_id", "expires_at", "used_at", "created_at"]


@admin.register(CallQualityReport)
class CallQualityReportAdmin(ReadOnlyAdmin):
    list_display = ["id", "visit_id", "user_id", "role", "created_at"]
    fields = ["visit_id", "user_id", "role", "stats", "created_at"]
