from django.urls import path

from ehr.api.audit import AuditEventListApi
from ehr.api.patients import (
    PatientDetailApi,
    PatientEnteredInErrorApi,
    PatientHistoryApi,
    PatientIdentifiersApi,
    PatientListApi,
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
]
