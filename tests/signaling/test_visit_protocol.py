"""signaling.visit_protocol: pure validation of the visit signaling frames, limits and the token bucket."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signaling import visit_protocol as vp

SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "abcd",
}


def bad_candidate(**changes: Any) -> dict[str, Any]:
    return {"kind": "signal", "type": "candidate", "candidate": {**CANDIDATE, **changes}}


def parse(frame: Any) -> vp.ClientFrame:
    return vp.parse_client_frame(json.dumps(frame), None)


def rejected(frame: Any) -> vp.FrameRejected:
    text = frame if isinstance(frame, str) else json.dumps(frame)
    with pytest.raises(vp.FrameRejected) as info:
        vp.parse_client_frame(text, None)
    return info.value


def test_offer_and_answer_are_relayed_as_validated() -> None:
    for kind in ("offer", "answer"):
        frame = parse({"kind": "signal", "type": kind, "sdp": SDP})
        assert (frame.kind, frame.signal_type) == ("signal", kind)
        assert frame.relay == {"kind": "signal", "type": kind, "sdp": SDP}


def test_candidate_keeps_its_four_fields_and_null_means_end_of_candidates() -> None:
    frame = parse({"kind": "signal", "type": "candidate", "candidate": CANDIDATE})
    assert frame.relay == {"kind": "signal", "type": "candidate", "candidate": CANDIDATE}
    no_ufrag = {k: v for k, v in CANDIDATE.items() if k != "usernameFragment"}
    assert parse({"kind": "signal", "type": "candidate", "candidate": no_ufrag}).relay == {
        "kind": "signal",
        "type": "candidate",
        "candidate": no_ufrag,
    }
    end = parse({"kind": "signal", "type": "candidate", "candidate": None})
    assert end.relay == {"kind": "signal", "type": "candidate", "candidate": None}
    # An empty candidate string (end of a generation) may come without sdpMid/sdpMLineIndex.
    empty = {"candidate": "", "sdpMid": None, "sdpMLineIndex": None}
    assert parse({"kind": "signal", "type": "candidate", "candidate": empty}).relay is not None


def test_restart_media_and_ping_frames() -> None:
    assert parse({"kind": "signal", "type": "restart"}).relay == {"kind": "signal", "type": "restart"}
    media = parse({"kind": "media", "audio": True, "video": False, "screen": False})
    assert (media.kind, media.relay) == ("media", {"kind": "media", "audio": True, "video": False, "screen": False})
    ping = parse({"kind": "ping"})
    assert (ping.kind, ping.relay) == ("ping", None)


def test_optional_seq_is_relayed_unchanged() -> None:
    frame = parse({"kind": "signal", "type": "offer", "sdp": SDP, "seq": 7})
    assert frame.relay is not None
    assert frame.relay["seq"] == 7
    assert parse({"kind": "media", "audio": True, "video": True, "screen": False, "seq": 0}).relay == {
        "kind": "media",
        "audio": True,
        "video": True,
        "screen": False,
        "seq": 0,
    }


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "malformed_json"),
        ('{"kind": "ping", "x": NaN}', "malformed_json"),
        ("[1, 2]", "invalid_frame"),
        ({"kind": 3}, "invalid_frame"),
        ({"kind": "subscribe"}, "unknown_kind"),
        ({"kind": "ping", "extra": 1}, "unknown_field"),
        ({"kind": "signal", "type": "bye"}, "invalid_signal"),
        ({"kind": "signal"}, "invalid_signal"),
        ({"kind": "signal", "type": "offer"}, "invalid_sdp"),
        ({"kind": "signal", "type": "offer", "sdp": 12}, "invalid_sdp"),
        ({"kind": "signal", "type": "answer", "sdp": "hello"}, "invalid_sdp"),
        ({"kind": "signal", "type": "offer", "sdp": SDP, "to": "patient"}, "unknown_field"),
        ({"kind": "signal", "type": "candidate"}, "invalid_candidate"),
        ({"kind": "signal", "type": "candidate", "candidate": "a=candidate"}, "invalid_candidate"),
        (bad_candidate(extra=1), "invalid_candidate"),
        (bad_candidate(candidate=5), "invalid_candidate"),
        (bad_candidate(sdpMLineIndex=True), "invalid_candidate"),
        (bad_candidate(sdpMLineIndex=-1), "invalid_candidate"),
        (bad_candidate(sdpMid="x" * 65), "invalid_candidate"),
        (
            bad_candidate(candidate="c" * 1025),
            "invalid_candidate",
        ),
        (
            bad_candidate(sdpMid=None, sdpMLineIndex=None),
            "invalid_candidate",
        ),
        ({"kind": "signal", "type": "restart", "sdp": SDP}, "unknown_field"),
        ({"kind": "media", "audio": True, "video": True}, "invalid_media"),
        ({"kind": "media", "audio": 1, "video": True, "screen": False}, "invalid_media"),
        ({"kind": "signal", "type": "restart", "seq": -1}, "invalid_seq"),
        ({"kind": "signal", "type": "restart", "seq": "1"}, "invalid_seq"),
        ({"kind": "signal", "type": "restart", "seq": 2**53}, "invalid_seq"),
    ],
)
def test_malformed_frames_close_with_4400_and_a_code(frame: Any, code: str) -> None:
    err = rejected(frame)
    assert (err.close_code, err.code) == (vp.CLOSE_MALFORMED, code)
    assert err.frame() == {"kind": "error", "code": code, "detail": err.detail}


def test_binary_frames_are_malformed() -> None:
    with pytest.raises(vp.FrameRejected) as info:
        vp.parse_client_frame(None, b"\x00\x01")
    assert (info.value.close_code, info.value.code) == (vp.CLOSE_MALFORMED, "binary_not_supported")


def test_a_frame_over_16_kib_closes_with_4413_and_one_at_the_limit_is_accepted() -> None:
    head = json.dumps({"kind": "signal", "type": "offer", "sdp": "v="})
    at_limit = head[:-2] + "x" * (vp.MAX_FRAME_BYTES - len(head)) + head[-2:]
    assert len(at_limit.encode()) == vp.MAX_FRAME_BYTES
    assert parse(json.loads(at_limit)).signal_type == "offer"

    over = head[:-2] + "x" * (vp.MAX_FRAME_BYTES - len(head) + 1) + head[-2:]
    assert rejected(over).close_code == vp.CLOSE_TOO_LARGE
    # Counted in bytes, not characters: 6000 three-byte characters are 18 000 bytes.
    multibyte = json.dumps({"kind": "signal", "type": "offer", "sdp": "v=" + "€" * 6000}, ensure_ascii=False)
    assert len(multibyte) < vp.MAX_FRAME_BYTES < len(multibyte.encode())
    assert rejected(multibyte).code == "frame_too_large"
    with pytest.raises(vp.FrameRejected) as info:
        vp.parse_client_frame(None, b"x" * (vp.MAX_FRAME_BYTES + 1))
    assert info.value.close_code == vp.CLOSE_TOO_LARGE


def test_token_bucket_allows_the_burst_then_the_steady_rate() -> None:
    bucket = vp.TokenBucket(rate=60, burst=120)
    assert all(bucket.allow(now=100.0) for _ in range(120))
    assert not bucket.allow(now=100.0)
    # Half a second later 30 tokens have come back, and no more.
    assert sum(bucket.allow(now=100.5) for _ in range(40)) == 30
    # A client sending exactly at the rate is never refused.
    t = 200.0
    steady = vp.TokenBucket(rate=60, burst=120)
    for _ in range(600):
        assert steady.allow(now=t)
        t += 1 / 60


def test_token_bucket_refills_no_further_than_the_burst() -> None:
    bucket = vp.TokenBucket(rate=60, burst=10)
    assert bucket.allow(now=0.0)
    assert sum(bucket.allow(now=3600.0) for _ in range(20)) == 10


def test_close_codes_are_documented_and_distinct() -> None:
    assert set(vp.CLOSE_CODES) == {4400, 4401, 4403, 4409, 4410, 4411, 4413, 4429}
    assert (vp.CLOSE_MALFORMED, vp.CLOSE_TOO_LARGE, vp.CLOSE_RATE_LIMITED, vp.CLOSE_VISIT_ENDED) == (
        4400,
        4413,
        4429,
        4410,
    )


def test_visit_ids_must_be_uuids_and_are_canonicalised() -> None:
    assert vp.canonical_visit_id("7F3C0E4A-1B2C-4D5E-8F90-0123456789AB") == "7f3c0e4a-1b2c-4d5e-8f90-0123456789ab"
    assert vp.canonical_visit_id("not-a-uuid") is None
    assert vp.canonical_visit_id("1") is None


def test_signals_are_allowed_only_in_progress() -> None:
    assert vp.signal_allowed("in-progress")
    assert not any(vp.signal_allowed(s) for s in ("waiting", "left", "finished"))


def test_relayed_text_adds_from_and_nothing_else() -> None:
    frame = parse({"kind": "signal", "type": "candidate", "candidate": CANDIDATE, "seq": 3})
    assert frame.relay is not None
    assert json.loads(vp.relayed_text(frame.relay, sender="patient")) == {
        "kind": "signal",
        "type": "candidate",
        "candidate": CANDIDATE,
        "seq": 3,
        "from": "patient",
    }
