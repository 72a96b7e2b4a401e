"""Identity: who people are in Consulta, which roles they hold and which clinics (locations) they work at."""

from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser, UserManager
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone as dj_timezone


class Role(models.TextChoices):
    """Roles are additive: a nurse who also schedules holds both. The first role is the primary one."""

    PATIENT = "patient", "Patient"
    PRACTITIONER = "practitioner", "Practitioner"
    NURSE = "nurse", "Nurse"
    SCHEDULER = "scheduler", "Scheduler"
    BILLING = "billing", "Billing"
    ADMIN = "admin", "Administrator"


STAFF_ROLES = frozenset({Role.PRACTITIONER, Role.NURSE, Role.SCHEDULER, Role.BILLING, Role.ADMIN})


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone name.", code="invalid_timezone")


class Organization(models.Model):
    """A healthcare organization operating one or more clinics. Staff belong to exactly one."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return self.name


class Location(models.Model):
    """A clinic (physical or virtual) of an organization, with the IANA time zone its schedules run in."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="locations")
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    address = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="location_unique_name_per_org"),
        ]

    def __str__(self) -> str:
        return self.name


class ConsultaUserManager(UserManager["User"]):
    def create_superuser(self, username: str, email: str | None = None, password: str | None = None, **extra):  # type: ignore[no-untyped-def,override]
        extra.setdefault("roles", [Role.ADMIN])
        return super().create_superuser(username, email, password, **extra)


class User(AbstractUser):
    """A person who signs in: patient or staff.

    Invariants kept by PostgreSQL: every user holds at least one role and only known roles. Staff belong to an
    organization and work at some of its locations. Deactivation (``is_active = False``) goes through
    ``ehr.services.user_deactivate``, which also ends the person's live sessions; users are never deleted.
    """

    roles = ArrayField(models.CharField(max_length=20, choices=Role.choices), default=list)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="members"
    )
    locations = models.ManyToManyField(Location, blank=True, related_name="staff")

    objects = ConsultaUserManager()  # type: ignore[misc]

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(roles__len__gte=1), name="user_has_a_role"),
            models.CheckConstraint(condition=models.Q(roles__contained_by=Role.values), name="user_roles_known"),
        ]

    @property
    def primary_role(self) -> str:
        return self.roles[0] if self.roles else Role.PATIENT

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    def clean(self) -> None:
        super().clean()
        if set(self.roles) & STAFF_ROLES and self.organization_id is None and not self.is_superuser:
            raise ValidationError({"organization": "Staff must belong to an organization."})
