"""The relay as its own process (``manage.py relay``) and through coturn."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiortc import RTCIceServer

from signaling.relay.server import RelayServer, relay_ice_servers
from signaling.relay.session import Limits
from tests.signaling.relay.clients import Browser, Received, SyntheticVideoTrack, wait_for
from tests.support.servers import Relay, Turn


async def _with_retry(attempt, *, deadline_s: float = 40) -> dict[str, Received] | None:  # type: ignore[no-untyped-def]
    """What a browser does when the relay does not answer: re-offer with backoff (1, 2, 4 … 8 s)."""
    delay, deadline = 1.0, time.monotonic() + deadline_s
    while True:
        try:
            return await attempt()
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8)


@pytest.mark.django_db
async def test_relay_process_killed_mid_stream_then_clients_reoffer_and_media_flows(tmp_path: Path) -> None:
    visit_id = str(uuid.uuid4())
    relay = await asyncio.to_thread(Relay, tmp_path)
    try:
        async with (
            Browser(visit_id, "practitioner", answer_timeout=5) as doctor,
            Browser(visit_id, "patient", answer_timeout=5) as patient,
        ):
            await doctor.publish(video=SyntheticVideoTrack())
            got = await patient.subscribe("practitioner")
            await wait_for(lambda: got["video"].decoded >= 10, timeout=30, what="frames through the relay process")

            await asyncio.to_thread(relay.kill)
            assert not relay.alive()
            frozen = got["video"].frames
            restart = asyncio.ensure_future(asyncio.to_thread(relay.restart))
            # Meanwhile both browsers re-offer; offers sent while no relay listens are lost, so they retry.
            video = SyntheticVideoTrack()
            await _with_retry(lambda: _publish(doctor, video))
            again = await _with_retry(lambda: patient.subscribe("practitioner"))
            await restart
            assert again is not None
            await wait_for(lambda: again["video"].decoded >= 10, timeout=30, what="frames after the restart")
            assert got["video"].frames == frozen, "the old subscription stayed dead: the new one carries the media"
            assert again["video"].keyframes[0]
    finally:
        relay.stop()
    assert "Traceback" not in relay.log()


async def _publish(browser: Browser, video: SyntheticVideoTrack) -> None:
    browser.frames.clear()
    await browser.publish(video=video)


@pytest.fixture
async def turn_relay(tmp_path: Path, settings) -> AsyncIterator[tuple[RelayServer, Turn]]:  # type: ignore[no-untyped-def]
    turn = await asyncio.to_thread(Turn, tmp_path, secrets.token_hex(16))
    env = turn.django_env()
    settings.TURN_URLS = env["TURN_URLS"].split(",")
    settings.STUN_URLS = [env["STUN_URLS"]]
    settings.TURN_SECRET = env["TURN_SECRET"]
    server = RelayServer(limits=Limits())
    await server.start()
    yield server, turn
    await server.stop()
    turn.stop()


async def test_media_through_coturn_when_clients_may_only_relay(turn_relay: tuple[RelayServer, Turn]) -> None:
    _server, turn = turn_relay
    visit_id = str(uuid.uuid4())
    relay_config = relay_ice_servers()
    assert [s.urls[0].split(":")[0] for s in relay_config] == ["stun", "turn"]  # the relay's own config, explicit
    ice = [s for s in relay_ice_servers() if s.username]  # TURN REST credentials from the same secret
    clients = [RTCIceServer(urls=[s.urls[0]], username=s.username, credential=s.credential) for s in ice]
    async with (
        Browser(visit_id, "practitioner", ice_servers=clients, relay_only=True) as doctor,
        Browser(visit_id, "patient", ice_servers=clients, relay_only=True) as patient,
    ):
        await doctor.publish(video=SyntheticVideoTrack())
        got = await patient.subscribe("practitioner")
        await wait_for(lambda: got["video"].decoded >= 10, timeout=40, what="frames through coturn")
        pc = patient.pcs["sub:practitioner"]
        transport = pc.getTransceivers()[0].receiver.transport.transport
        pair = transport._connection._nominated.get(1)  # aioice: the selected pair of component 1
        assert pair is not None
        assert pair.local_candidate.type == "relay"
    assert "Traceback" not in turn.log()
