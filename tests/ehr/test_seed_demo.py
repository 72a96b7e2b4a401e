"""`manage.py seed_demo` is idempotent and refuses production."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from ehr.models import Location, Organization, Patient, PatientVersion, User

pytestmark = pytest.mark.django_db

DEMO_LOGINS = ["admin", "doctor", "doctor2", "nurse", "scheduler", "billing", "patient", "patient2"]


def snapshot() -> list[tuple[object, ...]]:
    users = list(
        User.objects.order_by("username").values_list(
            "username", "first_name", "last_name", "roles", "organization__name", "is_active", "password"
        )
    )
    places = list(Location.objects.order_by("name").values_list("name", "timezone", "organization__name"))
    links = list(
        User.locations.through.objects.order_by("user__username", "location__name").values_list(
            "user__username", "location__name"
        )
    )
    patients = list(
        Patient.objects.order_by("user__username").values_list(
            "user__username",
            "mrn",
            "given_name",
            "family_name",
            "birth_date",
            "sex",
            "phone",
            "email",
            "city",
            "country",
            "preferred_language",
            "national_id_hash",
            "national_id_encrypted",
            "status",
            "version",
        )
    )
    return [*users, *places, *links, *patients, Organization.objects.count(), PatientVersion.objects.count()]


def test_seed_demo_twice_leaves_the_same_data() -> None:
    call_command("seed_demo")
    first = snapshot()
    call_command("seed_demo")
    assert snapshot() == first
    assert User.objects.filter(roles__contains=["patient"]).count() == 50
    assert User.objects.filter(roles__contains=["practitioner"]).count() == 4
    assert User.objects.filter(roles__contains=["scheduler"]).count() == 2
    assert Location.objects.count() == 2
    assert set(DEMO_LOGINS) <= set(User.objects.values_list("username", flat=True))
    # every patient account has its record, linked through Patient.user, registered once
    assert Patient.objects.filter(user__roles__contains=["patient"]).count() == 50
    assert Patient.objects.count() == 50
    assert PatientVersion.objects.count() == 50


def test_seed_demo_uses_demo_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PASSWORD", "another-demo-password")
    call_command("seed_demo")
    assert User.objects.get(username="nurse").check_password("another-demo-password")


def test_seed_demo_refuses_production_settings(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ENVIRONMENT = "production"
    with pytest.raises(CommandError, match="production"):
        call_command("seed_demo")
    assert User.objects.count() == 0
