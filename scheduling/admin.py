"""Django admin for scheduling: configuration (resources, weekly hours, exceptions, appointment types) is editable;
appointments, holds, slots and their events are shown read-only, by ids (no patient names, which are read only
through the audited EHR), because every change to them goes through ``scheduling.services``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from scheduling.models import (
    Appointment,
    AppointmentEvent,
    AppointmentType,
    AvailabilityException,
    AvailabilityRule,
    ResourceRequirement,
    Schedule,
)


class AvailabilityRuleInline(admin.TabularInline[AvailabilityRule, Schedule]):
    model = AvailabilityRule
    extra = 0


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin[Schedule]):
    list_display = ["name", "kind", "category", "location", "time_zone", "active"]
    list_filter = ["kind", "location", "active"]
    search_fields = ["name", "category"]
    inlines = [AvailabilityRuleInline]


@admin.register(AvailabilityException)
class AvailabilityExceptionAdmin(admin.ModelAdmin[AvailabilityException]):
    list_display = ["schedule", "kind", "start", "end", "reason"]
    list_filter = ["kind"]


class ResourceRequirementInline(admin.TabularInline[ResourceRequirement, AppointmentType]):
    model = ResourceRequirement
    extra = 0


@admin.register(AppointmentType)
class AppointmentTypeAdmin(admin.ModelAdmin[AppointmentType]):
    list_display = ["name", "code", "modality", "duration_minutes", "patient_bookable", "active"]
    list_filter = ["modality", "patient_bookable", "active"]
    inlines = [ResourceRequirementInline]


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Appointment)
class AppointmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "start", "end", "practitioner", "location", "modality", "patient_id", "version"]
    list_filter = ["status", "modality", "location"]
    fields = (
        "id",
        "status",
        "start",
        "end",
        "practitioner",
        "location",
        "modality",
        "patient_id",
        "appointment_type",
        "encounter_id",
        "series",
        "override_reason",
        "cancel_reason",
        "version",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields


@admin.register(AppointmentEvent)
class AppointmentEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "appointment_id", "type", "from_status", "to_status", "actor", "created_at"]
    list_filter = ["type"]
