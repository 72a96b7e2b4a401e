"""The API's public surface: OpenAPI schema, offline docs UI, the SPA entry and JSON 404s."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db


def test_openapi_schema_is_openapi_3_and_lists_the_auth_endpoints(client: Client) -> None:
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/v1/auth/login/", "/api/v1/auth/me/", "/api/v1/health/", "/api/v1/realtime/events/"):
        assert path in schema["paths"]
    assert schema["components"]["securitySchemes"]["cookieAuth"]["name"] == settings.SESSION_COOKIE_NAME


def test_docs_ui_is_served_from_our_own_static_files(client: Client) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


def test_unknown_api_path_is_a_json_404(client: Client) -> None:
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_spa_entry_is_served_for_client_side_routes_with_a_csrf_cookie(client: Client) -> None:
    for path in ("/", "/login", "/admin-console/users"):
        response = client.get(path)
        if response.status_code == 503:
            pytest.fail("frontend/dist is not built: run `make frontend`")
        assert response.status_code == 200
        assert b'<div id="app"' in response.content
        assert "csrftoken" in response.cookies


def test_security_headers_are_set(client: Client) -> None:
    response = client.get("/api/v1/auth/csrf/")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
