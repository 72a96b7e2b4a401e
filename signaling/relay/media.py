"""Forwarding encoded media: one ``Source`` per published track, one ``ForwardingTrack`` per subscriber.

A publisher's receiver is tapped (hooks.receiver_tap): each reassembled encoded frame goes to its ``Source``, which
hands the same bytes to every forwarding subscriber as an ``av.Packet``. The subscriber's ``RTCRtpSender`` packs
that packet into RTP (``encoder.pack``) and never encodes. Only a subscriber whose negotiated codec differs from the
publisher's is fed decoded frames (one decode per publisher, shared by every such subscriber) and encoded by its
sender: mode ``transcode``.

Key frames (video): a subscriber forwards nothing until its first key frame; when its sender starts pulling, when
its queue overflows, and when its viewer sends PLI/FIR, the source sends PLI to the publisher, at most once per
``pli_interval`` (a request inside the window is deferred to its end, never lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.frame import Frame
from av.packet import Packet

from signaling.relay import hooks

logger = logging.getLogger(__name__)

FORWARD = "forward"
TRANSCODE = "transcode"
DEFAULT_QUEUE_FRAMES = 30  # per subscriber track: about 1 s of video; on overflow the oldest go first
DEFAULT_PLI_INTERVAL_S = 0.5

FrameListener = Callable[[bytes, int, bool], None]


def codec_name(codec: RTCRtpCodecParameters | None) -> str | None:
    return codec.mimeType.split("/", 1)[1] if codec is not None else None


def codecs_compatible(a: RTCRtpCodecParameters, b: RTCRtpCodecParameters) -> bool:
    """Whether frames of codec ``a`` can be forwarded unchanged to a receiver that negotiated ``b``."""
    if a.mimeType.lower() != b.mimeType.lower() or a.clockRate != b.clockRate:
        return False
    if a.mimeType.lower() == "video/h264":
        return a.parameters.get("packetization-mode", "0") == b.parameters.get("packetization-mode", "0")
    return True


def is_keyframe(codec: RTCRtpCodecParameters, data: bytes) -> bool:
    """Whether a depayloaded frame can be decoded on its own (audio: always)."""
    mime = codec.mimeType.lower()
    if not data:
        return False
    if mime == "video/vp8":
        return not data[0] & 0x01  # RFC 6386 frame tag: P bit 0 = key frame
    if mime == "video/h264":
        # aiortc depayloads H.264 to Annex B: look for an IDR slice (5) or a sequence parameter set (7).
        pos = data.find(b"\x00\x00\x01")
        while pos != -1 and pos + 3 < len(data):
            if data[pos + 3] & 0x1F in (5, 7):
                return True
            pos = data.find(b"\x00\x00\x01", pos + 3)
        return False
    return not mime.startswith("video/")


class Source:
    """The media one participant publishes of one ``kind`` in one visit.

    It outlives the publisher's peer connection: subscribers attach to the source at once, and it starts feeding
    them when (and each time) the participant publishes. Invariants: frames reach forwarding subscribers
    byte-identical and in arrival order; while ``enabled`` is false (audio muted) nothing is forwarded; at most one
    PLI per ``pli_interval`` goes to the publisher.
    """

    def __init__(self, *, participant_id: str, kind: str, pli_interval: float = DEFAULT_PLI_INTERVAL_S) -> None:
        self.participant_id = participant_id
        self.kind = kind
        self.pli_interval = pli_interval
        self.enabled = True
        self.removed = False
        self.receiver: RTCRtpReceiver | None = None
        self.tap: hooks.EncodedFrameTap | None = None
        self.ssrc: int | None = None
        self.codec: RTCRtpCodecParameters | None = None
        self.epoch = 0  # bumped on each (re)publish: subscribers rebase timestamps
        self.subscribers: set[ForwardingTrack] = set()
        self.transcoders: set[ForwardingTrack] = set()
        self.listeners: list[FrameListener] = []  # diagnostics and tests: (data, timestamp, keyframe)
        self.frames = 0
        self.bytes = 0
        self.keyframes = 0
        self.plis_sent = 0
        self._last_pli = float("-inf")
        self._pli_pending: asyncio.TimerHandle | None = None
        self._decode_task: asyncio.Task[None] | None = None

    # --- publisher side -------------------------------------------------------------------------------------------

    def attach(self, receiver: RTCRtpReceiver, *, ssrc: int | None) -> None:
        """The participant (re)published: take frames from ``receiver`` from now on."""
        self.detach()
        self.receiver, self.ssrc = receiver, ssrc
        self.epoch += 1
        self.tap = hooks.receiver_tap(receiver, self._on_frame)
        self.tap.decode = bool(self.transcoders)
        for track in self.subscribers:
            track.source_restarted()
        if self.transcoders:
            self._start_decoding()

    def detach(self, receiver: RTCRtpReceiver | None = None) -> None:
        """Stop taking frames from the current receiver (or only if it is ``receiver``)."""
        if self.receiver is None or (receiver is not None and receiver is not self.receiver):
            return
        if self.tap is not None:
            self.tap.on_frame = _ignore_frame
            self.tap.decode = False
        self.receiver, self.tap, self.ssrc = None, None, None
        self._stop_decoding()

    def _on_frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        if self.codec is None or not codecs_compatible(self.codec, codec):
            self.codec = codec
            for track in list(self.subscribers):
                track.update_mode()
        if not self.enabled:
            return
        data = frame.data
        keyframe = is_keyframe(codec, data)
        self.frames += 1
        self.bytes += len(data)
        self.keyframes += keyframe
        for listener in self.listeners:
            listener(data, frame.timestamp, keyframe)
        for track in self.subscribers:
            if track.mode == FORWARD:
                track.push_encoded(data, frame.timestamp, keyframe, codec.clockRate, self.epoch)

    # --- key frames -----------------------------------------------------------------------------------------------

    def request_keyframe(self) -> None:
        """Ask the publisher for a key frame (video only), at most once per ``pli_interval``."""
        if self.kind != "video" or self.receiver is None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_pli + self.pli_interval - loop.time()
        if wait <= 0:
            self._send_pli()
        elif self._pli_pending is None:
            self._pli_pending = loop.call_later(wait, self._send_pli)

    def _send_pli(self) -> None:
        self._pli_pending = None
        receiver, ssrc = self.receiver, self.ssrc
        if receiver is None:
            return
        if ssrc is None:  # the offer named no SSRC: use the one the media arrives on
            sources = receiver.getSynchronizationSources()
            ssrc = sources[0].source if sources else None
            if ssrc is None:
                return
        self._last_pli = asyncio.get_running_loop().time()
        self.plis_sent += 1
        task = asyncio.ensure_future(hooks.receiver_request_keyframe(receiver, ssrc))
        task.add_done_callback(_log_failure)

    # --- transcoding (fallback) -----------------------------------------------------------------------------------

    def transcode_add(self, track: ForwardingTrack) -> None:
        self.transcoders.add(track)
        if self.tap is not None and not self.tap.decode:
            self.tap.decode = True
            self._start_decoding()
            self.request_keyframe()  # the decoder starts mid-stream

    def transcode_remove(self, track: ForwardingTrack) -> None:
        self.transcoders.discard(track)
        if not self.transcoders:
            if self.tap is not None:
                self.tap.decode = False
            self._stop_decoding()

    def _start_decoding(self) -> None:
        if self.receiver is not None and self._decode_task is None:
            self._decode_task = asyncio.ensure_future(self._decode_loop(self.receiver.track))

    def _stop_decoding(self) -> None:
        if self._decode_task is not None:
            self._decode_task.cancel()
            self._decode_task = None

    async def _decode_loop(self, track: MediaStreamTrack) -> None:
        """aiortc's own decoder thread decodes (once per publisher); hand each frame to every transcoder."""
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if not self.enabled or not isinstance(frame, Frame):
                    continue
                for sub in self.transcoders:
                    sub.push_decoded(frame, self.epoch)

    def close(self) -> None:
        self.detach()
        if self._pli_pending is not None:
            self._pli_pending.cancel()
            self._pli_pending = None
        for track in list(self.subscribers):
            track.stop()


