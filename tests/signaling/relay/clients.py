"""aiortc 'browsers' that talk to the relay exactly as the visit consumer makes browsers do: ``relay.signal``
messages with a relay token on the ``telehealth.relay`` group, answers read from the participant's inbox group.

Each receiving side taps its receivers with the relay's own hook (hashes of every encoded frame as it arrives, and
whether it is a key frame) and also lets aiortc decode them, counting decoded frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import VIDEO_CLOCK_RATE, VIDEO_PTIME, MediaStreamError
from aiortc.rtcicetransport import RTCIceTransportPolicy
from channels.layers import get_channel_layer

from signaling.relay import hooks
from signaling.relay.media import is_keyframe
from telehealth.channels import RELAY_GROUP, participant_inbox
from telehealth.services.relay import relay_token_issue

TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)


class SyntheticVideoTrack(MediaStreamTrack):
    """Moving stripes at 30 fps (every frame differs, so the encoder makes real delta frames)."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width, self.height = width, height
        self._start: float | None = None
        self._count = 0
        self._row = bytes((x * 3) & 0xFF for x in range(2 * width))

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._count * VIDEO_PTIME - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        shift = (self._count * 4) % self.width
        for index, plane in enumerate(frame.planes):
            rows = self.height if index == 0 else self.height // 2
            line = (
                self._row[shift : shift + plane.line_size]
                if index == 0
                else bytes([128 + index * 20]) * plane.line_size
            )
            plane.update(line * rows)
        frame.pts = int(self._count * VIDEO_PTIME * VIDEO_CLOCK_RATE)
        frame.time_base = TIME_BASE
        self._count += 1
        return frame


@dataclass
class Received:
    """What one receiver of a client got: encoded frames (hash, key frame?) in order, and decoded frames."""

    kind: str
    hashes: list[str] = field(default_factory=list)
    keyframes: list[bool] = field(default_factory=list)
    decoded: int = 0
    codec: str | None = None

    @property
    def frames(self) -> int:
        return len(self.hashes)


