"""The few places where the relay reaches into aiortc internals (written against aiortc 1.16).

aiortc offers no public way to get a remote track's *encoded* frames, nor to learn that a remote viewer asked for
a key frame. Three small hooks give the relay both, without copying aiortc code:

1. ``receiver_tap``: an ``RTCRtpReceiver`` hands every frame its jitter buffer reassembles (a depayloaded VP8
   frame, an Opus packet) to its decoder thread through a private ``queue.Queue``
   (``RTCRtpReceiver.__decoder_queue``). The tap replaces that queue, before the receiver starts, with one that
   hands each frame to a callback on the event loop and passes it on to the decoder thread only while somebody
   wants decoded frames (transcoding). Forwarded media is never decoded.
2. ``sender_install_encoder``: ``RTCRtpSender._next_encoded_frame`` packs ``av.Packet`` objects it reads from its
   track with ``encoder.pack()`` and encodes ``av.Frame`` objects with ``encoder.encode()``; it creates its encoder
   lazily (``RTCRtpSender.__encoder``). Installing a ``CountingEncoder`` there first lets the relay count both
   paths, so tests and telemetry can prove that forwarded tracks are never encoded.
3. ``sender_on_keyframe_request``: a sender calls its own ``_send_keyframe()`` when the remote side sends PLI or
   FIR. An instance attribute of that name sees the request first (to pass it upstream), then calls the original.

Key frames are requested from a publisher with ``RTCRtpReceiver._send_rtcp_pli(ssrc)``.

``check_compatible()`` fails loudly at start-up if an aiortc upgrade renamed any of these, and
tests/signaling/relay/test_hooks.py exercises each hook on a real connection.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import get_encoder
from aiortc.codecs.base import Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.frame import Frame
from av.packet import Packet

RECEIVER_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
RECEIVER_STARTED_ATTR = "_RTCRtpReceiver__started"
SENDER_ENCODER_ATTR = "_RTCRtpSender__encoder"

FrameCallback = Callable[[RTCRtpCodecParameters, JitterFrame], None]


class HookIncompatible(RuntimeError):
    """The installed aiortc no longer has the internals the relay hooks into."""


def check_compatible() -> None:
    """Raise ``HookIncompatible`` unless aiortc still has every internal these hooks rely on."""
    problems = []
    if RECEIVER_QUEUE_ATTR not in RTCRtpReceiver._handle_rtp_packet.__code__.co_names:
        problems.append("RTCRtpReceiver._handle_rtp_packet no longer feeds __decoder_queue")
    if RECEIVER_QUEUE_ATTR not in RTCRtpReceiver.receive.__code__.co_names:
        problems.append("RTCRtpReceiver.receive no longer hands __decoder_queue to the decoder thread")
    if not callable(getattr(RTCRtpReceiver, "_send_rtcp_pli", None)):
        problems.append("RTCRtpReceiver._send_rtcp_pli is gone")
    names = RTCRtpSender._next_encoded_frame.__code__.co_names
    if SENDER_ENCODER_ATTR not in names or "pack" not in names or "encode" not in names:
        problems.append("RTCRtpSender._next_encoded_frame no longer packs packets with __encoder")
    if "_send_keyframe" not in RTCRtpSender._handle_rtcp_packet.__code__.co_names:
        problems.append("RTCRtpSender._handle_rtcp_packet no longer calls _send_keyframe on PLI/FIR")
    if problems:
        raise HookIncompatible("; ".join(problems))


class EncodedFrameTap(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue: ``put`` runs on the event loop for each reassembled frame."""

    def __init__(self, on_frame: FrameCallback) -> None:
        super().__init__()
        self.on_frame = on_frame
        self.decode = False  # pass frames on to aiortc's decoder thread (only while something transcodes)
        self.frames = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:  # the receiver stopping its decoder thread
            super().put(item, block, timeout)
            return
        codec, frame = item
        self.frames += 1
        self.on_frame(codec, frame)
        if self.decode:
            super().put(item, block, timeout)


def receiver_tap(receiver: RTCRtpReceiver, on_frame: FrameCallback) -> EncodedFrameTap:
    """Route ``receiver``'s encoded frames to ``on_frame``. Call before the receiver starts (before ICE connects:
    right after ``setRemoteDescription``), since ``receive()`` hands the queue to the decoder thread."""
    if getattr(receiver, RECEIVER_STARTED_ATTR, True):
        raise HookIncompatible("receiver already started (or aiortc renamed RTCRtpReceiver.__started)")
    if not isinstance(getattr(receiver, RECEIVER_QUEUE_ATTR, None), queue.Queue):
        raise HookIncompatible("RTCRtpReceiver.__decoder_queue is gone")
    tap = EncodedFrameTap(on_frame)
    setattr(receiver, RECEIVER_QUEUE_ATTR, tap)
    return tap


async def receiver_request_keyframe(receiver: RTCRtpReceiver, ssrc: int) -> None:
    """Send a Picture Loss Indication for ``ssrc`` to the remote sender (it answers with a key frame)."""
    await receiver._send_rtcp_pli(ssrc)


class CountingEncoder(Encoder):
    """Wraps aiortc's encoder for a codec and counts its two paths: ``pack`` (forwarding a pre-encoded packet) and
    ``encode`` (encoding a decoded frame: transcoding)."""

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.inner = get_encoder(codec)
        self.packed = 0
        self.encoded = 0

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        self.encoded += 1
        return self.inner.encode(frame, force_keyframe)

    def pack(self, packet: Packet[Any]) -> tuple[list[bytes], int]:
        self.packed += 1
        return self.inner.pack(packet)

    # RTCRtpSender sets target_bitrate on REMB when its encoder has one.
    @property
    def target_bitrate(self) -> int:
        return int(getattr(self.inner, "target_bitrate", 0))

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        if hasattr(self.inner, "target_bitrate"):
            self.inner.target_bitrate = bitrate


def sender_install_encoder(sender: RTCRtpSender, codec: RTCRtpCodecParameters) -> CountingEncoder:
    """Give ``sender`` a ``CountingEncoder`` for its negotiated ``codec`` before it starts sending."""
    if not hasattr(sender, SENDER_ENCODER_ATTR):
        raise HookIncompatible("RTCRtpSender.__encoder is gone")
    encoder = CountingEncoder(codec)
    setattr(sender, SENDER_ENCODER_ATTR, encoder)
    return encoder


def sender_encoder(sender: RTCRtpSender) -> Any:
    """The encoder ``sender`` uses (a ``CountingEncoder`` once installed), or None before the first frame."""
    return getattr(sender, SENDER_ENCODER_ATTR, None)


def sender_on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever the remote side of ``sender`` asks for a key frame (PLI or FIR), then let aiortc
    do what it does (force a key frame from its encoder, which matters only when transcoding)."""
    original = sender._send_keyframe

    def send_keyframe() -> None:
        callback()
        original()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
