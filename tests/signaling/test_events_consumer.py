"""/ws/v1/events/ through the real config.asgi router, the real Redis channel layer and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from core.realtime.services import publish_to_group, publish_to_user
from ehr.services import user_deactivate
from signaling import protocol
from tests.signaling.conftest import session_headers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

TIMEOUT = 5


async def connect(user: Any = None, origin: str = "http://testserver") -> WebsocketCommunicator:
    headers = await sync_to_async(session_headers)(user, origin) if user else [(b"origin", origin.encode())]
    communicator = WebsocketCommunicator(application, "/ws/v1/events/", headers=headers)
    return communicator


async def receive(comm: WebsocketCommunicator) -> dict[str, Any]:
    return json.loads(await comm.receive_from(timeout=TIMEOUT))


async def test_unauthenticated_socket_is_closed_with_4401() -> None:
    comm = await connect()
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    closed = await comm.receive_output(timeout=TIMEOUT)
    assert (closed["type"], closed["code"]) == ("websocket.close", protocol.CLOSE_NOT_AUTHENTICATED)


async def test_foreign_origin_is_refused(doctor) -> None:
    comm = await connect(doctor, origin="https://evil.example")
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert not connected


async def test_hello_lists_user_role_and_session_streams_with_their_seqs(doctor) -> None:
    await sync_to_async(publish_to_user)(user_id=doctor.pk, type="t", data={})
    comm = await connect(doctor)
    assert (await comm.connect(timeout=TIMEOUT))[0]
    hello = await receive(comm)
    assert hello["kind"] == "hello"
    streams = hello["streams"]
    assert streams[f"user:{doctor.pk}"] == 1
    assert streams["role:practitioner"] == 0
    assert [s for s in streams if s.startswith("session:")] != []
    await comm.disconnect()


async def test_event_published_after_commit_reaches_its_user_and_not_another(doctor, patient) -> None:
    doc = await connect(doctor)
    pat = await connect(patient)
    for comm in (doc, pat):
        assert (await comm.connect(timeout=TIMEOUT))[0]
        assert (await receive(comm))["kind"] == "hello"

    await sync_to_async(publish_to_user)(user_id=doctor.pk, type="test.ping", data={"n": 1})

    event = await receive(doc)
    assert event["kind"] == "event"
    assert (event["stream"], event["seq"], event["type"], event["data"]) == (
        f"user:{doctor.pk}",
        1,
        "test.ping",
        {"n": 1},
    )
    assert await pat.receive_nothing(timeout=0.5)
    await doc.disconnect()
    await pat.disconnect()


async def test_event_is_not_pushed_when_the_transaction_rolls_back(doctor) -> None:
    from django.db import transaction

    def publish_then_fail() -> None:
        try:
            with transaction.atomic():
                publish_to_user(user_id=doctor.pk, type="never", data={})
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        publish_to_user(user_id=doctor.pk, type="kept", data={})

    comm = await connect(doctor)
    assert (await comm.connect(timeout=TIMEOUT))[0]
    await receive(comm)
    await sync_to_async(publish_then_fail)()
    event = await receive(comm)
    assert (event["type"], event["seq"]) == ("kept", 1)
    await comm.disconnect()


async def test_deactivating_a_user_closes_their_socket_with_4403(doctor, admin_user) -> None:
    comm = await connect(doctor)
    assert (await comm.connect(timeout=TIMEOUT))[0]
    await receive(comm)

    await sync_to_async(user_deactivate)(user_id=doctor.pk, actor=admin_user)

    event = await receive(comm)
    assert (event["type"], event["data"]) == ("session.revoked", {"reason": "deactivated"})
    closed = await comm.receive_output(timeout=TIMEOUT)
    assert closed["type"] == "websocket.close"
    assert closed["code"] == protocol.CLOSE_SESSION_REVOKED

    again = await connect(doctor)
    await again.connect(timeout=TIMEOUT)
    assert (await again.receive_output(timeout=TIMEOUT))["code"] == protocol.CLOSE_NOT_AUTHENTICATED


async def test_ping_gets_pong(doctor) -> None:
    comm = await connect(doctor)
    await comm.connect(timeout=TIMEOUT)
    await receive(comm)
    await comm.send_to(text_data='{"kind":"ping"}')
    assert await receive(comm) == {"kind": "pong"}
    await comm.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "malformed_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"kind": "shout"}', "unknown_kind"),
        ('{"kind": "subscribe", "stream": "user:1"}', "invalid_stream"),
        ('{"kind": "subscribe", "stream": "group:bad name"}', "invalid_stream"),
        ('{"kind": "ping", "pad": "' + "x" * protocol.MAX_FRAME_BYTES + '"}', "frame_too_large"),
    ],
)
async def test_bad_frames_get_a_typed_error_and_the_socket_stays_usable(doctor, frame: str, code: str) -> None:
    comm = await connect(doctor)
    await comm.connect(timeout=TIMEOUT)
    await receive(comm)
    await comm.send_to(text_data=frame)
    error = await receive(comm)
    assert (error["kind"], error["code"]) == ("error", code)
    await comm.send_to(text_data='{"kind":"ping"}')
    assert await receive(comm) == {"kind": "pong"}
    await comm.disconnect()


async def test_binary_frames_are_refused(doctor) -> None:
    comm = await connect(doctor)
    await comm.connect(timeout=TIMEOUT)
    await receive(comm)
    await comm.send_to(bytes_data=b"\x00\x01")
    assert (await receive(comm))["code"] == "binary_not_supported"
    await comm.disconnect()


async def test_flooding_client_is_closed_with_4429(doctor) -> None:
    comm = await connect(doctor)
    await comm.connect(timeout=TIMEOUT)
    await receive(comm)
    for _ in range(protocol.RATE_LIMIT + 5):
        await comm.send_to(text_data='{"kind":"ping"}')
    outputs = []
    while True:
        out = await comm.receive_output(timeout=TIMEOUT)
        outputs.append(out)
        if out["type"] == "websocket.close":
            break
    assert outputs[-1]["code"] == protocol.CLOSE_RATE_LIMITED
    assert sum(1 for o in outputs if o["type"] == "websocket.send") == protocol.RATE_LIMIT


async def test_staff_subscribe_to_their_location_group_and_receive_its_events(doctor, location) -> None:
    comm = await connect(doctor)
    await comm.connect(timeout=TIMEOUT)
    await receive(comm)
    stream = f"group:location.{location.pk}"
    await comm.send_to(text_data=json.dumps({"kind": "subscribe", "stream": stream}))
    assert await receive(comm) == {"kind": "subscribed", "stream": stream, "seq": 0}
    await sync_to_async(publish_to_group)(name=f"location.{location.pk}", type="board.changed", data={})
    event = await receive(comm)
    assert (event["stream"], event["seq"], event["type"]) == (stream, 1, "board.changed")

    await comm.send_to(text_data=json.dumps({"kind": "unsubscribe", "stream": stream}))
    assert await receive(comm) == {"kind": "unsubscribed", "stream": stream}
    await sync_to_async(publish_to_group)(name=f"location.{location.pk}", type="board.changed", data={})
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_patient_cannot_subscribe_to_a_location_group(patient, location) -> None:
    comm = await connect(patient)
    await comm.connect(timeout=TIMEOUT)
    await receive(comm)
    await comm.send_to(text_data=json.dumps({"kind": "subscribe", "stream": f"group:location.{location.pk}"}))
    error = await receive(comm)
    assert (error["kind"], error["code"]) == ("error", "stream_forbidden")
    await comm.disconnect()
