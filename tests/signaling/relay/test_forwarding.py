"""Forwarding through the relay: bytes in = bytes out, no encoder, key frames first, fan-out."""

from __future__ import annotations

import asyncio
import hashlib

from signaling.relay import hooks
from signaling.relay.server import RelayServer
from tests.signaling.relay.clients import Browser, SyntheticVideoTrack, wait_for


def test_hooks_match_installed_aiortc() -> None:
    hooks.check_compatible()  # fails on an aiortc upgrade that renames what the hooks reach into


async def test_forwarded_video_is_byte_identical_and_never_encoded(relay: RelayServer, visit_id: str) -> None:
    async with Browser(visit_id, "practitioner") as doctor, Browser(visit_id, "patient") as patient:
        await doctor.publish(video=SyntheticVideoTrack(640, 480))
        source = relay.relay.visits[visit_id].sources[("practitioner", "video")]
        at_relay: list[str] = []

        source.listeners.append(lambda data, ts, key: at_relay.append(hashlib.sha256(data).hexdigest()))
        got = await patient.subscribe("practitioner")
        await wait_for(lambda: got["video"].decoded >= 30, timeout=30, what="30 decoded frames at the patient")

        video = got["video"]
        assert video.keyframes[0], "the first forwarded frame is a key frame"
        position = at_relay.index(video.hashes[0])
        assert video.hashes == at_relay[position : position + len(video.hashes)], "frames altered, lost or reordered"
        track = relay.relay.visits[visit_id].participants["patient"].peers["sub:practitioner"].tracks[1]
        assert track.kind == "video"
        assert track.mode == "forward"
        assert track.encoder is not None
        assert track.encoder.encoded == 0
        assert track.encoder.packed >= 30
        assert track.encoder.inner.codec is None, "the VP8 encoder context was never even created"


async def test_new_subscriber_gets_pli_upstream_and_a_key_frame_first(relay: RelayServer, visit_id: str) -> None:
    async with Browser(visit_id, "practitioner") as doctor, Browser(visit_id, "patient") as patient:
        await doctor.publish(video=SyntheticVideoTrack())
        first = await patient.subscribe("practitioner")
        await wait_for(lambda: first["video"].decoded >= 5, timeout=20, what="the first viewer's frames")
        # aiortc's encoder makes key frames only on request: a second viewer joining mid-stream needs a PLI.
        before = doctor.keyframe_requests
        async with Browser(visit_id, "guest-" + "a" * 32) as guest:
            second = await guest.subscribe("practitioner")
            await wait_for(lambda: second["video"].decoded >= 5, timeout=20, what="the second viewer's frames")
            assert doctor.keyframe_requests > before, "the new viewer's key frame request reached the publisher"
            assert second["video"].keyframes[0], "the second viewer's first frame is a key frame"
            assert sum(second["video"].keyframes) < len(second["video"].keyframes), "then delta frames follow"
            # One publisher, two subscribers: the second viewer's frames are frames the first one got too.
            await wait_for(
                lambda: second["video"].hashes[-1] in first["video"].hashes, timeout=5, what="the first viewer"
            )
            assert set(second["video"].hashes) <= set(first["video"].hashes)


async def test_viewer_pli_reaches_the_publisher(relay: RelayServer, visit_id: str) -> None:
    async with Browser(visit_id, "practitioner") as doctor, Browser(visit_id, "patient") as patient:
        await doctor.publish(video=SyntheticVideoTrack())
        got = await patient.subscribe("practitioner")
        await wait_for(lambda: got["video"].decoded >= 5, timeout=20, what="frames at the patient")
        keyframes = sum(got["video"].keyframes)
        before = doctor.keyframe_requests
        await patient.request_keyframe("practitioner")
        await wait_for(lambda: doctor.keyframe_requests > before, timeout=5, what="the PLI at the publisher")
        await wait_for(lambda: sum(got["video"].keyframes) > keyframes, timeout=5, what="a new key frame")


async def test_three_party_fan_out(relay: RelayServer, visit_id: str) -> None:
    ids = ["practitioner", "patient", "guest-" + "b" * 32]
    browsers = [Browser(visit_id, pid) for pid in ids]
    for browser in browsers:
        await browser.__aenter__()
    try:
        await asyncio.gather(*(b.publish(video=SyntheticVideoTrack()) for b in browsers))
        subs = await asyncio.gather(
            *(b.subscribe(other) for b in browsers for other in ids if other != b.participant_id)
        )
        await wait_for(
            lambda: all(s["video"].decoded >= 10 and s["audio"].frames >= 10 for s in subs),
            timeout=40,
            what="each of three participants decoding both others",
        )
        tracks = [
            t
            for v in relay.relay.visits.values()
            for p in v.participants.values()
            for peer in p.peers.values()
            for t in peer.tracks
        ]
        assert len(tracks) == 12
        assert all(t.mode == "forward" and t.encoder and t.encoder.encoded == 0 for t in tracks)
    finally:
        for browser in browsers:
            await browser.close()
