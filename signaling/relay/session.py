"""The relay's state: visits, their participants and peer connections, and what each signal does to them.

Transport-free: ``Relay`` is given a ``send(inbox, frame)`` coroutine (the channel layer in production) and an
``ice_servers()`` factory. All state is in memory; a restart loses it and browsers re-offer (docs/relay.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.sdp import SessionDescription, candidate_from_sdp

from signaling.relay import hooks
from signaling.relay import protocol as rp
from signaling.relay.media import DEFAULT_PLI_INTERVAL_S, DEFAULT_QUEUE_FRAMES, ForwardingTrack, Source

logger = logging.getLogger(__name__)

Send = Callable[[str, dict[str, Any]], Awaitable[None]]
Report = Callable[[str, str, dict[str, Any]], Awaitable[None]]

# Forwarding works when everyone speaks the publisher's codec: prefer VP8 and Opus (browsers do too); the others
# stay negotiable so that a participant who cannot take VP8 still gets video, transcoded.
VIDEO_PREFERENCE = ("video/VP8", "video/H264")
AUDIO_PREFERENCE = ("audio/opus", "audio/G722", "audio/PCMU", "audio/PCMA")


@dataclass
class Limits:
    max_visits: int = 20
    max_participants: int = 8  # per visit: publishers and subscribers together
    queue_frames: int = DEFAULT_QUEUE_FRAMES
    pli_interval: float = DEFAULT_PLI_INTERVAL_S


@dataclass
class Peer:
    """One peer connection of a participant: ``pub`` (it publishes) or ``sub:<P>`` (it receives P's media)."""

    pc_id: str
    pc: RTCPeerConnection
    tracks: list[ForwardingTrack] = field(default_factory=list)
    receivers: list[tuple[Source, RTCRtpReceiver]] = field(default_factory=list)
    state: str = "new"


@dataclass
class Participant:
    participant_id: str
    inbox: str
    peers: dict[str, Peer] = field(default_factory=dict)


@dataclass
class Visit:
    visit_id: str
    participants: dict[str, Participant] = field(default_factory=dict)
    sources: dict[tuple[str, str], Source] = field(default_factory=dict)
    muted: set[str] = field(default_factory=set)  # participants whose audio is not forwarded
    removed: set[str] = field(default_factory=set)


class Relay:
    """Answers browsers' offers and forwards each participant's media to the others of its visit.

    Who calls it: ``signaling.relay.server`` with messages from the ``telehealth.relay`` group (a test may drive it
    directly). Invariants: every message for one pc id is handled in arrival order (one worker per pc id); a new
    offer on a pc id replaces that peer connection; nothing is created for a refused message; a removed participant
    or an ended visit gets nothing more; no SDP, candidate or address is logged.
    """

    def __init__(
        self,
        *,
        send: Send,
        ice_servers: Callable[[], list[RTCIceServer]],
        report: Report | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.send = send
        self.ice_servers = ice_servers
        self.report = report
        self.limits = limits or Limits()
        self.visits: dict[str, Visit] = {}
        self.ended: OrderedDict[str, None] = OrderedDict()  # recently ended visits: late offers are refused
        self._queues: dict[tuple[str, str, str], asyncio.Queue[rp.Signal]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self.closed = False

    # --- entry points ---------------------------------------------------------------------------------------------

    async def handle_signal(self, message: dict[str, Any], verified: tuple[str, str] | None) -> None:
        """A ``relay.signal`` message whose token verified to ``verified`` (or None). Returns at once; the signal
        is handled by its pc id's worker."""
        try:
            signal = rp.parse_signal(message, verified=verified)
        except rp.RelayRefused as refused:
            await self._refuse(refused, visit_id=message.get("visit_id"), participant=message.get("participant_id"))
            return
        key = (signal.visit_id, signal.participant_id, signal.pc)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            task = asyncio.ensure_future(self._work(key, queue))
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        queue.put_nowait(signal)

    async def participant_mute(self, *, visit_id: str, participant_id: str, audio: bool) -> None:
        visit = self.visits.get(visit_id)
        if visit is None:
            return
        if audio:
            visit.muted.discard(participant_id)
        else:
            visit.muted.add(participant_id)
        source = visit.sources.get((participant_id, "audio"))
        if source is not None:
            source.enabled = audio
        logger.info("relay: visit=%s participant=%s audio=%s", visit_id, participant_id, audio)

    async def participant_remove(self, *, visit_id: str, participant_id: str) -> None:
        """Close every pc of the participant and every other participant's pc receiving it; refuse it from now."""
        visit = self.visits.get(visit_id)
        if visit is None:
            return
        visit.removed.add(participant_id)
        participant = visit.participants.get(participant_id)
        if participant is not None:
            for pc_id in list(participant.peers):
                await self._close_peer(visit, participant, pc_id)
        for other in list(visit.participants.values()):
            if f"sub:{participant_id}" in other.peers:
                await self._close_peer(visit, other, f"sub:{participant_id}")
        for kind in ("audio", "video"):
            source = visit.sources.pop((participant_id, kind), None)
            if source is not None:
                source.removed = True
                source.close()
        self._forget_idle(visit)
        logger.info("relay: visit=%s participant=%s removed", visit_id, participant_id)

    async def visit_end(self, *, visit_id: str) -> None:
        self.ended[visit_id] = None
        while len(self.ended) > 10_000:
            self.ended.popitem(last=False)
        visit = self.visits.pop(visit_id, None)
        if visit is None:
            return
        await self._close_visit(visit)
        logger.info("relay: visit=%s ended", visit_id)

    async def close(self) -> None:
        """Close every peer connection (shutdown)."""
        self.closed = True
        for task in list(self._workers):
            task.cancel()
        for visit in list(self.visits.values()):
            await self._close_visit(visit)
        self.visits.clear()

    def counts(self) -> dict[str, int]:
        peers = sum(len(p.peers) for v in self.visits.values() for p in v.participants.values())
        return {"visits": len(self.visits), "peers": peers}

    def participant_report(self, visit_id: str, participant_id: str) -> dict[str, Any] | None:
        """Telemetry for what ``participant_id`` receives and publishes (ids, codes and counters only)."""
        visit = self.visits.get(visit_id)
        participant = visit.participants.get(participant_id) if visit else None
        if visit is None or participant is None:
            return None
        published = []
        for kind in ("audio", "video"):
            source = visit.sources.get((participant_id, kind))
            if source is not None and source.receiver is not None:
                published.append(
                    {
                        "kind": kind,
                        "codec": source.codec.mimeType.split("/", 1)[1] if source.codec else None,
                        "frames": source.frames,
                        "bytes": source.bytes,
                        "keyframes": source.keyframes,
                        "keyframe_requests": source.plis_sent,
                    }
                )
        return {
            "pcs": {pc_id: peer.state for pc_id, peer in sorted(participant.peers.items())},
            "tracks": [t.report() for peer in participant.peers.values() for t in peer.tracks],
            "published": published,
        }

    # --- per-pc worker --------------------------------------------------------------------------------------------

    async def _work(self, key: tuple[str, str, str], queue: asyncio.Queue[rp.Signal]) -> None:
        try:
            while not queue.empty():
                signal = queue.get_nowait()
                try:
                    await self._handle(signal)
                except rp.RelayRefused as refused:
                    await self._refuse(refused, visit_id=signal.visit_id, participant=signal.participant_id)
                except Exception:
                    logger.exception(
                        "relay: signal failed: visit=%s participant=%s pc=%s type=%s",
                        signal.visit_id,
                        signal.participant_id,
                        signal.pc,
                        signal.type,
                    )
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]

    async def _handle(self, signal: rp.Signal) -> None:
        if signal.visit_id in self.ended:
            raise rp.RelayRefused(rp.NOT_ALLOWED, "The visit has ended.", pc=signal.pc, inbox=signal.inbox)
        if signal.type == "offer":
            await self._offer(signal)
            return
        visit = self.visits.get(signal.visit_id)
        participant = visit.participants.get(signal.participant_id) if visit else None
        peer = participant.peers.get(signal.pc) if participant else None
        if visit is None or participant is None or peer is None:
            return  # a candidate or close for a pc that is gone (closed, replaced or lost in a restart)
        if signal.type == "close":
            await self._close_peer(visit, participant, signal.pc)
            await self._report(visit.visit_id, participant.participant_id, event="closed")
            self._forget_idle(visit)
            return
        await self._candidate(signal, peer)

    async def _candidate(self, signal: rp.Signal, peer: Peer) -> None:
        candidate = signal.candidate
        if candidate is None or candidate.get("candidate") == "":
            await peer.pc.addIceCandidate(None)
            return
        line = candidate["candidate"]
        try:
            parsed = candidate_from_sdp(line.split(":", 1)[1] if line.startswith("candidate:") else line)
        except (AssertionError, ValueError, IndexError):
            raise rp.RelayRefused(rp.BAD_SDP, "Malformed ICE candidate.", pc=signal.pc, inbox=signal.inbox) from None
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await peer.pc.addIceCandidate(parsed)

    # --- offers ---------------------------------------------------------------------------------------------------

    async def _offer(self, signal: rp.Signal) -> None:
        assert signal.sdp is not None
        media = _parse_offer(signal)
        visit = self._visit_for(signal)
        if signal.participant_id in visit.removed or (signal.target and signal.target in visit.removed):
            raise rp.RelayRefused(rp.NOT_ALLOWED, "Removed from the visit.", pc=signal.pc, inbox=signal.inbox)
        self._check_room(visit, signal)
        participant = self._participant_for(visit, signal)
        old = participant.peers.get(signal.pc)
        if old is None and len(participant.peers) >= self.limits.max_participants:
            raise rp.RelayRefused(rp.OVERLOADED, "Too many peer connections.", pc=signal.pc, inbox=signal.inbox)
        if old is not None:
            await self._close_peer(visit, participant, signal.pc)  # a re-offer replaces the pc (ICE restart)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self.ice_servers()))
        peer = Peer(pc_id=signal.pc, pc=pc)
        participant.peers[signal.pc] = peer
        try:
            if signal.target is None:
                await self._answer_publish(visit, participant, peer, signal, media)
            else:
                await self._answer_subscribe(visit, participant, peer, signal, media)
        except BaseException:
            if participant.peers.get(signal.pc) is peer:
                await self._close_peer(visit, participant, signal.pc)
                self._forget_idle(visit)
            raise
        self._watch(visit, participant, peer)
        logger.info("relay: answered visit=%s participant=%s pc=%s", signal.visit_id, signal.participant_id, signal.pc)

    async def _answer_publish(
        self, visit: Visit, participant: Participant, peer: Peer, signal: rp.Signal, media: list[str]
    ) -> None:
        wanted: dict[str, RTCRtpTransceiver] = {}
        for kind in media:  # one receiving transceiver per kind, in m-line order, with our codec preferences
            if kind not in wanted:
                transceiver = peer.pc.addTransceiver(kind, direction="recvonly")
                transceiver.setCodecPreferences(_preferences(kind, None))
                wanted[kind] = transceiver
        await self._set_remote(peer.pc, signal)
        ssrcs = _media_ssrcs(signal.sdp or "")
        for transceiver in peer.pc.getTransceivers():
            receiver = transceiver.receiver
            if wanted.get(transceiver.kind) is transceiver:
                source = self._source(visit, participant.participant_id, transceiver.kind)
                source.enabled = not (transceiver.kind == "audio" and participant.participant_id in visit.muted)
                source.attach(receiver, ssrc=ssrcs.get(transceiver.mid or ""))
                peer.receivers.append((source, receiver))
            else:
                hooks.receiver_tap(receiver, _ignore)  # extra m-lines: never decoded, never forwarded
        await self._answer(peer, signal)

    async def _answer_subscribe(
        self, visit: Visit, participant: Participant, peer: Peer, signal: rp.Signal, media: list[str]
    ) -> None:
        assert signal.target is not None
        seen: set[str] = set()
        for kind in media:
            if kind in seen:
                continue
            seen.add(kind)
            source = self._source(visit, signal.target, kind)
            track = ForwardingTrack(
                kind=kind, source=source, subscriber_id=participant.participant_id, capacity=self.limits.queue_frames
            )
            peer.tracks.append(track)
            transceiver = peer.pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(_preferences(kind, source.codec))
        await self._set_remote(peer.pc, signal)
        answer = await self._answer(peer, signal)
        negotiated = _negotiated_codecs(answer)
        for transceiver in peer.pc.getTransceivers():
            sending = next((t for t in peer.tracks if transceiver.sender.track is t), None)
            codec = negotiated.get(transceiver.mid or "")
            if sending is None or codec is None:
                continue
            encoder = hooks.sender_install_encoder(transceiver.sender, codec)
            hooks.sender_on_keyframe_request(transceiver.sender, sending.on_viewer_keyframe_request)
            sending.negotiated(codec, encoder)

    async def _set_remote(self, pc: RTCPeerConnection, signal: rp.Signal) -> None:
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=signal.sdp or "", type="offer"))
        except Exception as exc:
            # aiortc raises ValueError, OperationError, InvalidAccessError, … for offers it cannot take.
            raise rp.RelayRefused(
                rp.BAD_SDP, f"The offer cannot be used ({type(exc).__name__}).", pc=signal.pc, inbox=signal.inbox
            ) from None

    async def _answer(self, peer: Peer, signal: rp.Signal) -> str:
        answer = await peer.pc.createAnswer()
        await peer.pc.setLocalDescription(answer)  # aiortc gathers every candidate first: no trickle from here
        sdp = peer.pc.localDescription.sdp
        await self.send(signal.inbox, rp.answer_frame(pc=signal.pc, sdp=sdp))
        return sdp

    # --- bookkeeping ----------------------------------------------------------------------------------------------

    def _visit_for(self, signal: rp.Signal) -> Visit:
        visit = self.visits.get(signal.visit_id)
        if visit is None:
            if len(self.visits) >= self.limits.max_visits:
                raise rp.RelayRefused(rp.OVERLOADED, "The relay is full.", pc=signal.pc, inbox=signal.inbox)
            visit = self.visits[signal.visit_id] = Visit(signal.visit_id)
        return visit

    def _participant_for(self, visit: Visit, signal: rp.Signal) -> Participant:
        participant = visit.participants.get(signal.participant_id)
        if participant is None:
            participant = visit.participants[signal.participant_id] = Participant(signal.participant_id, signal.inbox)
        return participant

    def _check_room(self, visit: Visit, signal: rp.Signal) -> None:
        """The sender and the participant it subscribes to must fit in the visit's participant limit."""
        known = set(visit.participants) | {pid for pid, _ in visit.sources}
        wanted = {signal.participant_id} | ({signal.target} if signal.target else set())
        if len(known | wanted) > self.limits.max_participants:
            self._forget_idle(visit)
            raise rp.RelayRefused(
                rp.OVERLOADED, "Too many participants in this visit.", pc=signal.pc, inbox=signal.inbox
            )

    def _source(self, visit: Visit, participant_id: str, kind: str) -> Source:
        source = visit.sources.get((participant_id, kind))
        if source is None:
            source = visit.sources[(participant_id, kind)] = Source(
                participant_id=participant_id, kind=kind, pli_interval=self.limits.pli_interval
            )
            source.enabled = not (kind == "audio" and participant_id in visit.muted)
        return source

    def _watch(self, visit: Visit, participant: Participant, peer: Peer) -> None:
        @peer.pc.on("connectionstatechange")
        async def on_state() -> None:
            state = peer.pc.connectionState
            peer.state = state
            if participant.peers.get(peer.pc_id) is not peer:
                return  # replaced or closed meanwhile
            logger.info(
                "relay: visit=%s participant=%s pc=%s %s",
                visit.visit_id,
                participant.participant_id,
                peer.pc_id,
                state,
            )
            if state in ("connected", "failed", "closed"):
                await self._report(visit.visit_id, participant.participant_id, event=state)
            if state in ("failed", "closed"):  # the browser went away (or closed its end): clean up this pc only
                await self._close_peer(visit, participant, peer.pc_id)
                self._forget_idle(visit)

    async def _close_peer(self, visit: Visit, participant: Participant, pc_id: str) -> None:
        peer = participant.peers.pop(pc_id, None)
        if peer is None:
            return
        for source, receiver in peer.receivers:
            source.detach(receiver)
        for track in peer.tracks:
            track.stop()
        with contextlib.suppress(Exception):
            await peer.pc.close()

    async def _close_visit(self, visit: Visit) -> None:
        for participant in list(visit.participants.values()):
            for pc_id in list(participant.peers):
                await self._close_peer(visit, participant, pc_id)
        for source in visit.sources.values():
            source.close()
        visit.sources.clear()
        visit.participants.clear()

    def _forget_idle(self, visit: Visit) -> None:
        """Drop participants without a pc, sources nobody publishes or watches, and an empty visit."""
        for pid in [pid for pid, p in visit.participants.items() if not p.peers]:
            del visit.participants[pid]
        for key in [k for k, s in visit.sources.items() if s.receiver is None and not s.subscribers]:
            visit.sources.pop(key).close()
        if not visit.participants and not visit.sources and self.visits.get(visit.visit_id) is visit:
            del self.visits[visit.visit_id]

    async def _refuse(self, refused: rp.RelayRefused, *, visit_id: Any, participant: Any) -> None:
        logger.info(
            "relay: refused visit=%s participant=%s pc=%s code=%s",
            visit_id if isinstance(visit_id, str) and len(visit_id) <= 64 else "?",
            participant if isinstance(participant, str) and rp.PARTICIPANT_RE.fullmatch(participant) else "?",
            refused.pc,
            refused.code,
        )
        if refused.inbox is not None:
            await self.send(refused.inbox, refused.frame())

    async def _report(self, visit_id: str, participant_id: str, *, event: str) -> None:
        if self.report is None:
            return
        report = self.participant_report(visit_id, participant_id) or {"pcs": {}, "tracks": [], "published": []}
        if event == "periodic":
            states = set(report["pcs"].values())
            event = "connected" if "connected" in states else next(iter(sorted(states)), "closed")
        report["connection"] = event  # what just happened, or (periodic) connected while any pc is
        await self.report(visit_id, participant_id, report)

    async def report_all(self) -> None:
        """The periodic telemetry: one report per connected participant."""
        for visit in list(self.visits.values()):
            for participant_id in list(visit.participants):
                await self._report(visit.visit_id, participant_id, event="periodic")


