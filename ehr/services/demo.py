"""Synthetic demo data for `make run` and browser tests. Never real people; refused in production."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from ehr.models import Location, Organization, Role, User

DEMO_ORGANIZATION = "Consulta Demo Health"
DEMO_LOCATIONS = [
    ("Riverside Clinic", "America/New_York", "100 River Road, Springfield"),
    ("Hilltop Virtual Clinic", "America/Chicago", "Telehealth only"),
]

# (username, first, last, roles, location indexes)
DEMO_STAFF: list[tuple[str, str, str, list[str], list[int]]] = [
    ("admin", "Alex", "Admin", [Role.ADMIN], [0, 1]),
    ("doctor", "Dana", "Okafor", [Role.PRACTITIONER], [0, 1]),
    ("doctor2", "Samuel", "Lindqvist", [Role.PRACTITIONER], [0]),
    ("doctor3", "Priya", "Raman", [Role.PRACTITIONER], [1]),
    ("doctor4", "Mateo", "Fernandez", [Role.PRACTITIONER], [1]),
    ("nurse", "Nora", "Achebe", [Role.NURSE], [0]),
    ("scheduler", "Sam", "Whitfield", [Role.SCHEDULER], [0, 1]),
    ("scheduler2", "Jo", "Marchetti", [Role.SCHEDULER], [1]),
    ("billing", "Bea", "Kowalski", [Role.BILLING], [0, 1]),
]

_FIRST = [
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Farah",
    "Gus",
    "Hana",
    "Ivo",
    "Jade",
    "Kofi",
    "Lena",
    "Milo",
    "Nia",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Tao",
    "Uma",
    "Vik",
    "Wren",
    "Yusuf",
    "Zoe",
    "Aria",
]
_LAST = [
    "Abbott",
    "Baird",
    "Cruz",
    "Dahl",
    "Eze",
    "Fox",
    "Gale",
    "Holm",
    "Ito",
    "Jensen",
    "Kaur",
    "Lowe",
    "Moss",
    "Nakamura",
    "Oduya",
    "Park",
    "Quist",
    "Reyes",
    "Stone",
    "Tran",
    "Ueda",
    "Vance",
    "Wolfe",
    "Young",
    "Zhou",
]
PATIENT_COUNT = 50


class DemoRefused(RuntimeError):
    """Demo data may not be loaded into a production database."""


@dataclass(frozen=True)
class DemoSummary:
    organizations: int
    locations: int
    staff: int
    patients: int


def _patients() -> list[tuple[str, str, str]]:
    """50 synthetic patients, the same every run: ``patient`` and ``patient2`` first, then ``patient003``…"""
    rng = random.Random(20261129)  # noqa: S311 -- reproducible synthetic names, not security
    names = [(rng.choice(_FIRST), rng.choice(_LAST)) for _ in range(PATIENT_COUNT)]
    rows = []
    for i, (first, last) in enumerate(names, start=1):
        username = "patient" if i == 1 else "patient2" if i == 2 else f"patient{i:03d}"
        rows.append((username, first, last))
    return rows


def _upsert_user(
    username: str, first: str, last: str, roles: list[str], org: Organization | None, password: str
) -> User:
    user, created = User.objects.get_or_create(
        username=username,
        defaults={
            "first_name": first,
            "last_name": last,
            "roles": roles,
            "organization": org,
            "email": f"{username}@demo.consulta.invalid",
        },
    )
    changed = created
    for field, value in (
        ("first_name", first),
        ("last_name", last),
        ("roles", roles),
        ("organization", org),
        ("is_active", True),
    ):
        if getattr(user, field) != value:
            setattr(user, field, value)
            changed = True
    if created or not user.check_password(password):
        user.set_password(password)
        changed = True
    if Role.ADMIN in roles and not (user.is_staff and user.is_superuser):
        user.is_staff = user.is_superuser = True
        changed = True
    if changed:
        user.save()
    return user


def demo_seed(*, password: str | None = None) -> DemoSummary:
    """Create or bring back to its defined state the demo organization, clinics, staff and patients.

    Idempotent: a second run changes nothing (and re-activates demo users someone deactivated).
    """
    if getattr(settings, "ENVIRONMENT", "") == "production":
        raise DemoRefused("seed_demo refuses to run with production settings")
    password = password or os.environ.get("DEMO_PASSWORD") or "consulta-demo"
    with transaction.atomic():
        org, _ = Organization.objects.get_or_create(name=DEMO_ORGANIZATION)
        locations = []
        for name, tz, address in DEMO_LOCATIONS:
            loc, _ = Location.objects.update_or_create(
                organization=org, name=name, defaults={"timezone": tz, "address": address}
            )
            locations.append(loc)
        for username, first, last, roles, loc_idx in DEMO_STAFF:
            user = _upsert_user(username, first, last, list(roles), org, password)
            user.locations.set([locations[i] for i in loc_idx])
        for username, first, last in _patients():
            _upsert_user(username, first, last, [Role.PATIENT], None, password)
    return DemoSummary(organizations=1, locations=len(DEMO_LOCATIONS), staff=len(DEMO_STAFF), patients=PATIENT_COUNT)
