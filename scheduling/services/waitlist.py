"""The waitlist: a freed slot is offered at once to the patients waiting for it; the first to accept books it."""

from __future__ import annotations

import datetime as dt
import uuid
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from core.realtime.services import publish_to_user
from ehr.models import Patient, User
from scheduling.dto import AppointmentRef
from scheduling.errors import BookingForbidden, InvalidBooking, NotFound, OfferUnavailable, SchedulingError
from scheduling.models import (
    Appointment,
    AppointmentType,
    OfferStatus,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)
from scheduling.services.booking import appointment_book, authorise_booking, is_uuid

OFFERED = "waitlist.offered"


def waitlist_join(
    *,
    actor: User,
    patient_id: int,
    appointment_type_id: int,
    earliest: dt.datetime,
    latest: dt.datetime,
    practitioner_id: int | None = None,
    request: HttpRequest | None = None,
) -> WaitlistEntry:
    """Put a patient on the waitlist for a type (optionally one practitioner) between two instants. Who may: as
    for booking (the patient for themselves, staff who may schedule them)."""
    authorise_booking(actor=actor, patient_id=patient_id, request=request)
    if not AppointmentType.objects.filter(pk=appointment_type_id, active=True).exists():
        raise InvalidBooking({"appointment_type_id": ["Unknown or inactive appointment type."]})
    if earliest.tzinfo is None or latest.tzinfo is None or latest <= earliest:
        raise InvalidBooking({"latest": ["Give a window with UTC offsets, latest after earliest."]})
    if latest <= timezone.now():
        raise InvalidBooking({"latest": ["The window is over."]})
    return WaitlistEntry.objects.create(
        patient_id=patient_id,
        appointment_type_id=appointment_type_id,
        practitioner_id=practitioner_id,
        earliest=earliest,
        latest=latest,
        created_by=actor,
    )


def waitlist_withdraw(*, actor: User, entry_id: int, request: HttpRequest | None = None) -> None:
    """Leave the waitlist. Someone who may not schedule the entry's patient is told it does not exist."""
    entry = WaitlistEntry.objects.filter(pk=entry_id).first()
    if entry is None:
        raise NotFound("WaitlistEntry", entry_id)
    try:
        authorise_booking(actor=actor, patient_id=entry.patient_id, request=request)
    except BookingForbidden as exc:
        raise NotFound("WaitlistEntry", entry_id) from exc
    WaitlistEntry.objects.filter(pk=entry_id, status=WaitlistStatus.ACTIVE).update(status=WaitlistStatus.WITHDRAWN)


def waitlist_offer_freed_slot(*, appointment: Appointment, schedule_ids: list[int]) -> list[WaitlistOffer]:
    """Called by ``appointment_cancel`` in its transaction: offer the freed time (same type, practitioner and
    resources) to up to ``WAITLIST_OFFER_FANOUT`` waiting patients, oldest first, each told over their own
    stream. Offers expire after ``WAITLIST_OFFER_TTL_SECONDS`` or at the start, whichever is sooner."""
    entries = list(
        WaitlistEntry.objects.filter(
            appointment_type_id=appointment.appointment_type_id,
            status=WaitlistStatus.ACTIVE,
            earliest__lte=appointment.start,
            latest__gte=appointment.end,
        )
        .filter(Q(practitioner__isnull=True) | Q(practitioner_id=appointment.practitioner_id))
        .exclude(patient_id=appointment.patient_id)
        .order_by("created_at", "id")[: settings.WAITLIST_OFFER_FANOUT]
    )
    if not entries:
        return []
    group = uuid.uuid4()
    expires = min(appointment.start, timezone.now() + dt.timedelta(seconds=settings.WAITLIST_OFFER_TTL_SECONDS))
    offers = WaitlistOffer.objects.bulk_create(
        [
            WaitlistOffer(
                offer_group=group,
                entry=entry,
                appointment_type_id=appointment.appointment_type_id,
                practitioner_id=appointment.practitioner_id,
                location_id=appointment.location_id,
                schedule_ids=schedule_ids,
                start=appointment.start,
                end=appointment.end,
                expires_at=expires,
            )
            for entry in entries
        ]
    )
    users = dict(Patient.objects.filter(pk__in=[e.patient_id for e in entries]).values_list("pk", "user_id"))
    for offer, entry in zip(offers, entries, strict=True):
        user_id = users.get(entry.patient_id)
        if user_id is not None:
            publish_to_user(
                user_id=user_id,
                type=OFFERED,
                data={"offer_id": str(offer.pk), "start": offer.start.isoformat(), "expires_at": expires.isoformat()},
            )
    return offers


