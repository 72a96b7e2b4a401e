"""Signed, single-use, appointment-bound check-in links (for reminders): creating one, and signing the patient in
with it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.core import signing
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ehr.models import Patient, User
from ehr.services.sessions import session_sign_in
from scheduling import selectors as scheduling_selectors
from telehealth.dto import CheckInLinkRef
from telehealth.errors import AppointmentNotFound, Forbidden, LinkInvalid, NotVideoAppointment
from telehealth.models import CheckInLink
from telehealth.selectors import is_location_staff, parse_uuid

SALT = "telehealth.checkin"
LINK_PATH = "/check-in/link/"
LINK_STATUSES = frozenset({"booked", "arrived"})


def checkin_link_create(*, actor: User | None, appointment_id: int) -> CheckInLinkRef:
    """A link for the patient of a booked video appointment to check in without signing in first. The token is
    ``django.core.signing`` of the link's random id (salt ``telehealth.checkin``); the link expires after
    ``TELEHEALTH_CHECKIN_LINK_TTL_SECONDS`` (24 h) and never later than the appointment's end. ``actor``: staff
    working at the appointment's location, or None for the system (reminders)."""
    appointment = scheduling_selectors.appointment_get(appointment_id=appointment_id)
    if appointment is None:
        raise AppointmentNotFound()
    if actor is not None and not is_location_staff(actor, appointment.location_id):
        raise Forbidden("Staff of the appointment's clinic create check-in links.")
    if appointment.modality != "video":
        raise NotVideoAppointment()
    if appointment.status not in LINK_STATUSES:
        raise LinkInvalid(f"The appointment is {appointment.status}.")
    now = timezone.now()
    expires_at = min(now + dt.timedelta(seconds=settings.TELEHEALTH_CHECKIN_LINK_TTL_SECONDS), appointment.end)
    if expires_at <= now:
        raise LinkInvalid("The appointment is over.")
    with transaction.atomic():
        link = CheckInLink.objects.create(
            appointment_id=appointment.id, expires_at=expires_at, created_by=actor, created_at=now
        )
    token = signing.dumps(str(link.pk), salt=SALT)
    return CheckInLinkRef(token=token, url=LINK_PATH + token, appointment_id=appointment.id, expires_at=expires_at)


def _link_id(token: Any) -> Any:
    if not isinstance(token, str) or not token or len(token) > 500:
        raise LinkInvalid()
    try:
        raw = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise LinkInvalid() from None
    parsed = parse_uuid(raw)
    if parsed is None:
        raise LinkInvalid()
    return parsed


def checkin_link_consume(*, token: Any, request: HttpRequest) -> tuple[User, int]:
    """Use a check-in link: valid signature, not used, not expired, its appointment still booked or arrived and
    its patient with an active portal login. Marks it used under a row lock (a second use, even concurrent, is
    refused) and signs that patient in on ``request`` (``django.contrib.auth.login``). Returns (user, appointment
    id). Every refusal is the same ``LinkInvalid``: a guesser learns nothing."""
    link_id = _link_id(token)
    now = timezone.now()
    with transaction.atomic():
        link = CheckInLink.objects.select_for_update().filter(pk=link_id).first()
        if link is None or link.used_at is not None or link.expires_at <= now:
            raise LinkInvalid()
        appointment = scheduling_selectors.appointment_get(appointment_id=link.appointment_id)
        if appointment is None or appointment.status not in LINK_STATUSES or appointment.modality != "video":
            raise LinkInvalid()
        # The portal login of the appointment's patient (identity only: no clinical read, nothing to audit).
        user_id = Patient.objects.filter(pk=appointment.patient_id).values_list("user_id", flat=True).first()
        user = User.objects.filter(pk=user_id, is_active=True).first() if user_id is not None else None
        if user is None:
            raise LinkInvalid()
        link.used_at = now
        link.save(update_fields=["used_at"])
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    session_sign_in(
        user=user, session_key=request.session.session_key or "", user_agent=request.headers.get("User-Agent", "")
    )
    return user, appointment.id
