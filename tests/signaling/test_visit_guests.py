"""Guests on /ws/v1/visits/<uuid>/ (issue 7) through the real config.asgi router, the real Redis channel layer and
PostgreSQL: a guest's browser session (no sign-in) joins, everyone gets the roster, admitting the guest pushes
``visit-mode`` relay, relay-bound signal frames reach the ``telehealth.relay`` group (a plain channel-layer
receiver stands in for the relay process: it is our interface) only when allowed, the practitioner's control
frames mute and remove (4411), and no SDP reaches the logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from config.asgi import application
from signaling import visit_protocol as vp
from telehealth.channels import RELAY_GROUP, participant_inbox
from telehealth.services import guest_admit, invitation_create, visit_media_mode_set
from telehealth.services.relay import relay_token_verify
from tests.signaling.conftest import VisitRefs, session_headers, visit_admit_now

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

TIMEOUT = 5
SDP_OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=guest-secret-sdp\r\nt=0 0\r\n"
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 198.51.100.7 50007 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


# --- helpers ------------------------------------------------------------------------------------------------------


def make_guest(visit: VisitRefs, name: str = "Ana Interp", role: str = "interpreter") -> tuple[list[Any], str, str]:
    """A guest invited by the practitioner whose browser opened the link over HTTP: (socket headers with that
    browser's session cookie, participant id, invitation id)."""
    ref = invitation_create(actor=visit.practitioner, visit_id=visit.id, role=role, name=name)
    browser = Client()
    opened = browser.post(
        "/api/v1/telehealth/invitations/consume/", {"token": ref.token}, content_type="application/json"
    )
    assert opened.status_code == 200, opened.content
    cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()), (b"origin", b"http://testserver")]
    return headers, ref.participant_id, ref.id


async def connect(headers: list[Any], visit_id: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, f"/ws/v1/visits/{visit_id}/", headers=headers)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    return comm


async def user_socket(user: Any, visit_id: str) -> WebsocketCommunicator:
    return await connect(await sync_to_async(session_headers)(user), visit_id)


async def receive(comm: WebsocketCommunicator) -> dict[str, Any]:
    return json.loads(await comm.receive_from(timeout=TIMEOUT))


