"""factory_boy factories for identity. Synthetic data only."""

from __future__ import annotations

from typing import Any

import factory

from ehr.models import Location, Organization, User

PASSWORD = "correct-horse-battery-staple"


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Test Health {n}")


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Clinic {n}")
    timezone = "Europe/Lisbon"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    roles = factory.LazyFunction(lambda: ["patient"])
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def locations(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            self.locations.set(extracted)


class PatientFactory(factory.Factory):
    """A Patient registered through the real service (``patient_register``): MRN, version 1, history and audit rows.

    ``registrar`` (a staff user) is the actor; by default a fresh admin. Duplicate detection is skipped unless
    ``allow_duplicate=False`` is passed, so batches of random people never trip over each other.
    """

    class Meta:
        model = dict  # built as keyword arguments for PatientInput; _create calls the service

    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    birth_date = factory.Faker("date_of_birth", minimum_age=1, maximum_age=95)
    sex = factory.Iterator(["female", "male", "other", "unknown"])
    phone = factory.Sequence(lambda n: f"+1555{n:07d}")
    email = factory.Sequence(lambda n: f"patient{n}@example.test")
    national_id = ""
    insurance_member_id = ""
    user_id = None

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        from ehr.services.patients import PatientInput, patient_register

        registrar = kwargs.pop("registrar", None) or UserFactory(
            roles=["admin"], organization=OrganizationFactory(name="Registrar Org")
        )
        allow_duplicate = kwargs.pop("allow_duplicate", True)
        user = kwargs.pop("user", None)
        if user is not None:
            kwargs["user_id"] = user.pk
        return patient_register(actor=registrar, data=PatientInput(**kwargs), allow_duplicate=allow_duplicate)


class CareTeamMemberFactory(factory.Factory):
    """A care-team membership made through the real service (``care_team_add``), by default by a fresh admin.

    ``CareTeamMemberFactory(patient=p, member=doctor)``; the care-team role defaults to ``nurse`` for nurses and
    ``visit-practitioner`` otherwise.
    """

    class Meta:
        model = dict

    reason = "test care relationship"

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        from ehr.services.access import care_team_add

        patient = kwargs.pop("patient")
        member = kwargs.pop("member")
        manager = kwargs.pop("manager", None) or UserFactory(
            roles=["admin"], organization=OrganizationFactory(name="Registrar Org")
        )
        role = kwargs.pop("role", None) or ("nurse" if member.roles == ["nurse"] else "visit-practitioner")
        return care_team_add(actor=manager, patient_id=patient.pk, member_id=member.pk, role=role, **kwargs)


def care_team_join(*, patient: Any, member: Any, role: str = "assigned-doctor") -> Any:
    """Put ``member`` on ``patient``'s care team through the real service (``care_team_add``), as an admin would."""
    from ehr.services.access import care_team_add

    admin = UserFactory(roles=["admin"], organization=OrganizationFactory(name="Registrar Org"))
    return care_team_add(
        actor=admin, patient_id=patient.pk, member_id=member.pk, role=role, reason="test: treating clinician"
    )


class EncounterFactory(factory.Factory):
    """An in-progress Encounter opened through the real service (``encounter_open``) by ``practitioner`` at one of
    their locations. The practitioner must already be allowed to write the patient's record (see
    ``care_team_join``). Returns the ``EncounterRef`` DTO."""

    class Meta:
        model = dict

    modality = "virtual"
    reason = "follow-up"

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        from ehr.services.clinical import encounter_open

        practitioner = kwargs.pop("practitioner")
        patient = kwargs.pop("patient")
        location = kwargs.pop("location", None) or practitioner.locations.first()
        return encounter_open(actor=practitioner, patient_id=patient.pk, location_id=location.pk, **kwargs)
