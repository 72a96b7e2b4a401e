"""Refusals, mute, remove, visit end, limits and the transcoding fallback."""

from __future__ import annotations

import uuid

import pytest

from signaling.relay.server import RelayServer
from tests.signaling.relay.clients import Browser, SyntheticVideoTrack, wait_for

GUEST = "guest-" + "c" * 32


async def _error(browser: Browser, pc: str | None) -> dict[str, object]:
    frame = await browser.wait_frame(pc, timeout=10)
    assert frame["kind"] == "relay-error", frame
    return frame


async def test_bad_messages_get_relay_errors_and_create_nothing(relay: RelayServer, visit_id: str) -> None:
    async with Browser(visit_id, "patient") as patient, Browser(visit_id, GUEST) as guest:
        # A real offer to reuse in bad messages.
        from aiortc import RTCPeerConnection

        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        await pc.close()

        def signal(pc_id: str, sdp: str = offer) -> dict[str, str]:
            return {"kind": "signal", "pc": pc_id, "type": "offer", "sdp": sdp}

        # A token for another participant, a garbage token, and no token.
        other = guest.message(signal("pub"))["token"]
        await patient.send(signal("pub"), token=other)
        assert (await _error(patient, "pub"))["code"] == "not_allowed"
        await patient.send(signal("pub"), token="garbage")
        assert (await _error(patient, "pub"))["code"] == "not_allowed"
        # Unknown pc ids / participants, a subscription to oneself.
        await patient.send(signal("sub:nobody"))
        assert (await _error(patient, "sub:nobody"))["code"] == "unknown_participant"
        await patient.send(signal("pub2"))
        assert (await _error(patient, "pub2"))["code"] == "unknown_participant"
        await patient.send(signal("sub:patient"))
        assert (await _error(patient, "sub:patient"))["code"] == "not_allowed"
        # Bad SDP: garbage, oversized, no media, a subscription offer that sends.
        await patient.send(signal("pub", "v=0\r\nthis is not sdp\r\n"))
        assert (await _error(patient, "pub"))["code"] == "bad_sdp"
        await patient.send(signal("pub", "v=0\r\n" + "a=x\r\n" * 5000))
        assert (await _error(patient, "pub"))["code"] == "bad_sdp"
        await patient.send(signal("pub", "not sdp"))
        assert (await _error(patient, "pub"))["code"] == "bad_sdp"
        await patient.send(signal("sub:practitioner"))
        assert (await _error(patient, "sub:practitioner"))["code"] == "bad_sdp"
        await patient.send({"kind": "signal", "pc": "pub", "type": "answer", "sdp": offer})
        assert (await _error(patient, "pub"))["code"] == "bad_sdp"
        assert relay.relay.visits == {}, "nothing was created"
        # Candidates for a pc that does not exist are dropped without a word; nothing is created either.
        await patient.send({"kind": "signal", "pc": "pub", "type": "candidate", "candidate": None})
        await patient.send(signal("pub"))
        answer = await patient.wait_frame("pub")
        assert answer["kind"] == "signal"
        assert answer["type"] == "answer"
        assert patient.frames == []


async def test_limits_refuse_with_overloaded(relay: RelayServer) -> None:
    # The fixture's relay takes 3 visits of up to 4 participants.
    visits = [str(uuid.uuid4()) for _ in range(4)]
    browsers = [Browser(v, "patient") for v in visits]
    for b in browsers:
        await b.__aenter__()
    try:
        for b in browsers[:3]:
            await b.publish(video=SyntheticVideoTrack(), audio=False)
        with pytest.raises(AssertionError, match="overloaded"):
            await browsers[3].publish(video=SyntheticVideoTrack(), audio=False)
        visit = visits[0]
        others = ("practitioner", "guest-" + "1" * 32, "guest-" + "2" * 32, "guest-" + "3" * 32)
        subs = [Browser(visit, pid) for pid in others]
        for b in subs:
            await b.__aenter__()
        for b in subs[:3]:
            await b.subscribe("patient")
        with pytest.raises(AssertionError, match="overloaded"):
            await subs[3].subscribe("patient")  # a fifth participant
        assert len(relay.relay.visits[visit].participants) == 4
        for b in subs:
            await b.close()
    finally:
        for b in browsers:
            await b.close()