def _ignore(codec: RTCRtpCodecParameters, frame: Any) -> None:
    return None


def _parse_offer(signal: rp.Signal) -> list[str]:
    """The offer's audio/video m-line kinds in order, checked for the pc's direction; raises bad_sdp."""
    try:
        description = SessionDescription.parse(signal.sdp or "")
    except Exception:
        raise rp.RelayRefused(rp.BAD_SDP, "The offer does not parse.", pc=signal.pc, inbox=signal.inbox) from None
    media = [m for m in description.media if m.kind in ("audio", "video")]
    if not media:
        raise rp.RelayRefused(rp.BAD_SDP, "The offer has no audio or video.", pc=signal.pc, inbox=signal.inbox)
    wanted = ("sendonly", "sendrecv") if signal.target is None else ("recvonly", "sendrecv")
    if not any(m.direction in wanted for m in media):
        raise rp.RelayRefused(
            rp.BAD_SDP,
            f"A {signal.pc.split(':')[0]} offer must be {' or '.join(wanted)}.",
            pc=signal.pc,
            inbox=signal.inbox,
        )
    return [m.kind for m in media]


def _media_ssrcs(sdp: str) -> dict[str, int]:
    """mid -> the first SSRC the offer announces for it (the media SSRC; the second is RTX)."""
    description = SessionDescription.parse(sdp)
    return {m.rtp.muxId: m.ssrc[0].ssrc for m in description.media if m.ssrc and m.rtp.muxId}


def _negotiated_codecs(answer_sdp: str) -> dict[str, RTCRtpCodecParameters]:
    """mid -> the codec the relay sends on it (the answer's first codec)."""
    description = SessionDescription.parse(answer_sdp)
    return {m.rtp.muxId: m.rtp.codecs[0] for m in description.media if m.rtp.codecs and m.rtp.muxId}


def _preferences(kind: str, source_codec: RTCRtpCodecParameters | None) -> list[RTCRtpCodecCapability]:
    """Codec preferences for a transceiver: the publisher's codec first when known, then VP8/Opus, then the rest
    aiortc supports (RTX kept: retransmissions are cheap, re-encoding is not)."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    order = list(VIDEO_PREFERENCE if kind == "video" else AUDIO_PREFERENCE)
    if source_codec is not None and source_codec.mimeType in order:
        order.remove(source_codec.mimeType)
        order.insert(0, source_codec.mimeType)
    ranked = sorted(
        (c for c in capabilities if c.mimeType in order),
        key=lambda c: order.index(c.mimeType),
    )
    return ranked + [c for c in capabilities if c.mimeType.lower().endswith("/rtx")]
