"""The realtime spine's numbering and catch-up: gap-free per-stream sequences, even under racing publishers."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import EventStream, StreamEvent
from core.realtime.selectors import stream_events_after, stream_seqs
from core.realtime.services import InvalidStream, event_publish, stream_events_prune
from tests.conftest import csrf_login


@pytest.mark.django_db
def test_sequence_numbers_are_per_stream_and_start_at_one() -> None:
    a1 = event_publish(stream="user:1", type="t", data={})
    a2 = event_publish(stream="user:1", type="t", data={})
    b1 = event_publish(stream="role:nurse", type="t", data={})
    assert (a1.seq, a2.seq, b1.seq) == (1, 2, 1)
    assert stream_seqs(streams=["user:1", "role:nurse", "user:2"]) == {"user:1": 2, "role:nurse": 1, "user:2": 0}


@pytest.mark.django_db
def test_rolled_back_publish_leaves_no_event_and_no_gap() -> None:
    event_publish(stream="user:1", type="t", data={})

    def publish_then_fail() -> None:
        with transaction.atomic():
            event_publish(stream="user:1", type="lost", data={})
            raise RuntimeError("caller failed after publishing")

    with pytest.raises(RuntimeError):
        publish_then_fail()
    after = event_publish(stream="user:1", type="t", data={})
    assert after.seq == 2
    assert [e.type for e in stream_events_after(stream="user:1", after=0)] == ["t", "t"]


@pytest.mark.django_db
def test_invalid_stream_name_is_refused() -> None:
    with pytest.raises(InvalidStream):
        event_publish(stream="user 1; drop", type="t", data={})
    assert StreamEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_racing_publishers_get_gap_free_unique_sequence_numbers() -> None:
    threads, per_thread = 8, 25
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def publish_many() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                event_publish(stream="group:race.1", type="t", data={})
        except BaseException as exc:  # reported below; a thread must not die silently
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=publish_many) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    seqs = sorted(StreamEvent.objects.filter(stream="group:race.1").values_list("seq", flat=True))
    assert seqs == list(range(1, threads * per_thread + 1))
    assert EventStream.objects.get(name="group:race.1").last_seq == threads * per_thread


@pytest.mark.django_db
def test_prune_drops_events_past_retention() -> None:
    event_publish(stream="user:1", type="old", data={})
    StreamEvent.objects.update(created_at=timezone.now() - timedelta(days=30))
    event_publish(stream="user:1", type="new", data={})
    assert stream_events_prune() == 1
    assert [e.type for e in stream_events_after(stream="user:1", after=0)] == ["new"]


@pytest.mark.django_db
class TestCatchUpApi:
    def test_returns_events_after_the_given_sequence(self, api: APIClient, doctor) -> None:
        for i in range(3):
            event_publish(stream=f"user:{doctor.pk}", type=f"t{i}", data={"i": i})
        csrf_login(api, "dr-test")  # publishes session.signed_in_elsewhere as seq 4
        body = api.get("/api/v1/realtime/events/", {"stream": f"user:{doctor.pk}", "after": 1}).json()
        assert body["last_seq"] == 4
        assert [e["seq"] for e in body["events"]] == [2, 3, 4]
        assert body["events"][0]["type"] == "t1"
        assert body["events"][0]["data"] == {"i": 1}

    def test_role_stream_is_readable_by_role_holders_only(self, api: APIClient, doctor) -> None:
        csrf_login(api, "dr-test")
        assert api.get("/api/v1/realtime/events/", {"stream": "role:practitioner"}).status_code == 200
        forbidden = api.get("/api/v1/realtime/events/", {"stream": "role:admin"})
        assert forbidden.status_code == 403
        assert forbidden.json()["code"] == "stream_forbidden"

    def test_another_users_stream_is_forbidden(self, api: APIClient, doctor, patient) -> None:
        event_publish(stream=f"user:{patient.pk}", type="private", data={})
        csrf_login(api, "dr-test")
        response = api.get("/api/v1/realtime/events/", {"stream": f"user:{patient.pk}"})
        assert response.status_code == 403

    def test_bad_parameters_are_a_400_naming_the_field(self, api: APIClient, doctor) -> None:
        csrf_login(api, "dr-test")
        response = api.get("/api/v1/realtime/events/", {"stream": f"user:{doctor.pk}", "after": "-3"})
        assert response.status_code == 400
        assert list(response.json()["fields"]) == ["after"]

    def test_requires_sign_in(self, api: APIClient) -> None:
        assert api.get("/api/v1/realtime/events/", {"stream": "user:1"}).status_code == 401

    def test_location_group_stream_for_staff_of_that_location(self, api: APIClient, doctor, location) -> None:
        csrf_login(api, "dr-test")
        assert api.get("/api/v1/realtime/events/", {"stream": f"group:location.{location.pk}"}).status_code == 200
        assert api.get("/api/v1/realtime/events/", {"stream": "group:location.999999"}).status_code == 403
