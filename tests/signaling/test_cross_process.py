"""Events cross daphne processes: two real servers share Redis, and a publish reaches sockets on both."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from asgiref.sync import sync_to_async

from core.realtime.services import publish_to_user
from tests.signaling.conftest import session_headers
from tests.support.servers import Daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def two_daphnes(tmp_path: Path) -> Iterator[tuple[Daphne, Daphne]]:
    first = Daphne(tmp_path, name="daphne-a")
    try:
        second = Daphne(tmp_path, name="daphne-b")
    except BaseException:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


async def open_socket(server: Daphne, user):  # type: ignore[no-untyped-def]
    headers = await sync_to_async(session_headers)(user, server.url)
    ws = await websockets.connect(
        f"{server.ws_url}/ws/v1/events/", additional_headers=[(k.decode(), v.decode()) for k, v in headers]
    )
    hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert hello["kind"] == "hello"
    return ws


async def test_event_reaches_sockets_on_both_daphne_processes(two_daphnes, doctor, patient) -> None:
    a, b = two_daphnes
    doc_on_a = await open_socket(a, doctor)
    doc_on_b = await open_socket(b, doctor)
    patient_on_b = await open_socket(b, patient)

    await sync_to_async(publish_to_user)(user_id=doctor.pk, type="test.cross", data={"x": 1})

    for ws in (doc_on_a, doc_on_b):
        event = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (event["type"], event["seq"], event["data"]) == ("test.cross", 1, {"x": 1})
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(patient_on_b.recv(), 0.5)
    for ws in (doc_on_a, doc_on_b, patient_on_b):
        await ws.close()
