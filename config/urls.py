"""URL wiring. The API lives under /api/v1/; every other non-static path is the SPA."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from core.api.health import HealthApi
from core.api.realtime import StreamEventListApi
from core.views import spa_index

api_v1: list[URLPattern | URLResolver] = [
    path("health/", HealthApi.as_view(), name="health"),
    path("auth/", include("ehr.api.auth_urls")),
    path("ehr/", include("ehr.api.urls")),
    path("scheduling/", include("scheduling.api.urls")),
    path("telehealth/", include("telehealth.api.urls")),
    path("notifications/", include("notifications.api.urls")),
    path("realtime/events/", StreamEventListApi.as_view(), name="realtime-events"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    # Anything else that is not an API, admin, websocket or static path is a client-side route of the SPA.
    re_path(r"^(?!api/|admin/|static/|ws/)(?P<path>.*)$", spa_index, name="spa"),
]

handler404 = "core.views.not_found"