def waitlist_offer_accept(*, actor: User, offer_id: UUID | str, request: HttpRequest | None = None) -> AppointmentRef:
    """Accept an offer: books the offered time for the offer's patient. The first acceptance of an offer group
    wins — the group's rows are locked in a fixed order and a partial unique index allows one ``accepted`` per
    group; later ones get ``OfferUnavailable`` (409). If the time was booked directly meanwhile, the booking's
    ``SlotUnavailable`` is reported the same way and the offers close."""
    if not is_uuid(offer_id):
        raise NotFound("WaitlistOffer", offer_id)
    offer = WaitlistOffer.objects.select_related("entry").filter(pk=offer_id).first()
    if offer is None:
        raise NotFound("WaitlistOffer", offer_id)
    authorise_booking(actor=actor, patient_id=offer.entry.patient_id, request=request)
    try:
        with transaction.atomic():
            group = list(WaitlistOffer.objects.select_for_update().filter(offer_group=offer.offer_group).order_by("id"))
            mine = next(o for o in group if o.pk == offer.pk)
            if mine.status != OfferStatus.OPEN or mine.expires_at <= timezone.now():
                raise OfferUnavailable("this offer is no longer available")
            if any(o.status == OfferStatus.ACCEPTED for o in group):
                raise OfferUnavailable("someone else accepted this time first")
            booked = appointment_book(
                actor=actor,
                appointment_type_id=mine.appointment_type_id,
                patient_id=mine.entry.patient_id,
                start=mine.start,
                practitioner_id=mine.practitioner_id,
                resource_ids=[i for i in mine.schedule_ids if i != _practitioner_schedule_id(mine)],
                request=request,
            )
            WaitlistOffer.objects.filter(pk=mine.pk).update(status=OfferStatus.ACCEPTED, appointment_id=booked.id)
            WaitlistOffer.objects.filter(offer_group=mine.offer_group, status=OfferStatus.OPEN).update(
                status=OfferStatus.TAKEN
            )
            WaitlistEntry.objects.filter(pk=mine.entry_id).update(status=WaitlistStatus.BOOKED)
    except IntegrityError as exc:  # the one-winner index: a racing acceptance committed first
        raise OfferUnavailable("someone else accepted this time first") from exc
    except SchedulingError as exc:
        if isinstance(exc, OfferUnavailable):
            raise
        if exc.status == 409:
            WaitlistOffer.objects.filter(offer_group=offer.offer_group, status=OfferStatus.OPEN).update(
                status=OfferStatus.TAKEN
            )
            raise OfferUnavailable("this time has been booked meanwhile") from exc
        raise
    return booked


def _practitioner_schedule_id(offer: WaitlistOffer) -> int | None:
    from scheduling.models import Schedule

    return Schedule.objects.filter(practitioner_id=offer.practitioner_id).values_list("pk", flat=True).first()


def waitlist_offer_decline(*, actor: User, offer_id: UUID | str, request: HttpRequest | None = None) -> None:
    offer = WaitlistOffer.objects.select_related("entry").filter(pk=offer_id).first() if is_uuid(offer_id) else None
    if offer is None:
        raise NotFound("WaitlistOffer", offer_id)
    authorise_booking(actor=actor, patient_id=offer.entry.patient_id, request=request)
    WaitlistOffer.objects.filter(pk=offer.pk, status=OfferStatus.OPEN).update(status=OfferStatus.DECLINED)
