"""The waitlist: a cancellation offers the freed time to waiting patients at once; the first to accept books it,
even when acceptances race."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from core.models import StreamEvent
from scheduling.errors import BookingForbidden, InvalidBooking, OfferUnavailable
from scheduling.models import Appointment, OfferStatus, WaitlistEntry, WaitlistOffer, WaitlistStatus
from scheduling.services.booking import appointment_book, appointment_cancel
from scheduling.services.waitlist import waitlist_join, waitlist_offer_accept, waitlist_offer_decline
from tests.factories import PatientFactory, UserFactory

TUESDAY_10 = dt.datetime(2031, 3, 4, 10, 0, tzinfo=dt.UTC)
WINDOW = (dt.datetime(2031, 3, 3, 0, 0, tzinfo=dt.UTC), dt.datetime(2031, 3, 8, 0, 0, tzinfo=dt.UTC))


def waiting_patient(organization, name: str):  # type: ignore[no-untyped-def]
    user = UserFactory(username=name, roles=["patient"], organization=organization)
    return user, PatientFactory(user=user)


def book_and_cancel(scheduler, doctor, video_type) -> Appointment:  # type: ignore[no-untyped-def]
    ref = appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=PatientFactory().pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    appointment_cancel(actor=scheduler, appointment_id=ref.id, reason="patient travelling")
    return Appointment.objects.get(pk=ref.id)


@pytest.mark.django_db
def test_cancellation_offers_the_time_to_waiting_patients_oldest_first(
    frozen_now, scheduler, doctor, doctor_schedule, video_type, organization
):
    first_user, first = waiting_patient(organization, "wait-1")
    second_user, second = waiting_patient(organization, "wait-2")
    _other_type_user, other = waiting_patient(organization, "wait-3")
    for user, patient in ((first_user, first), (second_user, second)):
        waitlist_join(
            actor=user, patient_id=patient.pk, appointment_type_id=video_type.pk, earliest=WINDOW[0], latest=WINDOW[1]
        )
    waitlist_join(  # outside the window: not offered
        actor=scheduler,
        patient_id=other.pk,
        appointment_type_id=video_type.pk,
        earliest=WINDOW[1],
        latest=WINDOW[1] + dt.timedelta(days=3),
    )
    book_and_cancel(scheduler, doctor, video_type)
    offers = list(WaitlistOffer.objects.order_by("created_at", "entry__created_at"))
    assert [o.entry.patient_id for o in offers] == [first.pk, second.pk]
    assert {o.offer_group for o in offers} == {offers[0].offer_group}
    assert StreamEvent.objects.filter(stream=f"user:{first_user.pk}", type="waitlist.offered").exists()

    booked = waitlist_offer_accept(actor=second_user, offer_id=offers[1].pk)
    assert (booked.patient_id, booked.start, booked.status) == (second.pk, TUESDAY_10, "booked")
    assert WaitlistOffer.objects.get(pk=offers[0].pk).status == OfferStatus.TAKEN
    assert WaitlistEntry.objects.get(patient=second).status == WaitlistStatus.BOOKED
    with pytest.raises(OfferUnavailable):
        waitlist_offer_accept(actor=first_user, offer_id=offers[0].pk)


@pytest.mark.django_db
def test_only_the_offered_patient_may_accept_or_decline(
    frozen_now, scheduler, doctor, doctor_schedule, video_type, organization
):
    user, patient = waiting_patient(organization, "wait-1")
    intruder, _ = waiting_patient(organization, "intruder")
    waitlist_join(
        actor=user, patient_id=patient.pk, appointment_type_id=video_type.pk, earliest=WINDOW[0], latest=WINDOW[1]
    )
    book_and_cancel(scheduler, doctor, video_type)
    offer = WaitlistOffer.objects.get()
    with pytest.raises(BookingForbidden):
        waitlist_offer_accept(actor=intruder, offer_id=offer.pk)
    waitlist_offer_decline(actor=user, offer_id=offer.pk)
    assert WaitlistOffer.objects.get(pk=offer.pk).status == OfferStatus.DECLINED


@pytest.mark.django_db
def test_waitlist_join_refuses_bad_windows(frozen_now, patient_user, patient, video_type):
    with pytest.raises(InvalidBooking):
        waitlist_join(
            actor=patient_user,
            patient_id=patient.pk,
            appointment_type_id=video_type.pk,
            earliest=WINDOW[1],
            latest=WINDOW[0],
        )
    assert not WaitlistEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_racing_acceptances_have_exactly_one_winner(scheduler, doctor, doctor_schedule, video_type, organization):
    import time_machine

    from tests.scheduling.conftest import NOW

    with time_machine.travel(NOW, tick=True):
        users = [waiting_patient(organization, f"racer-{i}") for i in range(4)]
        for user, patient in users:
            waitlist_join(
                actor=user,
                patient_id=patient.pk,
                appointment_type_id=video_type.pk,
                earliest=WINDOW[0],
                latest=WINDOW[1],
            )
        book_and_cancel(scheduler, doctor, video_type)
        offers = {o.entry.patient_id: o.pk for o in WaitlistOffer.objects.select_related("entry")}
        barrier = threading.Barrier(len(users))
        outcomes: list[str] = []
        lock = threading.Lock()

        def accept(user, patient) -> None:  # type: ignore[no-untyped-def]
            try:
                barrier.wait()
                waitlist_offer_accept(actor=user, offer_id=offers[patient.pk])
                result = "won"
            except OfferUnavailable:
                result = "lost"
            finally:
                connection.close()
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=accept, args=pair) for pair in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
        assert WaitlistOffer.objects.filter(status=OfferStatus.ACCEPTED).count() == 1
        assert Appointment.objects.filter(start=TUESDAY_10, status="booked").count() == 1


@pytest.mark.django_db
def test_withdraw_over_http_only_for_the_patient_themselves(frozen_now, video_type, organization):
    from rest_framework.test import APIClient

    from tests.conftest import csrf_login

    user, patient = waiting_patient(organization, "leaver")
    other_user, _ = waiting_patient(organization, "nosy")
    entry = waitlist_join(
        actor=user, patient_id=patient.pk, appointment_type_id=video_type.pk, earliest=WINDOW[0], latest=WINDOW[1]
    )
    nosy = APIClient(enforce_csrf_checks=True)
    csrf_login(nosy, other_user.username)
    path = f"/api/v1/scheduling/waitlist/{entry.pk}/"
    assert nosy.delete(path, HTTP_X_CSRFTOKEN=nosy.cookies["csrftoken"].value).status_code == 404
    owner = APIClient(enforce_csrf_checks=True)
    csrf_login(owner, user.username)
    assert owner.delete(path, HTTP_X_CSRFTOKEN=owner.cookies["csrftoken"].value).status_code == 204
    assert WaitlistEntry.objects.get(pk=entry.pk).status == WaitlistStatus.WITHDRAWN