class Browser:
    """One participant's side: publishes on ``pub``, subscribes on ``sub:<P>``; all through the channel layer."""

    def __init__(
        self,
        visit_id: str,
        participant_id: str,
        *,
        ice_servers: list[RTCIceServer] | None = None,
        relay_only: bool = False,
        answer_timeout: float = 15,
    ) -> None:
        self.visit_id = visit_id
        self.participant_id = participant_id
        self.inbox = participant_inbox(visit_id, participant_id)
        self.ice_servers = ice_servers or []
        self.relay_only = relay_only
        self.answer_timeout = answer_timeout  # browsers re-offer after 5 s without an answer
        self.layer = get_channel_layer()
        self.channel = ""
        self.frames: list[dict[str, Any]] = []
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.received: dict[str, dict[str, Received]] = {}  # pc id -> kind -> Received
        self.keyframe_requests = 0  # PLI/FIR that reached this participant's published video
        self._reader: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Browser:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.inbox, self.channel)
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for task in [*self._tasks, *([self._reader] if self._reader else [])]:
            task.cancel()
        for pc in self.pcs.values():
            await pc.close()
        self.pcs.clear()
        with contextlib.suppress(Exception):
            await self.layer.group_discard(self.inbox, self.channel)

    async def _read(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            if message.get("type") == "visit.relay":
                self.frames.append(json.loads(message["text"]))

    # --- signaling ------------------------------------------------------------------------------------------------

    def message(self, frame: dict[str, Any], **override: Any) -> dict[str, Any]:
        return {
            "type": "relay.signal",
            "visit_id": self.visit_id,
            "participant_id": self.participant_id,
            "role": "guest" if self.participant_id.startswith("guest-") else self.participant_id,
            "name": "Test participant",
            "inbox": self.inbox,
            "token": relay_token_issue(visit_id=self.visit_id, participant_id=self.participant_id),
            "frame": frame,
            **override,
        }

    async def send(self, frame: dict[str, Any], **override: Any) -> None:
        await self.layer.group_send(RELAY_GROUP, self.message(frame, **override))

    async def wait_frame(self, pc: str | None, *, kind: str | None = None, timeout: float = 15) -> dict[str, Any]:
        """The first frame from the relay for ``pc`` (and of ``kind``: "signal" or "relay-error") not yet taken."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self.frames:
                if frame.get("pc") == pc and (kind is None or frame.get("kind") == kind):
                    self.frames.remove(frame)
                    return frame
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{self.participant_id}: no frame for pc {pc} within {timeout}s (got {self.frames})")

    def _new_pc(self, pc_id: str) -> RTCPeerConnection:
        config = RTCConfiguration(
            iceServers=self.ice_servers,
            iceTransportPolicy=RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL,
        )
        pc = RTCPeerConnection(config)
        self.pcs[pc_id] = pc
        return pc

    async def _negotiate(self, pc_id: str, pc: RTCPeerConnection) -> None:
        await pc.setLocalDescription(await pc.createOffer())
        await self.send({"kind": "signal", "pc": pc_id, "type": "offer", "sdp": pc.localDescription.sdp})
        await self.send({"kind": "signal", "pc": pc_id, "type": "candidate", "candidate": None})
        frame = await self.wait_frame(pc_id, timeout=self.answer_timeout)
        if frame.get("kind") != "signal":
            raise AssertionError(f"relay refused {pc_id}: {frame}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=frame["sdp"], type="answer"))

    # --- publish --------------------------------------------------------------------------------------------------

    async def publish(self, *, video: MediaStreamTrack | None = None, audio: bool = True) -> RTCPeerConnection:
        old = self.pcs.pop("pub", None)
        if old is not None:
            await old.close()
        pc = self._new_pc("pub")
        if audio:
            pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        video_sender: RTCRtpSender | None = None
        if video is not None:
            video_sender = pc.addTransceiver(video, direction="sendonly").sender
            hooks.sender_on_keyframe_request(video_sender, self._count_keyframe_request)
        await self._negotiate("pub", pc)
        return pc

    def _count_keyframe_request(self) -> None:
        self.keyframe_requests += 1

    # --- subscribe ------------------------------------------------------------------------------------------------

    async def subscribe(self, target: str, *, video_codecs: tuple[str, ...] | None = None) -> dict[str, Received]:
        pc_id = f"sub:{target}"
        old = self.pcs.pop(pc_id, None)
        if old is not None:
            await old.close()
        pc = self._new_pc(pc_id)
        received: dict[str, Received] = {}
        for kind in ("audio", "video"):
            transceiver = pc.addTransceiver(kind, direction="recvonly")
            if kind == "video" and video_codecs is not None:
                caps = RTCRtpReceiver.getCapabilities("video").codecs
                transceiver.setCodecPreferences([c for c in caps if c.mimeType in video_codecs])
            got = received[kind] = Received(kind)
            tap = hooks.receiver_tap(transceiver.receiver, self._recorder(got))
            tap.decode = True  # and let aiortc decode them, as a browser would
        self.received[pc_id] = received

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._tasks.append(asyncio.ensure_future(self._count_decoded(track, received[track.kind])))

        await self._negotiate(pc_id, pc)
        return received

    def _recorder(self, got: Received) -> Any:
        def record(codec: Any, frame: Any) -> None:
            got.codec = codec.mimeType.split("/", 1)[1]
            got.hashes.append(hashlib.sha256(frame.data).hexdigest())
            got.keyframes.append(is_keyframe(codec, frame.data))

        return record

    async def _count_decoded(self, track: MediaStreamTrack, got: Received) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                got.decoded += 1

    async def request_keyframe(self, target: str) -> None:
        """Send PLI on ``sub:<target>``'s video, as a browser's decoder does after loss."""
        pc = self.pcs[f"sub:{target}"]
        transceiver = next(t for t in pc.getTransceivers() if t.kind == "video")
        ssrc = transceiver.receiver.getSynchronizationSources()[0].source
        await hooks.receiver_request_keyframe(transceiver.receiver, ssrc)


async def wait_for(condition: Any, *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition()`` on the event loop until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
