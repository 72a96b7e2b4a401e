"""Visit signaling across two real daphne processes sharing Redis: the patient on one, the doctor on the other."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from asgiref.sync import sync_to_async

from signaling import visit_protocol as vp
from tests.signaling.conftest import VisitRefs, session_headers, visit_admit_now, visit_end_now
from tests.support.servers import Daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

TIMEOUT = 10
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


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


async def open_visit_socket(server: Daphne, user: Any, visit_id: str) -> Any:
    headers = await sync_to_async(session_headers)(user, server.url)
    ws = await websockets.connect(
        f"{server.ws_url}/ws/v1/visits/{visit_id}/",
        additional_headers=[(k.decode(), v.decode()) for k, v in headers],
    )
    welcome = await recv(ws)
    assert welcome["kind"] == "welcome", welcome
    return ws


async def recv(ws: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def expect_closed(ws: Any, code: int) -> list[dict[str, Any]]:
    """Read until the server closes the socket; check its code and return the frames before it."""
    frames: list[dict[str, Any]] = []

    async def read_all() -> None:
        while True:
            frames.append(await recv(ws))

    with pytest.raises(websockets.ConnectionClosed) as info:
        await read_all()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == code
    return frames


def candidate(n: int) -> dict[str, Any]:
    return {"candidate": f"candidate:{n} 1 udp 1 192.0.2.{n} 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


async def test_patient_and_doctor_on_different_daphne_processes_signal_to_each_other(
    two_daphnes: tuple[Daphne, Daphne], visit: VisitRefs
) -> None:
    a, b = two_daphnes
    await sync_to_async(visit_admit_now)(visit)
    doctor = await open_visit_socket(a, visit.practitioner, visit.id)
    patient = await open_visit_socket(b, visit.patient_user, visit.id)
    assert await recv(doctor) == {
        "kind": "peer-joined",
        "participant_id": "patient",
        "role": "patient",
        "name": visit.patient_user.display_name,
    }
    assert (await recv(patient))["participant_id"] == "practitioner"

    await doctor.send(json.dumps({"kind": "signal", "type": "offer", "sdp": SDP, "seq": 0}))
    for n in range(1, 11):
        await doctor.send(json.dumps({"kind": "signal", "type": "candidate", "candidate": candidate(n), "seq": n}))
    got = [await recv(patient) for _ in range(11)]
    assert got[0] == {"kind": "signal", "type": "offer", "sdp": SDP, "seq": 0, "from": "practitioner"}
    assert [f["seq"] for f in got] == list(range(11))

    await patient.send(json.dumps({"kind": "signal", "type": "answer", "sdp": SDP, "seq": 0}))
    for n in range(1, 11):
        await patient.send(json.dumps({"kind": "signal", "type": "candidate", "candidate": candidate(n), "seq": n}))
    got = [await recv(doctor) for _ in range(11)]
    assert [(f["type"], f["seq"], f["from"]) for f in got] == [("answer", 0, "patient")] + [
        ("candidate", n, "patient") for n in range(1, 11)
    ]
    # No echo across processes either.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(doctor.recv(), 0.5)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(patient.recv(), 0.1)

    # The patient reconnects on the doctor's process; the visit goes on there.
    await patient.close()
    assert await recv(doctor) == {"kind": "peer-left", "participant_id": "patient"}
    patient = await open_visit_socket(a, visit.patient_user, visit.id)
    assert await recv(doctor) == {
        "kind": "peer-joined",
        "participant_id": "patient",
        "role": "patient",
        "name": visit.patient_user.display_name,
    }
    assert (await recv(patient))["participant_id"] == "practitioner"

    # Ending the visit closes both sockets with 4410, whichever process holds them.
    await sync_to_async(visit_end_now)(visit)
    for ws in (doctor, patient):
        assert await expect_closed(ws, vp.CLOSE_VISIT_ENDED) == [{"kind": "visit-state", "status": "finished"}]
    for server in (a, b):
        assert "Traceback" not in server.log()
