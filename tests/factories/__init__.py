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
