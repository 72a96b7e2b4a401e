"""Admin console user management: list, deactivate, activate."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.conftest import csrf_login, csrf_post
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, "admin-test").status_code == 200
    return client


def test_user_list_is_paginated_searchable_and_constant_in_queries(admin_api: APIClient) -> None:
    UserFactory.create_batch(30, roles=["patient"])
    UserFactory(username="findme", first_name="Zebedee", roles=["patient"])
    with CaptureQueriesContext(connection) as queries:
        page = admin_api.get("/api/v1/ehr/users/")
    assert page.status_code == 200
    assert page.json()["count"] == 32
    # session + user (auth) + count + page: no per-row queries
    assert len(queries) <= 4, [q["sql"] for q in queries]
    found = admin_api.get("/api/v1/ehr/users/", {"search": "zebedee"}).json()
    assert [row["username"] for row in found["results"]] == ["findme"]


def test_user_list_is_for_admins_only(api: APIClient, doctor) -> None:
    csrf_login(api, "dr-test")
    response = api.get("/api/v1/ehr/users/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_deactivated_user_session_stops_working_at_once(admin_api: APIClient, patient) -> None:
    patient_api = APIClient(enforce_csrf_checks=True)
    csrf_login(patient_api, "pt-test")
    assert patient_api.get("/api/v1/auth/me/").status_code == 200

    response = csrf_post(admin_api, f"/api/v1/ehr/users/{patient.pk}/deactivate/")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert patient_api.get("/api/v1/auth/me/").status_code == 401

    assert csrf_post(admin_api, f"/api/v1/ehr/users/{patient.pk}/activate/").json()["is_active"] is True
    assert csrf_login(APIClient(enforce_csrf_checks=True), "pt-test").status_code == 200


def test_admin_cannot_deactivate_themselves(admin_api: APIClient, admin_user) -> None:
    response = csrf_post(admin_api, f"/api/v1/ehr/users/{admin_user.pk}/deactivate/")
    assert response.status_code == 400
    assert response.json()["code"] == "cannot_deactivate_self"
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_deactivating_an_unknown_user_is_404(admin_api: APIClient) -> None:
    response = csrf_post(admin_api, "/api/v1/ehr/users/999999/deactivate/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
