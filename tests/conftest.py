"""Fixtures shared by the whole suite. Real PostgreSQL and Redis throughout; nothing of ours is patched."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import LocationFactory, OrganizationFactory, UserFactory

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _clean_redis() -> None:
    """Each test starts with an empty test Redis database (lockout counters, cached sessions)."""
    cache.clear()


@pytest.fixture
def api() -> APIClient:
    """A client that, like a browser, must present the CSRF token on unsafe requests."""
    return APIClient(enforce_csrf_checks=True)


def csrf_login(client: APIClient, username: str, password: str = PASSWORD, **extra: str):  # type: ignore[no-untyped-def]
    """Fetch the CSRF cookie, then sign in as the SPA does. Returns the login response."""
    token = client.get("/api/v1/auth/csrf/").json()["csrfToken"]
    return client.post(
        "/api/v1/auth/login/",
        {"username": username, "password": password},
        format="json",
        HTTP_X_CSRFTOKEN=token,
        **extra,
    )


def csrf_post(client: APIClient, path: str, data: object = None):  # type: ignore[no-untyped-def]
    token = client.cookies["csrftoken"].value
    return client.post(path, data, format="json", HTTP_X_CSRFTOKEN=token)


@pytest.fixture
def organization():  # type: ignore[no-untyped-def]
    return OrganizationFactory()


@pytest.fixture
def location(organization):  # type: ignore[no-untyped-def]
    return LocationFactory(organization=organization)


@pytest.fixture
def doctor(organization, location):  # type: ignore[no-untyped-def]
    return UserFactory(username="dr-test", roles=["practitioner"], organization=organization, locations=[location])


@pytest.fixture
def admin_user(organization):  # type: ignore[no-untyped-def]
    return UserFactory(username="admin-test", roles=["admin"], organization=organization)


@pytest.fixture
def patient():  # type: ignore[no-untyped-def]
    return UserFactory(username="pt-test", roles=["patient"])
