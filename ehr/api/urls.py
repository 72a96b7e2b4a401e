from django.urls import path

from ehr.api.audit import AuditEventListApi
from ehr.api.users import UserActivateApi, UserDeactivateApi, UserListApi

urlpatterns = [
    path("users/", UserListApi.as_view(), name="ehr-user-list"),
    path("users/<int:user_id>/deactivate/", UserDeactivateApi.as_view(), name="ehr-user-deactivate"),
    path("users/<int:user_id>/activate/", UserActivateApi.as_view(), name="ehr-user-activate"),
    path("audit-events/", AuditEventListApi.as_view(), name="ehr-audit-event-list"),
]
