"""Synthetic demo data for `make run` and browser tests. Never real people; refused in production."""

from __future__ import annotations

import datetime
import os
import random
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from ehr.models import Location, Organization, Patient, Role, User
from ehr.services.patients import PatientInput, patient_register

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


def _patient_record(index: int, user: User, rng: random.Random) -> PatientInput:
    """Synthetic, deterministic demographics for demo patient number ``index`` (1-based).

    Birth dates are spaced 397 days apart plus a jitter below that, so no two demo patients share one and duplicate
    detection (which needs the same birth date) never fires; phones and emails are unique by construction.
    """
    birth_date = datetime.date(1940, 1, 1) + datetime.timedelta(days=index * 397 + rng.randrange(300))
    city, country, language = rng.choice(_PLACES)
    return PatientInput(
        given_name=user.first_name,
        family_name=user.last_name,
        birth_date=birth_date,
        sex=rng.choice(["female", "male", "female", "male", "other", "unknown"]),
        phone=f"+1555{index:07d}",
        email=user.email,
        address_line=f"{rng.randrange(1, 999)} {rng.choice(_STREETS)}",
        city=city,
        postal_code=f"{rng.randrange(10000, 99999)}",
        country=country,
        preferred_language=language,
        emergency_contact_name=f"{rng.choice(_FIRST)} {user.last_name}",
        emergency_contact_phone=f"+1555{index + 5000:07d}",
        national_id=f"DEMO{index:06d}",
        insurance_member_id=f"INS-DEMO-{index:05d}",
        user_id=user.pk,
    )


_PLACES = [
    ("Springfield", "US", "en"),
    ("Chicago", "US", "en-US"),
    ("Lisbon", "PT", "pt-PT"),
    ("Toronto", "CA", "fr-CA"),
    ("Madrid", "ES", "es"),
]
_STREETS = ["River Road", "Hill Street", "Oak Avenue", "Main Street", "Elm Lane"]


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
    """Create or bring back to its defined state the demo organization, clinics, staff and patients, and a Patient
    record (registered through ``patient_register``) for each patient account.

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
        registrar = User.objects.get(username="admin")
        records = random.Random(20261130)  # noqa: S311 -- reproducible synthetic demographics, not security
        for index, (username, first, last) in enumerate(_patients(), start=1):
            user = _upsert_user(username, first, last, [Role.PATIENT], None, password)
            record = _patient_record(index, user, records)  # drawn every run, so later records stay the same
            if not Patient.objects.filter(user=user).exists():
                patient_register(actor=registrar, data=record, reason="demo data")
    return DemoSummary(organizations=1, locations=len(DEMO_LOCATIONS), staff=len(DEMO_STAFF), patients=PATIENT_COUNT)
