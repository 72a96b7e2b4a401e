"""Django admin: identity (editable; activation changes go through the services so live sessions end at once), and
read-only, audited views of the patient record and its relationships.

Patient, clinical, document, care-team and break-the-glass rows are **never** written through the admin (no add,
change or delete: writes go through ``ehr.services``, which version and audit them). Every page that shows such rows
writes one ``read`` audit row (channel ``admin``, purpose ``admin``) in the request's transaction, so a failed audit
write fails the page: a detail page names the row and its patient; a list page names the patients on that page and
the filters used (names only, never the search text). The audit log itself is shown read-only and unaudited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import models, transaction
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from ehr import services
from ehr.models import (
    AllergyIntolerance,
    AuditAction,
    AuditEvent,
    BreakGlassGrant,
    CareTeamMember,
    ClinicalNote,
    Condition,
    DocumentReference,
    Encounter,
    Location,
    MedicationStatement,
    NoteAddendum,
    Observation,
    Organization,
    Patient,
    User,
)
from ehr.services.audit import audit_record

ADMIN_PURPOSE = "admin"
# Query parameters of the change list that are paging and ordering, not filters.
_NOT_FILTERS = frozenset({"p", "o", "all", "_changelist_filters", "_popup", "_to_field"})


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


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Shows rows, never changes them: no add, change or delete, whatever the user's permissions."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditedReadOnlyAdmin(ReadOnlyAdmin):
    """Read-only admin of a model holding protected health information: every list and detail page is audited.

    ``patient_field`` is the lookup from a row to its patient's id (``patient_id``; ``pk`` for ``Patient``).
    """

    patient_field = "patient_id"

    def patient_of(self, obj: models.Model) -> int | None:
        value: Any = obj
        for part in self.patient_field.split("__"):
            value = getattr(value, part)
        return None if value is None else int(value)

    def _audit(
        self, request: HttpRequest, *, entity_id: object, patient_id: int | None, detail: dict[str, Any]
    ) -> None:
        audit_record(
            actor=request.user,  # type: ignore[arg-type]  # the admin site lets only signed-in staff in
            action=AuditAction.READ,
            entity_type=self.model.__name__,
            entity_id=entity_id,
            patient_id=patient_id,
            purpose=ADMIN_PURPOSE,
            request=request,
            channel="admin",
            detail=detail,
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        with transaction.atomic():
            response = super().changelist_view(request, extra_context)
            change_list = (response.context_data or {}).get("cl") if isinstance(response, TemplateResponse) else None
            if change_list is not None:  # a page of rows is about to be shown (not a redirect or an error page)
                rows = list(change_list.result_list)
                change_list.result_list = rows  # render exactly the rows audited
                patients = sorted({p for p in (self.patient_of(row) for row in rows) if p is not None})
                filters = sorted("search" if key == "q" else key for key in request.GET if key not in _NOT_FILTERS)
                self._audit(
                    request,
                    entity_id="",
                    patient_id=None,  # a list spans patients: they are named in the detail, as search does
                    detail={"view": "changelist", "results": len(rows), "patient_ids": patients, "filters": filters},
                )
            return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        with transaction.atomic():
            response = super().change_view(request, object_id, form_url, extra_context)
            shown = response.context_data or {} if isinstance(response, TemplateResponse) else {}
            original = shown.get("original")
            if original is not None:  # the row is about to be shown (not a redirect for a missing id)
                self._audit(
                    request, entity_id=original.pk, patient_id=self.patient_of(original), detail={"view": "detail"}
                )
            return response


@admin.register(Patient)
class PatientAdmin(AuditedReadOnlyAdmin):
    patient_field = "pk"
    list_display = ["mrn", "family_name", "given_name", "birth_date", "status", "version"]
    list_filter = ["status"]
    search_fields = ["=mrn"]  # exact MRN only: names and birth dates are searched in the app, which scopes access
    # Identifier tokens and hashes are useless to read here; the full identifiers are read through the audited API.
    exclude = ["national_id_encrypted", "national_id_hash", "insurance_member_id_encrypted", "insurance_member_id_hash"]


@admin.register(Encounter)
class EncounterAdmin(AuditedReadOnlyAdmin):
    list_display = ["id", "patient", "practitioner", "location", "modality", "status", "period_start"]
    list_filter = ["status", "modality"]
    list_select_related = ["patient", "practitioner", "location"]


@admin.register(ClinicalNote)
class ClinicalNoteAdmin(AuditedReadOnlyAdmin):
    list_display = ["id", "patient", "encounter", "author", "status", "signed_at", "version"]
    list_filter = ["status"]
    list_select_related = ["patient", "encounter", "author"]


@admin.register(NoteAddendum)
class NoteAddendumAdmin(AuditedReadOnlyAdmin):
    patient_field = "note__patient_id"
    list_display = ["id", "note", "author", "created_at"]
    list_select_related = ["note", "author"]


@admin.register(Condition)
class ConditionAdmin(AuditedReadOnlyAdmin):
    list_display = ["id", "patient", "code", "clinical_status", "verification_status", "version"]
    list_filter = ["clinical_status", "verification_status"]
    list_select_related = ["patient"]


@admin.register(AllergyIntolerance)
class AllergyIntoleranceAdmin(AuditedReadOnlyAdmin):
    list_display = ["id", "patient", "criticality", "clinical_status", "verification_status", "version"]
    list_filter = ["clinical_status", "verification_status"]
    list_select_related = ["patient"]


@admin.register(MedicationStatement)
class MedicationStatementAdmin(AuditedReadOnlyAdmin):
    list_display = ["id", "patient", "status", "prescriber", "version"]
    list_filter = ["status"]
    list_select_related = ["patient", "prescriber"]


@admin.register(Observation)
class ObservationAdmin(AuditedReadOnlyAdmin):
    list_display = ["id", "patient", "code", "category", "status", "effective_at", "version"]
    list_filter = ["status", "category"]
    list_select_related = ["patient"]


@admin.register(DocumentReference)
class DocumentReferenceAdmin(AuditedReadOnlyAdmin):
    """Metadata only: the bytes are served by the access-checked content endpoint alone (docs/documents.md)."""

    list_display = ["id", "patient", "type", "content_type", "size_bytes", "status", "created_at"]
    list_filter = ["status", "type"]
    list_select_related = ["patient"]
    exclude = ["storage_key"]


@admin.register(CareTeamMember)
class CareTeamMemberAdmin(AuditedReadOnlyAdmin):
    list_display = ["id", "patient", "member", "role", "start", "end"]
    list_filter = ["role"]
    list_select_related = ["patient", "member"]


@admin.register(BreakGlassGrant)
class BreakGlassGrantAdmin(AuditedReadOnlyAdmin):
    list_display = ["id", "patient", "actor", "granted_at", "expires_at", "review_status"]
    list_filter = ["review_status"]
    list_select_related = ["patient", "actor"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit log, read-only (PostgreSQL rejects changes anyway). Searching it here is not itself audited; the
    admin console's audit-log page (``GET /api/v1/ehr/audit-events/``) is."""

    list_display = ["id", "occurred_at", "actor", "actor_role", "action", "entity_type", "patient_id", "outcome"]
    list_filter = ["action", "outcome", "channel"]
    list_select_related = ["actor"]