def _ignore_frame(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
    return None


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("relay: key frame request failed: %s", type(task.exception()).__name__)


class ForwardingTrack(MediaStreamTrack):
    """What one subscriber's ``RTCRtpSender`` reads: ``av.Packet`` objects carrying the publisher's encoded frames
    (mode ``forward``), or decoded ``av.Frame`` objects its sender encodes (mode ``transcode``, only when the
    subscriber's codec differs from the publisher's).

    Invariants: a bounded queue (``capacity``; the oldest go first, and a video track then waits for a key frame);
    a video track forwards no delta frame before its first key frame; timestamps never go back when the publisher
    republishes.
    """

    def __init__(self, *, kind: str, source: Source, subscriber_id: str, capacity: int = DEFAULT_QUEUE_FRAMES) -> None:
        super().__init__()
        self.kind = kind
        self.source = source
        self.subscriber_id = subscriber_id
        self.capacity = capacity
        self.codec: RTCRtpCodecParameters | None = None  # what the subscriber negotiated (set after the answer)
        self.encoder: hooks.CountingEncoder | None = None
        self.mode = FORWARD
        self.waiting_keyframe = kind == "video"
        self.started = False
        self.packets = 0
        self.bytes = 0
        self.dropped = 0
        self.keyframe_requests = 0
        self._queue: deque[Packet[Any] | Frame] = deque()
        self._wakeup = asyncio.Event()
        self._epoch = -1
        self._offset = 0
        self._last_out: int | None = None
        source.subscribers.add(self)

    # --- set-up ---------------------------------------------------------------------------------------------------

    def negotiated(self, codec: RTCRtpCodecParameters, encoder: hooks.CountingEncoder) -> None:
        self.codec, self.encoder = codec, encoder
        self.update_mode()

    def update_mode(self) -> None:
        """Forward when the publisher's codec is the subscriber's (or not known yet), otherwise transcode."""
        if self.codec is None or self.source.codec is None:
            return
        mode = FORWARD if codecs_compatible(self.source.codec, self.codec) else TRANSCODE
        if mode == self.mode:
            return
        self.mode = mode
        self._queue.clear()
        self.waiting_keyframe = self.kind == "video" and mode == FORWARD
        if mode == TRANSCODE:
            self.source.transcode_add(self)
        else:
            self.source.transcode_remove(self)
            self.request_keyframe()
        logger.info(
            "relay: %s track of %s to %s now %s", self.kind, self.source.participant_id, self.subscriber_id, mode
        )

    def source_restarted(self) -> None:
        """The publisher republished: its first frames are useless until a key frame."""
        self._queue.clear()
        self.waiting_keyframe = self.kind == "video" and self.mode == FORWARD
        if self.started:
            self.request_keyframe()

    def request_keyframe(self) -> None:
        if self.kind == "video":
            self.keyframe_requests += 1
            self.source.request_keyframe()

    def on_viewer_keyframe_request(self) -> None:
        """The viewer sent PLI/FIR: pass it upstream (a transcoding sender also forces a key frame itself)."""
        if self.mode == FORWARD:
            self.request_keyframe()

    # --- frames in ------------------------------------------------------------------------------------------------

    def push_encoded(self, data: bytes, timestamp: int, keyframe: bool, clock_rate: int, epoch: int) -> None:
        if self.readyState != "live":
            return
        if self.waiting_keyframe:
            if not keyframe:
                return
            self.waiting_keyframe = False
        packet = Packet(data)
        packet.pts = self._rebase(timestamp, epoch, clock_rate // 50)
        packet.time_base = fractions.Fraction(1, clock_rate)
        if len(self._queue) >= self.capacity:
            self.dropped += 1
            if self.kind == "video":
                # Every queued delta frame depends on the oldest one: drop them all and restart from a key frame.
                self._queue.clear()
                if not keyframe:
                    self.waiting_keyframe = True
                    self.request_keyframe()
                    return
            else:
                self._queue.popleft()
        self._queue.append(packet)
        self._wakeup.set()

    def push_decoded(self, frame: Frame, epoch: int) -> None:
        if self.readyState != "live" or frame.pts is None or frame.time_base is None:
            return
        step = max(1, int(fractions.Fraction(1, 50) / frame.time_base))
        frame.pts = self._rebase(frame.pts, epoch, step)
        if len(self._queue) >= self.capacity:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(frame)
        self._wakeup.set()

    def _rebase(self, timestamp: int, epoch: int, step: int) -> int:
        if epoch != self._epoch:
            self._epoch = epoch
            start = 0 if self._last_out is None else self._last_out + step
            self._offset = start - timestamp
        out = timestamp + self._offset
        self._last_out = out
        return out

    # --- frames out (the sender's loop) ---------------------------------------------------------------------------

    async def recv(self) -> Packet[Any] | Frame:  # type: ignore[override]
        if not self.started:
            self.started = True
            self.request_keyframe()  # a new viewer: do not wait for the publisher's next periodic key frame
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._wakeup.clear()
            await self._wakeup.wait()
        item = self._queue.popleft()
        self.packets += 1
        if isinstance(item, Packet):
            self.bytes += item.size
        return item

    def stop(self) -> None:
        super().stop()
        self._wakeup.set()
        self.source.subscribers.discard(self)
        if self.mode == TRANSCODE:
            self.source.transcode_remove(self)

    def report(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source.participant_id,
            "mode": self.mode,
            "codec": codec_name(self.codec),
            "source_codec": codec_name(self.source.codec),
            "packets": self.packets,
            "bytes": self.bytes,
            "keyframe_requests": self.keyframe_requests,
            "dropped": self.dropped,
            "encoded_frames": self.encoder.encoded if self.encoder else 0,
        }
