"""A patient's own contact preferences."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from django.db import transaction
from django.utils import timezone

from ehr.models import Patient, Role, User
from notifications.dto import LanguageOption, PreferenceView
from notifications.errors import Forbidden, InvalidInput, NoPatientRecord
from notifications.models import Channel, ContactPreference
from notifications.services.messages import preference_for
from notifications.services.rendering import LANGUAGE_CODES, LANGUAGES, mask_email, mask_phone

PREFERENCE_CHANNELS = (Channel.SMS, Channel.EMAIL)


def _own_patient_id(actor: User) -> int:
    if not actor.has_role(Role.PATIENT):
        raise Forbidden("Only patients have notification preferences here.")
    patient_id = Patient.objects.filter(user=actor).values_list("id", flat=True).first()
    if patient_id is None:
        raise NoPatientRecord()
    return patient_id


def _view(preference: ContactPreference) -> PreferenceView:
    phone, email = Patient.objects.filter(pk=preference.patient_id).values_list("phone", "email").get()
    return PreferenceView(
        channels=list(preference.channels),
        language=preference.language,
        languages=[LanguageOption(code=c, name=n) for c, n in LANGUAGES],
        sms_opt_out=preference.sms_opt_out,
        email_opt_out=preference.email_opt_out,
        phone_masked=mask_phone(phone),
        email_masked=mask_email(email),
    )


def preference_get(*, actor: User) -> PreferenceView:
    """The signed-in patient's own preferences (created with defaults on first read). Raises ``Forbidden`` for
    non-patients and ``NoPatientRecord``."""
    return _view(preference_for(_own_patient_id(actor)))


def preference_update(*, actor: User, data: dict[str, Any]) -> PreferenceView:
    """The signed-in patient changes their channel order, language, opt-outs (and time zone). Validated as a
    whole: a bad field writes nothing (``InvalidInput``). Takes effect for every message not yet sent."""
    patient_id = _own_patient_id(actor)
    errors: dict[str, list[str]] = {}
    known = {"channels", "language", "sms_opt_out", "email_opt_out", "time_zone"}
    for name in data:
        if name not in known:
            errors[name] = ["Unknown field."]
    channels = data.get("channels")
    if channels is not None and (
        not isinstance(channels, list)
        or not channels
        or any(c not in PREFERENCE_CHANNELS for c in channels)
        or len(set(channels)) != len(channels)
    ):
        errors["channels"] = ["Give a non-empty ordered list of distinct channels from: sms, email."]
    language = data.get("language")
    if language is not None and language not in LANGUAGE_CODES:
        errors["language"] = [f"Use one of: {', '.join(sorted(LANGUAGE_CODES))}."]
    for flag in ("sms_opt_out", "email_opt_out"):
        if flag in data and not isinstance(data[flag], bool):
            errors[flag] = ["Must be true or false."]
    time_zone = data.get("time_zone")
    if time_zone is not None and time_zone != "" and time_zone not in available_timezones():
        errors["time_zone"] = ["Give an IANA time zone name."]
    if errors:
        raise InvalidInput(errors)
    with transaction.atomic():
        preference = preference_for(patient_id, lock=True)
        if channels is not None:
            preference.channels = list(channels)
        if language is not None:
            preference.language = language
        for flag in ("sms_opt_out", "email_opt_out"):
            if flag in data:
                setattr(preference, flag, data[flag])
        if time_zone is not None:
            preference.time_zone = time_zone
        preference.updated_at = timezone.now()
        preference.save()
    return _view(preference)
