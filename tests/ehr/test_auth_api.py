"""Session sign-in for the SPA: /api/v1/auth/{csrf,login,logout,me}."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.conftest import PASSWORD, csrf_login, csrf_post
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_login_returns_me_and_sets_httponly_samesite_session_cookie(api: APIClient, doctor) -> None:
    response = csrf_login(api, "dr-test")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["username"] == "dr-test"
    assert body["roles"] == ["practitioner"]
    assert body["primary_role"] == "practitioner"
    assert body["organization"]["id"] == doctor.organization_id
    assert [loc["id"] for loc in body["locations"]] == [loc.id for loc in doctor.locations.all()]
    assert len(body["session"]) == 24
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


def test_me_after_login_reports_the_same_session(api: APIClient, doctor) -> None:
    login = csrf_login(api, "dr-test").json()
    me = api.get("/api/v1/auth/me/")
    assert me.status_code == 200
    assert me.json() == login


def test_me_unauthenticated_is_401_with_code(api: APIClient) -> None:
    response = api.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_wrong_password_and_unknown_user_are_indistinguishable(api: APIClient, doctor) -> None:
    wrong = csrf_login(api, "dr-test", "not-the-password")
    unknown = csrf_login(api, "nobody-by-this-name", "not-the-password")
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json() == {"code": "invalid_credentials", "detail": "Wrong username or password."}
    assert settings.SESSION_COOKIE_NAME not in wrong.cookies


def test_login_without_csrf_token_is_rejected_and_signs_nobody_in(api: APIClient, doctor) -> None:
    response = api.post("/api/v1/auth/login/", {"username": "dr-test", "password": PASSWORD}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert api.get("/api/v1/auth/me/").status_code == 401


def test_logout_without_csrf_token_is_rejected(api: APIClient, doctor) -> None:
    csrf_login(api, "dr-test")
    response = api.post("/api/v1/auth/logout/")
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert api.get("/api/v1/auth/me/").status_code == 200


def test_logout_ends_the_session(api: APIClient, doctor) -> None:
    csrf_login(api, "dr-test")
    assert csrf_post(api, "/api/v1/auth/logout/").status_code == 204
    assert api.get("/api/v1/auth/me/").status_code == 401


def test_inactive_user_cannot_sign_in(api: APIClient) -> None:
    UserFactory(username="gone", is_active=False)
    response = csrf_login(api, "gone")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credentials"


def test_missing_fields_are_named(api: APIClient) -> None:
    token = api.get("/api/v1/auth/csrf/").json()["csrfToken"]
    response = api.post("/api/v1/auth/login/", {"username": ""}, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"username", "password"}


def test_malformed_json_is_a_clear_400(api: APIClient) -> None:
    token = api.get("/api/v1/auth/csrf/").json()["csrfToken"]
    response = api.post("/api/v1/auth/login/", "{not json", content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_repeated_failures_lock_out_even_the_right_password(api: APIClient, doctor) -> None:
    statuses = [csrf_login(api, "dr-test", f"guess-{i}").status_code for i in range(settings.AXES_FAILURE_LIMIT)]
    assert statuses[0] == 400
    locked = csrf_login(api, "dr-test", PASSWORD)
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_attempts"
    assert api.get("/api/v1/auth/me/").status_code == 401


def test_lockout_is_per_username_so_others_still_sign_in(api: APIClient, doctor, patient) -> None:
    for i in range(settings.AXES_FAILURE_LIMIT + 1):
        csrf_login(api, "dr-test", f"guess-{i}")
    assert csrf_login(APIClient(enforce_csrf_checks=True), "pt-test").status_code == 200


def test_successful_login_resets_the_failure_count(api: APIClient, doctor) -> None:
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        csrf_login(api, "dr-test", f"guess-{i}")
    assert csrf_login(api, "dr-test").status_code == 200
    other = APIClient(enforce_csrf_checks=True)
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        assert csrf_login(other, "dr-test", f"again-{i}").status_code == 400
    assert csrf_login(other, "dr-test").status_code == 200


def test_passwords_are_stored_with_argon2(doctor) -> None:
    assert doctor.password.startswith("argon2$argon2id$")


def test_failed_and_locked_out_sign_ins_log_neither_username_nor_address(api: APIClient, doctor, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for i in range(settings.AXES_FAILURE_LIMIT + 1):
        csrf_login(api, "dr-test", f"guess-{i}", REMOTE_ADDR="203.0.113.9")
    messages = [r.getMessage() for r in caplog.records]
    assert any("Locking out client " in m for m in messages)  # the lockout was logged...
    assert not any("dr-test" in m or "203.0.113.9" in m for m in messages)  # ...naming nobody


def test_me_names_the_patients_own_record_and_none_for_staff(api: APIClient, doctor) -> None:
    from tests.factories import PatientFactory

    record = PatientFactory(user=UserFactory(username="pt-with-record", roles=["patient"]))
    me = csrf_login(api, "pt-with-record").json()
    assert me["patient_id"] == record.pk
    staff = APIClient(enforce_csrf_checks=True)
    assert csrf_login(staff, "dr-test").json()["patient_id"] is None
