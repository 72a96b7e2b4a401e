"""/ws/v1/visits/<uuid>/ through the real config.asgi router, the real Redis channel layer and PostgreSQL.

Visits are made by the telehealth factories and moved through the real telehealth services (admit, end), whose
``visit.state`` messages reach the sockets after commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from signaling import visit_protocol as vp
from tests.factories import UserFactory
from tests.signaling.conftest import (
    VisitRefs,
    session_headers,
    visit_admit_now,
    visit_end_now,
    visit_patient_connected,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

TIMEOUT = 5
QUIET = 0.3  # how long "nothing arrives" is watched for
SDP_OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=offer-secret-sdp\r\nt=0 0\r\n"
SDP_ANSWER = "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=answer-secret-sdp\r\nt=0 0\r\n"


def candidate(n: int) -> dict[str, Any]:
    return {
        "candidate": f"candidate:{n} 1 udp 2122260223 198.51.100.{n} {50000 + n} typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "uf",
    }


async def open_socket(user: Any, visit_id: str, origin: str = "http://testserver") -> WebsocketCommunicator:
    headers = await sync_to_async(session_headers)(user, origin) if user else [(b"origin", origin.encode())]
    comm = WebsocketCommunicator(application, f"/ws/v1/visits/{visit_id}/", headers=headers)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    return comm


async def receive(comm: WebsocketCommunicator) -> dict[str, Any]:
    return json.loads(await comm.receive_from(timeout=TIMEOUT))


async def expect_close(comm: WebsocketCommunicator, code: int) -> list[dict[str, Any]]:
    """Read until the server closes the socket; return the frames sent before it. Then deliver the disconnect, as
    daphne does once the close handshake ends, so the consumer finishes its clean-up."""
    frames = []
    while True:
        out = await comm.receive_output(timeout=TIMEOUT)
        if out["type"] == "websocket.close":
            assert out.get("code") == code, (out, frames)
            await comm.disconnect(code=code, timeout=TIMEOUT)
            return frames
        frames.append(json.loads(out["text"]))


async def join(user: Any, visit_id: str) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    comm = await open_socket(user, visit_id)
    welcome = await receive(comm)
    assert welcome["kind"] == "welcome", welcome
    return comm, welcome


async def expect_announced(comm: WebsocketCommunicator, participant_id: str) -> None:
    """The socket learns that ``participant_id`` is here: by ``peer-present`` when that peer was there first, or by
    ``peer-joined`` when the two connects overlapped; never by both."""
    frame = await receive(comm)
    assert frame["kind"] in ("peer-joined", "peer-present"), frame
    assert (frame["participant_id"], frame["role"]) == (participant_id, participant_id)


async def join_both(visit: VisitRefs) -> tuple[WebsocketCommunicator, WebsocketCommunicator]:
    """Practitioner first, then patient; both past their peer announcements."""
    doc, _ = await join(visit.practitioner, visit.id)
    pat, _ = await join(visit.patient_user, visit.id)
    assert await receive(doc) == {
        "kind": "peer-joined",
        "participant_id": "patient",
        "role": "patient",
        "name": visit.patient_user.display_name,
    }
    await expect_announced(pat, "practitioner")
    return doc, pat


async def eventually(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll a database condition until it holds (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await sync_to_async(condition)():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def send(comm: WebsocketCommunicator, frame: dict[str, Any]) -> None:
    await comm.send_to(text_data=json.dumps(frame))


async def close_all(*comms: WebsocketCommunicator) -> None:
    for comm in comms:
        await comm.disconnect()


# --- who may join -------------------------------------------------------------------------------------------------


async def test_anonymous_socket_is_closed_with_4401(visit: VisitRefs) -> None:
    comm = await open_socket(None, visit.id)
    assert await expect_close(comm, vp.CLOSE_NOT_AUTHENTICATED) == []


async def test_a_third_user_is_closed_with_4403(visit: VisitRefs, organization, location) -> None:  # type: ignore[no-untyped-def]
    other_doctor = await sync_to_async(UserFactory)(
        username="dr-other", roles=["practitioner"], organization=organization, locations=[location]
    )
    other_patient = await sync_to_async(UserFactory)(username="pt-other", roles=["patient"])
    for user in (other_doctor, other_patient):
        comm = await open_socket(user, visit.id)
        assert await expect_close(comm, vp.CLOSE_FORBIDDEN) == []


@pytest.mark.parametrize("visit_id", ["not-a-uuid", "1", str(uuid.uuid4())])
async def test_a_malformed_or_unknown_visit_id_is_closed_with_4403(visit: VisitRefs, visit_id: str) -> None:
    comm = await open_socket(visit.practitioner, visit_id)
    assert await expect_close(comm, vp.CLOSE_FORBIDDEN) == []


async def test_a_refused_socket_receives_nothing_of_the_visit(visit: VisitRefs, organization, location) -> None:  # type: ignore[no-untyped-def]
    await sync_to_async(visit_admit_now)(visit)
    doc, pat = await join_both(visit)
    intruder = await sync_to_async(UserFactory)(username="pt-intruder", roles=["patient"])
    comm = await open_socket(intruder, visit.id)
    await send(pat, {"kind": "signal", "type": "offer", "sdp": SDP_OFFER})
    assert (await receive(doc))["sdp"] == SDP_OFFER
    assert await expect_close(comm, vp.CLOSE_FORBIDDEN) == []
    await close_all(doc, pat)


async def test_welcome_names_the_role_participant_and_status(visit: VisitRefs) -> None:
    doc, welcome = await join(visit.practitioner, visit.id)
    assert welcome == {
        "kind": "welcome",
        "role": "practitioner",
        "participant_id": "practitioner",
        "status": "waiting",
        "mode": "direct",
        "name": visit.practitioner.display_name,
    }
    pat, welcome = await join(visit.patient_user, visit.id.upper())  # any spelling of the uuid joins the same visit
    assert welcome == {
        "kind": "welcome",
        "role": "patient",
        "participant_id": "patient",
        "status": "waiting",
        "mode": "direct",
        "name": visit.patient_user.display_name,
    }
    assert (await receive(doc))["kind"] == "peer-joined"
    await close_all(doc, pat)


# --- presence -----------------------------------------------------------------------------------------------------


async def test_peer_joined_peer_present_and_peer_left(visit: VisitRefs) -> None:
    pat, _ = await join(visit.patient_user, visit.id)
    assert await pat.receive_nothing(timeout=QUIET)  # alone: no peer-present
    doc, _ = await join(visit.practitioner, visit.id)
    await expect_announced(doc, "patient")
    assert await receive(pat) == {
        "kind": "peer-joined",
        "participant_id": "practitioner",
        "role": "practitioner",
        "name": visit.practitioner.display_name,
    }
    assert await doc.receive_nothing(timeout=QUIET)  # one announcement per peer, not two
    assert await pat.receive_nothing(timeout=QUIET)

    await doc.disconnect()
    assert await receive(pat) == {"kind": "peer-left", "participant_id": "practitioner"}
    await pat.disconnect()


async def test_patient_socket_marks_presence_on_connect_and_disconnect(visit: VisitRefs) -> None:
    assert not await sync_to_async(visit_patient_connected)(visit)
    pat, _ = await join(visit.patient_user, visit.id)
    assert await sync_to_async(visit_patient_connected)(visit)
    await pat.disconnect()
    assert not await sync_to_async(visit_patient_connected)(visit)


async def test_practitioner_socket_does_not_mark_patient_presence(visit: VisitRefs) -> None:
    doc, _ = await join(visit.practitioner, visit.id)
    assert not await sync_to_async(visit_patient_connected)(visit)
    await doc.disconnect()


async def test_a_newer_socket_replaces_the_older_one_without_a_ghost_peer_left(visit: VisitRefs) -> None:
    doc, pat = await join_both(visit)
    # The patient reloads while the old socket is still open (a network change): the new one takes over.
    pat2, _ = await join(visit.patient_user, visit.id)
    assert await expect_close(pat, vp.CLOSE_REPLACED) == []
    assert await receive(doc) == {
        "kind": "peer-joined",
        "participant_id": "patient",
        "role": "patient",
        "name": visit.patient_user.display_name,
    }
    await expect_announced(pat2, "practitioner")
    await pat.disconnect()
    assert await doc.receive_nothing(timeout=QUIET)  # no peer-left for the replaced socket
    assert await sync_to_async(visit_patient_connected)(visit)
    await close_all(doc, pat2)


async def test_an_older_socket_closing_late_does_not_unmark_the_patient(visit: VisitRefs) -> None:
    doc, pat = await join_both(visit)
    pat2, _ = await join(visit.patient_user, visit.id)
    # Whatever the order of the old socket's close and the replacement, the doctor sees the patient present.
    await pat.disconnect()
    assert await receive(doc) == {
        "kind": "peer-joined",
        "participant_id": "patient",
        "role": "patient",
        "name": visit.patient_user.display_name,
    }
    assert await doc.receive_nothing(timeout=QUIET)
    # If the old socket unmarked the patient on its way out, the new one marks them again when it hears of it.
    await eventually(lambda: visit_patient_connected(visit), "the patient shown connected again")
    await pat2.disconnect()
    assert await receive(doc) == {"kind": "peer-left", "participant_id": "patient"}
    await doc.disconnect()


# --- relaying -----------------------------------------------------------------------------------------------------


async def test_offer_answer_and_candidates_are_relayed_in_order_and_never_echoed(visit: VisitRefs) -> None:
    await sync_to_async(visit_admit_now)(visit)
    doc, pat = await join_both(visit)

    await send(doc, {"kind": "signal", "type": "offer", "sdp": SDP_OFFER, "seq": 0})
    for n in range(1, 11):
        await send(doc, {"kind": "signal", "type": "candidate", "candidate": candidate(n), "seq": n})
    await send(doc, {"kind": "signal", "type": "candidate", "candidate": None, "seq": 11})
    await send(pat, {"kind": "signal", "type": "answer", "sdp": SDP_ANSWER, "seq": 0})
    for n in range(1, 11):
        await send(pat, {"kind": "signal", "type": "candidate", "candidate": candidate(100 + n), "seq": n})

    at_patient = [await receive(pat) for _ in range(12)]
    assert at_patient[0] == {"kind": "signal", "type": "offer", "sdp": SDP_OFFER, "seq": 0, "from": "practitioner"}
    assert [f["seq"] for f in at_patient] == list(range(12))
    assert [f["candidate"] for f in at_patient[1:]] == [candidate(n) for n in range(1, 11)] + [None]
    assert {f["from"] for f in at_patient} == {"practitioner"}

    at_doctor = [await receive(doc) for _ in range(11)]
    assert at_doctor[0] == {"kind": "signal", "type": "answer", "sdp": SDP_ANSWER, "seq": 0, "from": "patient"}
    assert [f["seq"] for f in at_doctor] == list(range(11))
    assert [f["candidate"] for f in at_doctor[1:]] == [candidate(100 + n) for n in range(1, 11)]

    # Nothing came back to either sender.
    assert await doc.receive_nothing(timeout=QUIET)
    assert await pat.receive_nothing(timeout=QUIET)
    await close_all(doc, pat)


async def test_restart_and_media_frames_are_relayed(visit: VisitRefs) -> None:
    await sync_to_async(visit_admit_now)(visit)
    doc, pat = await join_both(visit)
    await send(pat, {"kind": "signal", "type": "restart"})
    assert await receive(doc) == {"kind": "signal", "type": "restart", "from": "patient"}
    await send(doc, {"kind": "media", "audio": False, "video": True, "screen": True})
    assert await receive(pat) == {
        "kind": "media",
        "audio": False,
        "video": True,
        "screen": True,
        "from": "practitioner",
    }
    assert await doc.receive_nothing(timeout=QUIET)
    await close_all(doc, pat)


async def test_signals_before_admit_get_not_admitted_and_the_socket_stays_open(visit: VisitRefs) -> None:
    doc, pat = await join_both(visit)
    await send(doc, {"kind": "signal", "type": "offer", "sdp": SDP_OFFER})
    error = await receive(doc)
    assert (error["kind"], error["code"]) == ("error", "not_admitted")
    assert await pat.receive_nothing(timeout=QUIET)
    # Media state and pings still work while waiting.
    await send(pat, {"kind": "media", "audio": True, "video": False, "screen": False})
    assert (await receive(doc))["kind"] == "media"
    await send(doc, {"kind": "ping"})
    assert await receive(doc) == {"kind": "pong"}
    await close_all(doc, pat)


async def test_admit_is_forwarded_as_visit_state_and_unlocks_signaling(visit: VisitRefs) -> None:
    doc, pat = await join_both(visit)
    await sync_to_async(visit_admit_now)(visit)
    for comm in (doc, pat):
        assert await receive(comm) == {"kind": "visit-state", "status": "in-progress"}
    await send(doc, {"kind": "signal", "type": "offer", "sdp": SDP_OFFER})
    assert (await receive(pat))["sdp"] == SDP_OFFER
    await close_all(doc, pat)


async def test_a_socket_joining_an_admitted_visit_may_signal_at_once(visit: VisitRefs) -> None:
    await sync_to_async(visit_admit_now)(visit)
    doc, welcome = await join(visit.practitioner, visit.id)
    assert welcome["status"] == "in-progress"
    pat, _ = await join(visit.patient_user, visit.id)
    await expect_announced(doc, "patient")
    await expect_announced(pat, "practitioner")
    await send(doc, {"kind": "signal", "type": "offer", "sdp": SDP_OFFER})
    assert (await receive(pat))["type"] == "offer"
    await close_all(doc, pat)


async def test_ending_the_visit_closes_both_sockets_with_4410(visit: VisitRefs) -> None:
    await sync_to_async(visit_admit_now)(visit)
    doc, pat = await join_both(visit)
    await sync_to_async(visit_end_now)(visit)
    for comm in (doc, pat):
        frames = await expect_close(comm, vp.CLOSE_VISIT_ENDED)
        assert frames == [{"kind": "visit-state", "status": "finished"}]


async def test_joining_a_finished_visit_is_closed_with_4410(visit: VisitRefs) -> None:
    await sync_to_async(visit_admit_now)(visit)
    await sync_to_async(visit_end_now)(visit)
    for user in (visit.practitioner, visit.patient_user):
        comm = await open_socket(user, visit.id)
        assert await expect_close(comm, vp.CLOSE_VISIT_ENDED) == []


# --- bad sockets --------------------------------------------------------------------------------------------------


OVERSIZED = json.dumps({"kind": "signal", "type": "offer", "sdp": "v=" + "x" * vp.MAX_FRAME_BYTES})


@pytest.mark.parametrize(
    ("frames", "close_code", "error_code"),
    [
        (["not json"], vp.CLOSE_MALFORMED, "malformed_json"),
        (['{"kind": "shout"}'], vp.CLOSE_MALFORMED, "unknown_kind"),
        (['{"kind": "signal", "type": "offer", "sdp": 5}'], vp.CLOSE_MALFORMED, "invalid_sdp"),
        (['{"kind": "signal", "type": "answer", "sdp": "v=0", "to": "x"}'], vp.CLOSE_MALFORMED, "unknown_field"),
        ([OVERSIZED], vp.CLOSE_TOO_LARGE, "frame_too_large"),
        (['{"kind": "ping"}'] * (vp.BURST + 30), vp.CLOSE_RATE_LIMITED, "rate_limited"),
    ],
    ids=["bad-json", "unknown-kind", "bad-sdp", "unknown-field", "oversized", "flood"],
)
async def test_a_bad_socket_is_closed_with_its_code_and_the_other_side_and_visit_are_unaffected(
    visit: VisitRefs, frames: list[str], close_code: int, error_code: str
) -> None:
    await sync_to_async(visit_admit_now)(visit)
    doc, pat = await join_both(visit)
    for text in frames:
        await pat.send_to(text_data=text)
    sent = await expect_close(pat, close_code)
    assert sent[-1]["kind"] == "error"
    assert sent[-1]["code"] == error_code
    if close_code == vp.CLOSE_RATE_LIMITED:
        assert [f for f in sent if f != {"kind": "pong"}] == [sent[-1]]
        assert len(sent) - 1 >= vp.BURST  # the whole burst was served before the limit bit
    await pat.disconnect()

    # The doctor sees the patient leave and nothing of the bad frames; the visit is still in progress.
    assert await receive(doc) == {"kind": "peer-left", "participant_id": "patient"}
    assert await doc.receive_nothing(timeout=QUIET)
    pat2, welcome = await join(visit.patient_user, visit.id)
    assert welcome["status"] == "in-progress"
    assert await receive(doc) == {
        "kind": "peer-joined",
        "participant_id": "patient",
        "role": "patient",
        "name": visit.patient_user.display_name,
    }
    await expect_announced(pat2, "practitioner")
    await send(doc, {"kind": "signal", "type": "offer", "sdp": SDP_OFFER})
    assert (await receive(pat2))["sdp"] == SDP_OFFER
    await close_all(doc, pat2)


async def test_binary_frames_close_with_4400(visit: VisitRefs) -> None:
    pat, _ = await join(visit.patient_user, visit.id)
    await pat.send_to(bytes_data=b"\x00\x01")
    assert (await expect_close(pat, vp.CLOSE_MALFORMED))[-1]["code"] == "binary_not_supported"


async def test_a_burst_of_ice_candidates_within_the_allowance_passes(visit: VisitRefs) -> None:
    await sync_to_async(visit_admit_now)(visit)
    doc, pat = await join_both(visit)
    burst = 100
    for n in range(burst):
        await send(doc, {"kind": "signal", "type": "candidate", "candidate": candidate(n % 250), "seq": n})
    got = [await receive(pat) for _ in range(burst)]
    assert [f["seq"] for f in got] == list(range(burst))
    await close_all(doc, pat)


async def test_ping_gets_pong(visit: VisitRefs) -> None:
    pat, _ = await join(visit.patient_user, visit.id)
    await send(pat, {"kind": "ping"})
    assert await receive(pat) == {"kind": "pong"}
    await pat.disconnect()


# --- logs ---------------------------------------------------------------------------------------------------------


async def test_no_sdp_candidate_or_name_reaches_the_logs(visit: VisitRefs, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await sync_to_async(visit_admit_now)(visit)
    doc, pat = await join_both(visit)
    await send(doc, {"kind": "signal", "type": "offer", "sdp": SDP_OFFER})
    await receive(pat)
    await send(pat, {"kind": "signal", "type": "candidate", "candidate": candidate(7)})
    await receive(doc)
    await pat.send_to(text_data=json.dumps({"kind": "signal", "type": "offer", "sdp": "bad " + SDP_ANSWER}))
    await expect_close(pat, vp.CLOSE_MALFORMED)
    await close_all(doc, pat)  # waits for both consumers to finish, log lines included

    text = "\n".join(r.getMessage() for r in caplog.records)
    assert visit.id in text  # ids are logged
    for secret in ("offer-secret-sdp", "answer-secret-sdp", "198.51.100.7", "typ host", visit.patient_name):
        assert secret not in text
