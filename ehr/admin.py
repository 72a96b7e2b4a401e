"""Django admin for identity. Activation changes go through the services so live sessions end at once."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from ehr import services
from ehr.models import Location, Organization, User


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin[Organization]):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin[Location]):
    list_display = ["name", "organization", "timezone"]
    list_filter = ["organization"]
    search_fields = ["name"]


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    list_display = ["username", "first_name", "last_name", "roles", "organization", "is_active"]
    list_filter = ["is_active", "organization"]
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("Consulta", {"fields": ("roles", "organization", "locations")}),
    )
    filter_horizontal = ("groups", "user_permissions", "locations")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # accounts are deactivated, never deleted: records point at them

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        wants_active = obj.is_active
        if change and "is_active" in form.changed_data:
            obj.is_active = not wants_active  # let the service make the change (and its side effects)
            super().save_model(request, obj, form, change)
            actor: User = request.user  # type: ignore[assignment]
            if wants_active:
                services.user_activate(user_id=obj.pk, actor=actor)
            else:
                services.user_deactivate(user_id=obj.pk, actor=actor)
            obj.is_active = wants_active
            return
        super().save_model(request, obj, form, change)