async def test_mute_stops_audio_forwarding_and_unmute_resumes(relay: RelayServer, visit_id: str) -> None:
    async with Browser(visit_id, "patient") as patient, Browser(visit_id, "practitioner") as doctor:
        await patient.publish(video=SyntheticVideoTrack())
        got = await doctor.subscribe("patient")
        await wait_for(lambda: got["audio"].frames >= 20, timeout=20, what="the patient's audio at the doctor")
        await relay.layer.group_send(
            "telehealth.relay",
            {"type": "relay.participant_mute", "visit_id": visit_id, "participant_id": "patient", "audio": False},
        )
        source = relay.relay.visits[visit_id].sources[("patient", "audio")]
        await wait_for(lambda: not source.enabled, timeout=5, what="the mute at the relay")
        muted_at = got["audio"].frames
        video_at = got["video"].frames
        # Video keeps flowing while audio does not: watch for 30 more video frames (about a second).
        await wait_for(lambda: got["video"].frames >= video_at + 30, timeout=20, what="video while muted")
        assert got["audio"].frames <= muted_at + 3  # at most what was already in flight
        await relay.layer.group_send(
            "telehealth.relay",
            {"type": "relay.participant_mute", "visit_id": visit_id, "participant_id": "patient", "audio": True},
        )
        await wait_for(lambda: got["audio"].frames >= muted_at + 20, timeout=20, what="audio after unmute")


async def test_remove_closes_the_participants_pcs_and_stops_its_media(relay: RelayServer, visit_id: str) -> None:
    async with (
        Browser(visit_id, "practitioner") as doctor,
        Browser(visit_id, "patient") as patient,
        Browser(visit_id, GUEST) as guest,
    ):
        await guest.publish(video=SyntheticVideoTrack())
        await patient.publish(video=SyntheticVideoTrack())
        from_guest = await doctor.subscribe(GUEST)
        from_patient = await doctor.subscribe("patient")
        await guest.subscribe("patient")
        await wait_for(
            lambda: from_guest["video"].decoded >= 5 and from_patient["video"].decoded >= 5,
            timeout=20,
            what="the doctor receiving both",
        )
        await relay.layer.group_send(
            "telehealth.relay", {"type": "relay.participant_remove", "visit_id": visit_id, "participant_id": GUEST}
        )
        await wait_for(
            lambda: (
                guest.pcs["pub"].connectionState == "closed" and doctor.pcs[f"sub:{GUEST}"].connectionState == "closed"
            ),
            timeout=10,
            what="the guest's pcs and the doctor's sub of the guest closed by the relay",
        )
        visit = relay.relay.visits[visit_id]
        assert GUEST not in visit.participants
        assert (GUEST, "video") not in visit.sources
        stopped_at = from_guest["video"].frames
        patient_at = from_patient["video"].frames
        await wait_for(lambda: from_patient["video"].frames >= patient_at + 30, timeout=20, what="the patient still")
        assert from_guest["video"].frames == stopped_at
        # A removed participant cannot come back in this visit, nor be subscribed to.
        await guest.send({"kind": "signal", "pc": "pub", "type": "offer", "sdp": guest.pcs["pub"].localDescription.sdp})
        assert (await _error(guest, "pub"))["code"] == "not_allowed"
        with pytest.raises(AssertionError, match="not_allowed"):
            await doctor.subscribe(GUEST)


