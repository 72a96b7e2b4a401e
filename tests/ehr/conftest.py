"""Staff fixtures for the ehr tests (the shared doctor, admin and patient fixtures live in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory


@pytest.fixture
def nurse(organization, location):  # type: ignore[no-untyped-def]
    return UserFactory(username="nurse-test", roles=["nurse"], organization=organization, locations=[location])


@pytest.fixture
def scheduler(organization, location):  # type: ignore[no-untyped-def]
    return UserFactory(username="sched-test", roles=["scheduler"], organization=organization, locations=[location])


@pytest.fixture
def doctor2(organization, location):  # type: ignore[no-untyped-def]
    return UserFactory(username="dr-two", roles=["practitioner"], organization=organization, locations=[location])
