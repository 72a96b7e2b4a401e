from django.urls import path

from ehr.api.access import (
    BreakGlassListApi,
    BreakGlassReviewApi,
    CareTeamEndApi,
    MyAccessLogApi,
    PatientBreakGlassApi,
    PatientCareTeamApi,
)
from ehr.api.audit import AuditEventListApi
from ehr.api.clinical import (
    RECORD_APIS,
    ChartSummaryApi,
    EncounterCancelApi,
    EncounterCloseApi,
    EncounterEnteredInErrorApi,
    EncounterHistoryApi,
    EncounterListApi,
    NoteAddendumApi,
    NoteDetailApi,
    NoteHistoryApi,
    NoteListApi,
    NoteSignApi,
)
from ehr.api.documents import (
    DocumentContentApi,
    DocumentEnteredInErrorApi,
    DocumentHistoryApi,
    PatientDocumentListApi,
)
from ehr.api.exports import PatientRecordExportApi
from ehr.api.patients import (
    PatientDetailApi,
    PatientEnteredInErrorApi,
    PatientHistoryApi,
    PatientIdentifiersApi,
    PatientListApi,
    PatientMergeApi,
)
from ehr.api.users import UserActivateApi, UserDeactivateApi, UserListApi

urlpatterns = [
    path("users/", UserListApi.as_view(), name="ehr-user-list"),
    path("users/<int:user_id>/deactivate/", UserDeactivateApi.as_view(), name="ehr-user-deactivate"),
    path("users/<int:user_id>/activate/", UserActivateApi.as_view(), name="ehr-user-activate"),
    path("audit-events/", AuditEventListApi.as_view(), name="ehr-audit-event-list"),
    path("patients/", PatientListApi.as_view(), name="ehr-patient-list"),
    path("patients/<int:patient_id>/", PatientDetailApi.as_view(), name="ehr-patient-detail"),
    path("patients/<int:patient_id>/identifiers/", PatientIdentifiersApi.as_view(), name="ehr-patient-identifiers"),
    path("patients/<int:patient_id>/history/", PatientHistoryApi.as_view(), name="ehr-patient-history"),
    path(
        "patients/<int:patient_id>/entered-in-error/",
        PatientEnteredInErrorApi.as_view(),
        name="ehr-patient-entered-in-error",
    ),
    path("patients/<int:patient_id>/merge/", PatientMergeApi.as_view(), name="ehr-patient-merge"),
    path("patients/<int:patient_id>/care-team/", PatientCareTeamApi.as_view(), name="ehr-patient-care-team"),
    path("care-team/<int:membership_id>/end/", CareTeamEndApi.as_view(), name="ehr-care-team-end"),
    path("patients/<int:patient_id>/break-glass/", PatientBreakGlassApi.as_view(), name="ehr-patient-break-glass"),
    path("break-glass/", BreakGlassListApi.as_view(), name="ehr-break-glass-list"),
    path("break-glass/<int:grant_id>/review/", BreakGlassReviewApi.as_view(), name="ehr-break-glass-review"),
    path("me/access-log/", MyAccessLogApi.as_view(), name="ehr-my-access-log"),
    # Clinical record (docs/clinical-record.md)
    path("patients/<int:patient_id>/summary/", ChartSummaryApi.as_view(), name="ehr-chart-summary"),
    path("patients/<int:patient_id>/encounters/", EncounterListApi.as_view(), name="ehr-encounter-list"),
    path("encounters/<int:encounter_id>/close/", EncounterCloseApi.as_view(), name="ehr-encounter-close"),
    path("encounters/<int:encounter_id>/cancel/", EncounterCancelApi.as_view(), name="ehr-encounter-cancel"),
    path(
        "encounters/<int:encounter_id>/entered-in-error/",
        EncounterEnteredInErrorApi.as_view(),
        name="ehr-encounter-entered-in-error",
    ),
    path("encounters/<int:record_id>/history/", EncounterHistoryApi.as_view(), name="ehr-encounter-history"),
    path("encounters/<int:encounter_id>/notes/", NoteListApi.as_view(), name="ehr-note-list"),
    path("notes/<int:note_id>/", NoteDetailApi.as_view(), name="ehr-note-detail"),
    path("notes/<int:note_id>/sign/", NoteSignApi.as_view(), name="ehr-note-sign"),
    path("notes/<int:note_id>/addenda/", NoteAddendumApi.as_view(), name="ehr-note-addenda"),
    path("notes/<int:record_id>/history/", NoteHistoryApi.as_view(), name="ehr-note-history"),
    # Documents (docs/documents.md)
    path("patients/<int:patient_id>/documents/", PatientDocumentListApi.as_view(), name="ehr-document-list"),
    path("documents/<int:document_id>/content/", DocumentContentApi.as_view(), name="ehr-document-content"),
    path(
        "documents/<int:document_id>/entered-in-error/",
        DocumentEnteredInErrorApi.as_view(),
        name="ehr-document-entered-in-error",
    ),
    path("documents/<int:record_id>/history/", DocumentHistoryApi.as_view(), name="ehr-document-history"),
    # Record export (docs/exports.md)
    path("patients/<int:patient_id>/export/", PatientRecordExportApi.as_view(), name="ehr-patient-export"),
]
for _plural, (_list, _detail, _eie, _history) in RECORD_APIS.items():
    urlpatterns += [
        path(f"patients/<int:patient_id>/{_plural}/", _list.as_view(), name=f"ehr-{_plural}-list"),
        path(f"{_plural}/<int:record_id>/", _detail.as_view(), name=f"ehr-{_plural}-detail"),
        path(f"{_plural}/<int:record_id>/entered-in-error/", _eie.as_view(), name=f"ehr-{_plural}-entered-in-error"),
        path(f"{_plural}/<int:record_id>/history/", _history.as_view(), name=f"ehr-{_plural}-history"),
    ]