async def test_visit_end_closes_everything(relay: RelayServer, visit_id: str) -> None:
    async with Browser(visit_id, "practitioner") as doctor, Browser(visit_id, "patient") as patient:
        await patient.publish(video=SyntheticVideoTrack())
        await doctor.subscribe("patient")
        await relay.layer.group_send("telehealth.relay", {"type": "relay.visit_end", "visit_id": visit_id})
        await wait_for(lambda: visit_id not in relay.relay.visits, timeout=5, what="the visit gone from the relay")
        await wait_for(lambda: patient.pcs["pub"].connectionState == "closed", timeout=10, what="pub closed")
        await patient.send(
            {"kind": "signal", "pc": "pub", "type": "offer", "sdp": patient.pcs["pub"].localDescription.sdp}
        )
        assert (await _error(patient, "pub"))["code"] == "not_allowed"


async def test_h264_only_subscriber_is_transcoded_and_reported(relay: RelayServer, visit_id: str) -> None:
    async with Browser(visit_id, "practitioner") as doctor, Browser(visit_id, "patient") as patient:
        await doctor.publish(video=SyntheticVideoTrack())
        vp8 = await Browser.subscribe(patient, "practitioner")
        async with Browser(visit_id, GUEST) as guest:
            h264 = await guest.subscribe("practitioner", video_codecs=("video/H264",))
            await wait_for(
                lambda: h264["video"].decoded >= 10 and vp8["video"].decoded >= 10,
                timeout=30,
                what="decoded frames at the H.264-only guest and the VP8 patient",
            )
            assert h264["video"].codec == "H264"
            assert vp8["video"].codec == "VP8"
            report = relay.relay.participant_report(visit_id, GUEST)
            assert report is not None
            video = next(t for t in report["tracks"] if t["kind"] == "video")
            assert video["mode"] == "transcode"
            assert video["codec"] == "H264"
            assert video["source_codec"] == "VP8"
            assert video["encoded_frames"] >= 10
            audio = next(t for t in report["tracks"] if t["kind"] == "audio")
            assert audio["mode"] == "forward"
            assert audio["encoded_frames"] == 0
            # The shape telehealth stores (visit_relay_report validates it before writing; nothing of ours mocked).
            from telehealth.services.guests import relay_report_validate

            stored = relay_report_validate({**report, "connection": "connected"})
            assert [t["mode"] for t in stored["tracks"] if t["kind"] == "video"] == ["transcode"]
            forwarded = relay.relay.participant_report(visit_id, "patient")
            assert forwarded is not None
            assert [t["mode"] for t in forwarded["tracks"]] == ["forward", "forward"]


async def test_a_participant_leaving_does_not_disturb_the_others(relay: RelayServer, visit_id: str) -> None:
    async with Browser(visit_id, "practitioner") as doctor, Browser(visit_id, "patient") as patient:
        guest = Browser(visit_id, GUEST)
        await guest.__aenter__()
        await patient.publish(video=SyntheticVideoTrack())
        await guest.publish(video=SyntheticVideoTrack())
        from_patient = await doctor.subscribe("patient")
        await doctor.subscribe(GUEST)
        await guest.subscribe("patient")
        await wait_for(lambda: from_patient["video"].decoded >= 5, timeout=20, what="the doctor receiving the patient")
        await guest.close()  # the guest's tab goes away: its peer connections close
        visit = relay.relay.visits[visit_id]
        # Usually at once (the guest's DTLS close reaches the relay); if that datagram is lost, when ICE consent
        # expires (aioice: six missed checks 5 s apart), hence the long bound.
        await wait_for(
            lambda: GUEST not in visit.participants, timeout=45, what="the relay dropping the guest's connections"
        )
        at = from_patient["video"].decoded
        await wait_for(lambda: from_patient["video"].decoded >= at + 30, timeout=20, what="the patient's video still")
        assert doctor.pcs["sub:patient"].connectionState == "connected"
        assert doctor.pcs[f"sub:{GUEST}"].connectionState == "connected"  # waits for the guest to publish again