async def receive_until(comm: WebsocketCommunicator, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first frame that ``matches`` (rosters and peer frames may come in between); bounded by TIMEOUT."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while asyncio.get_running_loop().time() < deadline:
        frame = await receive(comm)
        if matches(frame):
            return frame
    raise AssertionError("no matching frame")


def kind(name: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("kind") == name and all(f.get(k) == v for k, v in fields.items())


async def expect_close(comm: WebsocketCommunicator, code: int) -> list[dict[str, Any]]:
    frames = []
    while True:
        out = await comm.receive_output(timeout=TIMEOUT)
        if out["type"] == "websocket.close":
            assert out.get("code") == code, (out, frames)
            await comm.disconnect(code=code, timeout=TIMEOUT)
            return frames
        frames.append(json.loads(out["text"]))


async def send(comm: WebsocketCommunicator, frame: dict[str, Any]) -> None:
    await comm.send_to(text_data=json.dumps(frame))


async def still_open(comm: WebsocketCommunicator) -> None:
    await send(comm, {"kind": "ping"})
    await receive_until(comm, kind("pong"))


class FakeRelay:
    """Stands in for the relay process on the channel layer: a channel in the ``telehealth.relay`` group."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel = ""

    async def __aenter__(self) -> FakeRelay:
        self.channel = await self.layer.new_channel(prefix="fake-relay.")
        await self.layer.group_add(RELAY_GROUP, self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.layer.group_discard(RELAY_GROUP, self.channel)

    async def receive(self, type_: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        async def first() -> dict[str, Any]:
            while True:
                message = await self.layer.receive(self.channel)
                if message["type"] == type_:
                    return message

        return await asyncio.wait_for(first(), timeout)

    async def nothing(self, quiet: float = 0.3) -> None:
        try:
            message = await asyncio.wait_for(self.layer.receive(self.channel), quiet)
        except TimeoutError:
            return
        raise AssertionError(f"the relay received {message['type']}")


# --- joining ------------------------------------------------------------------------------------------------------


async def test_a_guest_session_joins_without_sign_in_and_everyone_gets_the_roster(visit: VisitRefs) -> None:
    headers, pid, _ = await sync_to_async(make_guest)(visit)
    doc = await user_socket(visit.practitioner, visit.id)
    welcome = await receive(doc)
    assert (welcome["kind"], welcome["mode"]) == ("welcome", "direct")
    roster = await receive(doc)
    assert roster["kind"] == "roster"
    assert [(p["participant_id"], p["status"], p["connected"]) for p in roster["participants"]] == [
        ("practitioner", "admitted", True),
        ("patient", "waiting", False),
        (pid, "waiting", False),
    ]
    guest = await connect(headers, visit.id)
    assert await receive(guest) == {
        "kind": "welcome",
        "role": "interpreter",
        "participant_id": pid,
        "status": "waiting",
        "mode": "direct",
        "name": "Ana Interp",
    }
    joined = await receive_until(doc, kind("peer-joined"))
    assert (joined["participant_id"], joined["role"], joined["name"]) == (pid, "interpreter", "Ana Interp")
    roster = await receive_until(doc, kind("roster"))
    assert next(p for p in roster["participants"] if p["participant_id"] == pid)["connected"] is True
    # Exactly one of peer-present / peer-joined announces a peer (docs/signaling-protocol.md).
    present = await receive_until(guest, lambda f: f.get("kind") in ("peer-present", "peer-joined"))
    assert (present["participant_id"], present["name"]) == ("practitioner", visit.practitioner.display_name)
    await doc.disconnect()
    await guest.disconnect()


async def test_admitting_the_patient_updates_the_guests_roster(visit: VisitRefs) -> None:
    headers, _, _ = await sync_to_async(make_guest)(visit)
    guest = await connect(headers, visit.id)
    await receive_until(guest, kind("welcome"))
    await sync_to_async(visit_admit_now)(visit)
    assert await receive_until(guest, kind("visit-state")) == {"kind": "visit-state", "status": "in-progress"}
    roster = await receive_until(guest, kind("roster"))
    assert next(p for p in roster["participants"] if p["participant_id"] == "patient")["admitted"] is True
    await guest.disconnect()


async def test_no_guest_session_is_4401_and_a_guest_of_another_visit_is_4403(visit: VisitRefs) -> None:
    anonymous = await connect([(b"origin", b"http://testserver")], visit.id)
    assert await expect_close(anonymous, vp.CLOSE_NOT_AUTHENTICATED) == []
    headers, _, _ = await sync_to_async(make_guest)(visit)
    elsewhere = await connect(headers, "00000000-0000-4000-8000-000000000000")
    assert await expect_close(elsewhere, vp.CLOSE_FORBIDDEN) == []


# --- mode and relay-bound frames ----------------------------------------------------------------------------------


async def test_relay_frames_are_refused_before_admit_and_reach_the_relay_after(visit: VisitRefs) -> None:
    headers, pid, invitation_id = await sync_to_async(make_guest)(visit)
    await sync_to_async(visit_admit_now)(visit)
    async with FakeRelay() as relay:
        doc = await user_socket(visit.practitioner, visit.id)
        guest = await connect(headers, visit.id)
        offer = {"kind": "signal", "to": "relay", "pc": "pub", "type": "offer", "sdp": SDP_OFFER}
        # Not admitted yet: refused, socket open, nothing reaches the relay.
        await send(guest, offer)
        assert (await receive_until(guest, kind("error")))["code"] == "not_admitted"
        await still_open(guest)
        # The practitioner in direct mode: not allowed (the relay is not in use).
        await send(doc, offer)
        assert (await receive_until(doc, kind("error")))["code"] == "not_allowed"
        await relay.nothing()
        # Admit: every socket hears visit-mode relay, and the roster shows the guest admitted.
        await sync_to_async(guest_admit)(actor=visit.practitioner, visit_id=visit.id, participant_id=pid)
        assert await receive_until(doc, kind("visit-mode")) == {"kind": "visit-mode", "mode": "relay"}
        assert await receive_until(guest, kind("visit-mode")) == {"kind": "visit-mode", "mode": "relay"}
        roster = await receive_until(guest, kind("roster"))
        assert next(p for p in roster["participants"] if p["participant_id"] == pid)["admitted"] is True
        await send(guest, {**offer, "seq": 7})
        message = await relay.receive("relay.signal")
        assert message["frame"] == {"kind": "signal", "pc": "pub", "type": "offer", "sdp": SDP_OFFER, "seq": 7}
        assert (message["visit_id"], message["participant_id"], message["role"], message["name"]) == (
            visit.id,
            pid,
            "interpreter",
            "Ana Interp",
        )
        assert message["inbox"] == participant_inbox(visit.id, pid)
        assert relay_token_verify(token=message["token"]) == (visit.id, pid)
        await send(
            guest,
            {"kind": "signal", "to": "relay", "pc": "sub:practitioner", "type": "candidate", "candidate": CANDIDATE},
        )
        assert (await relay.receive("relay.signal"))["frame"]["candidate"] == CANDIDATE
        # Subscribing to one's own media is refused; the socket stays open.
        await send(guest, {"kind": "signal", "to": "relay", "pc": f"sub:{pid}", "type": "close"})
        assert (await receive_until(guest, kind("error")))["code"] == "not_allowed"
        await relay.nothing()
        # The relay's answer comes back through the guest's inbox, verbatim.
        answer = json.dumps({"kind": "signal", "from": "relay", "pc": "pub", "type": "answer", "sdp": "v=0\r\n"})
        await relay.layer.group_send(
            participant_inbox(visit.id, pid), {"type": "visit.relay", "sender": relay.channel, "text": answer}
        )
        assert await receive_until(guest, kind("signal")) == json.loads(answer)
        assert invitation_id
        await doc.disconnect()
        await guest.disconnect()


async def test_forcing_relay_pushes_visit_mode_to_a_1to1_visit(visit: VisitRefs) -> None:
    await sync_to_async(visit_admit_now)(visit)
    doc = await user_socket(visit.practitioner, visit.id)
    pat = await user_socket(visit.patient_user, visit.id)
    await sync_to_async(visit_media_mode_set)(actor=visit.practitioner, visit_id=visit.id)
    assert await receive_until(pat, kind("visit-mode")) == {"kind": "visit-mode", "mode": "relay"}
    async with FakeRelay() as relay:
        await send(pat, {"kind": "signal", "to": "relay", "pc": "sub:practitioner", "type": "offer", "sdp": SDP_OFFER})
        assert (await relay.receive("relay.signal"))["participant_id"] == "patient"
    reconnected = await user_socket(visit.patient_user, visit.id)
    assert (await receive(reconnected))["mode"] == "relay"
    await doc.disconnect()
    await pat.disconnect()
    await reconnected.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"kind": "signal", "to": "relay", "pc": "sub:nobody", "type": "close"}, "invalid_pc"),
        ({"kind": "signal", "to": "relay", "pc": "pub" + "x" * 80, "type": "close"}, "invalid_pc"),
        ({"kind": "signal", "to": "relay", "type": "close"}, "invalid_pc"),
        ({"kind": "signal", "to": "relay", "pc": "pub", "type": "answer", "sdp": SDP_OFFER}, "invalid_signal"),
        ({"kind": "signal", "to": "relay", "pc": "pub", "type": "offer", "sdp": "nope"}, "invalid_sdp"),
        ({"kind": "signal", "to": "relay", "pc": "pub", "type": "close", "extra": 1}, "unknown_field"),
        ({"kind": "signal", "to": "patient", "type": "offer", "sdp": SDP_OFFER}, "unknown_field"),
        ({"kind": "control", "action": "ban", "participant_id": "patient"}, "invalid_control"),
        ({"kind": "control", "action": "mute", "participant_id": "practitioner"}, "invalid_control"),
    ],
)
async def test_malformed_relay_and_control_frames_close_with_4400(
    visit: VisitRefs, frame: dict[str, Any], code: str
) -> None:
    await sync_to_async(visit_admit_now)(visit)
    doc = await user_socket(visit.practitioner, visit.id)
    await receive(doc)
    await send(doc, frame)
    frames = await expect_close(doc, vp.CLOSE_MALFORMED)
    assert frames[-1]["code"] == code


# --- guests are relay-only; control frames -----------------------------------------------------------------------


async def test_a_guest_may_not_send_direct_signals_or_control_frames(visit: VisitRefs) -> None:
    headers, pid, _ = await sync_to_async(make_guest)(visit)
    await sync_to_async(visit_admit_now)(visit)
    await sync_to_async(guest_admit)(actor=visit.practitioner, visit_id=visit.id, participant_id=pid)
    pat = await user_socket(visit.patient_user, visit.id)
    guest = await connect(headers, visit.id)
    await send(guest, {"kind": "signal", "type": "offer", "sdp": SDP_OFFER})
    assert (await receive_until(guest, kind("error")))["code"] == "not_allowed"
    await send(guest, {"kind": "control", "action": "mute", "participant_id": "patient"})
    assert (await receive_until(guest, kind("error")))["code"] == "not_allowed"
    await send(pat, {"kind": "control", "action": "remove", "participant_id": pid})
    assert (await receive_until(pat, kind("error")))["code"] == "not_allowed"
    await still_open(guest)
    await still_open(pat)
    # Nothing of the guest's direct offer reached the patient.
    await send(guest, {"kind": "media", "audio": False, "video": True, "screen": False})
    media = await receive_until(pat, lambda f: f.get("kind") in ("signal", "media"))
    assert (media["kind"], media["from"]) == ("media", pid)
    await pat.disconnect()
    await guest.disconnect()


async def test_the_practitioner_mutes_then_removes_a_guest_who_is_closed_with_4411(visit: VisitRefs) -> None:
    headers, pid, _ = await sync_to_async(make_guest)(visit)
    await sync_to_async(visit_admit_now)(visit)
    await sync_to_async(guest_admit)(actor=visit.practitioner, visit_id=visit.id, participant_id=pid)
    async with FakeRelay() as relay:
        doc = await user_socket(visit.practitioner, visit.id)
        guest = await connect(headers, visit.id)
        await receive_until(doc, kind("peer-joined", participant_id=pid))
        await send(doc, {"kind": "control", "action": "mute", "participant_id": pid})
        assert await receive_until(guest, kind("muted")) == {
            "kind": "muted",
            "participant_id": pid,
            "by": "practitioner",
            "audio": False,
        }
        muted = await relay.receive("relay.participant_mute")
        assert (muted["visit_id"], muted["participant_id"], muted["audio"]) == (visit.id, pid, False)
        roster = await receive_until(
            doc,
            lambda f: (
                f.get("kind") == "roster" and any(p["participant_id"] == pid and p["muted"] for p in f["participants"])
            ),
        )
        assert roster
        await send(doc, {"kind": "control", "action": "remove", "participant_id": pid})
        frames = await expect_close(guest, vp.CLOSE_REMOVED)
        assert frames[-1]["code"] == "removed"
        removed = await relay.receive("relay.participant_remove")
        assert (removed["visit_id"], removed["participant_id"]) == (visit.id, pid)
        left = await receive_until(doc, kind("peer-left"))
        assert left["participant_id"] == pid
        # The removed guest's browser cannot come back.
        again = await connect(headers, visit.id)
        assert await expect_close(again, vp.CLOSE_REMOVED) == []
        # Removing the patient is refused with a typed error; the practitioner's socket stays open.
        await send(doc, {"kind": "control", "action": "remove", "participant_id": "patient"})
        assert (await receive_until(doc, kind("error")))["code"] == "not_allowed"
        await still_open(doc)
        await doc.disconnect()


async def test_ending_the_visit_tells_the_relay(visit: VisitRefs) -> None:
    from tests.signaling.conftest import visit_end_now

    await sync_to_async(visit_admit_now)(visit)
    async with FakeRelay() as relay:
        await sync_to_async(visit_end_now)(visit)
        assert (await relay.receive("relay.visit_end"))["visit_id"] == visit.id


async def test_no_sdp_candidate_or_guest_name_reaches_the_logs(
    visit: VisitRefs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers, pid, _ = await sync_to_async(make_guest)(visit, name="Secretguest Name")
    await sync_to_async(visit_admit_now)(visit)
    await sync_to_async(guest_admit)(actor=visit.practitioner, visit_id=visit.id, participant_id=pid)
    async with FakeRelay() as relay:
        guest = await connect(headers, visit.id)
        await send(guest, {"kind": "signal", "to": "relay", "pc": "pub", "type": "offer", "sdp": SDP_OFFER})
        await relay.receive("relay.signal")
        await send(guest, {"kind": "signal", "to": "relay", "pc": "pub", "type": "candidate", "candidate": CANDIDATE})
        await relay.receive("relay.signal")
        await send(guest, {"kind": "signal", "to": "relay", "pc": "sub:nobody", "type": "offer", "sdp": SDP_OFFER})
        await expect_close(guest, vp.CLOSE_MALFORMED)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert pid in text  # ids are logged
    for secret in ("guest-secret-sdp", "198.51.100.7", "Secretguest", visit.patient_name):
        assert secret not in text
