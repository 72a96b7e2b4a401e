"""Media relay capacity: forwarded 640x480 video streams per CPU core of the relay process, forwarding versus
transcoding, in one run.

Reproduce: ``.venv/bin/python benchmarks/relay_streams.py`` (``make bench`` runs it with the others; a few minutes).
Options: ``--fanout 2`` (viewers per publisher: 2 is a three-party visit), ``--window 6`` (seconds measured per
step), ``--max-streams 240``, ``--modes forward,transcode``. Environment: ``BENCH_REDIS_URL`` (default
``redis://127.0.0.1:6379/14``), ``BENCH_DATABASE_URL`` (the relay only writes telemetry there, and refuses it for
these made-up visits).

What happens:

1. ``manage.py relay`` starts as its own process (test settings, the production channel layer on Redis with the
   prefix ``consulta-relay-bench``, host candidates only: 192.0.2.2 here), exactly as ``make run`` starts it.
2. This process plays every browser, as cheaply as possible so that the relay is what is measured. A publisher sends
   3 s of 640x480 VP8 (30 fps, about 600 kbit/s) encoded once at start-up and then looped (its first frame is a key
   frame; a PLI makes it restart from there, like a real encoder's key frame). A viewer taps its receiver with the
   relay's own hook and counts frames without decoding them.
3. Each step adds visits (one publisher and ``fanout`` viewers each; ``streams`` = forwarded outgoing video streams)
   and, after a warm-up, measures for ``window`` seconds: per-stream delivered frame rate, latency, and the relay
   process's CPU (user + system, from /proc via psutil). In ``transcode`` mode the viewers offer only H.264, so the
   relay decodes each publisher once and encodes for every viewer: its fallback path.
4. Steps go up until a step degrades: mean delivered frame rate below 90 % of the source's 30 fps, or p95 latency
   over 150 ms. ``streams_per_core`` = the largest sustained step's streams / the relay cores it used there.

Latency, forward mode: viewer arrival time minus the frame's send time at the publisher (same process clock). The
viewer maps its RTP timestamps back to the publisher's frame numbers: the relay keeps the timestamps' spacing, so
``ts / 3000`` counts frames since the viewer's first frame, a key frame whose bytes name the publisher frame it was.
Transcode mode (new bytes): the delay above the stream's fastest frame, a lower bound that leaves out the constant
decode + encode time but shows queues building up.

Output: one JSON line per step, then a summary line with ``forward_streams_per_core``,
``transcode_streams_per_core`` and their ``ratio``. Progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KEY_PREFIX = "consulta-relay-bench"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
FPS = 30
WIDTH, HEIGHT = 640, 480
LOOP_S = 3
FRAME_TICKS = 90000 // FPS

os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings.test",
    TEST_REDIS_URL=REDIS_URL,
    TEST_KEY_PREFIX=KEY_PREFIX,
    CELERY_QUEUE=f"{KEY_PREFIX}-celery",
    STUN_URLS="",
    TURN_URLS="",
)
if os.environ.get("BENCH_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]

import django  # noqa: E402 -- settings first

django.setup()
import logging  # noqa: E402

for _name in ("aioice", "aiortc"):
    logging.getLogger(_name).setLevel(logging.WARNING)

import av  # noqa: E402
import psutil  # noqa: E402
import redis  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402

from signaling.relay import hooks  # noqa: E402
from signaling.relay.media import is_keyframe  # noqa: E402
from signaling.relay.server import relay_heartbeat_key  # noqa: E402
from telehealth.channels import RELAY_GROUP, participant_inbox  # noqa: E402
from telehealth.services.relay import relay_token_issue  # noqa: E402


def log(msg: str) -> None:
    print(f"[relay_streams] {msg}", file=sys.stderr, flush=True)


# --- media --------------------------------------------------------------------------------------------------------


def encode_loop() -> list[bytes]:
    """``LOOP_S`` seconds of 640x480 VP8: moving stripes plus a noisy block, so frames have realistic sizes."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.bit_rate = 600_000
    codec.time_base = fractions.Fraction(1, FPS)
    codec.gop_size = FPS * LOOP_S + 10
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    row = bytes((x * 3) & 0xFF for x in range(2 * WIDTH))
    frames: list[bytes] = []
    for i in range(FPS * LOOP_S):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for index, plane in enumerate(frame.planes):
            rows = HEIGHT if index == 0 else HEIGHT // 2
            if index == 0:
                shift = (i * 4) % WIDTH
                data = bytearray(row[shift : shift + plane.line_size] * rows)
                noise = os.urandom(160 * 120)
                for y in range(120):
                    start = (180 + y) * plane.line_size + 240
                    data[start : start + 160] = noise[y * 160 : (y + 1) * 160]
                plane.update(bytes(data))
            else:
                plane.update(bytes([128]) * plane.line_size * rows)
        frame.pts = i
        frame.time_base = codec.time_base
        if i == 0:
            frame.pict_type = av.video.frame.PictureType.I
        frames.append(b"".join(bytes(p) for p in codec.encode(frame)))
    assert not frames[0][0] & 1, "the loop starts with a key frame"
    return frames


class LoopedVideo(MediaStreamTrack):
    """Sends the pre-encoded loop as ``av.Packet`` (the sender packs, never encodes), paced at 30 fps."""

    kind = "video"

    def __init__(self, frames: list[bytes]) -> None:
        super().__init__()
        self.frames = frames
        self.count = 0
        self.index = 0
        self.start: float | None = None
        self.sent: list[float] = []  # send time of frame number n (pts / FRAME_TICKS)
        self.by_hash: dict[str, int] = {}

    def keyframe(self) -> None:
        self.index = 0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.monotonic()
        wait = self.start + self.count / FPS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        data = self.frames[self.index]
        self.index = (self.index + 1) % len(self.frames)
        packet = av.Packet(data)
        packet.pts = self.count * FRAME_TICKS
        packet.time_base = fractions.Fraction(1, 90000)
        self.sent.append(time.monotonic())
        if self.index == 1:  # a key frame: remember which frame number carried it (forward-mode latency anchor)
            self.by_hash[hashlib.sha256(data).hexdigest()] = self.count
        self.count += 1
        return packet


@dataclass
class Viewer:
    publisher: LoopedVideo
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (arrival, ts in 90 kHz since first)
    anchor: int | None = None  # forward mode: publisher frame number of the viewer's first frame

    def on_frame(self, codec: Any, frame: Any) -> None:
        if not self.arrivals and codec.mimeType.lower() == "video/vp8" and is_keyframe(codec, frame.data):
            self.anchor = self.publisher.by_hash.get(hashlib.sha256(frame.data).hexdigest())
        self.arrivals.append((time.monotonic(), frame.timestamp))

    def window(self, start: float, end: float) -> tuple[int, list[float]]:
        """Frames that arrived in [start, end) and their latencies in ms. With an anchor (forwarded VP8: the first
        frame's bytes name the publisher frame) latency is exact; without (transcoded: new bytes) it is the delay
        above the stream's fastest frame so far, a lower bound that still shows queues building up."""
        frames, latencies = 0, []
        sent = self.publisher.sent
        if self.anchor is None:
            floor = min(arrival - ts / 90000 for arrival, ts in self.arrivals) if self.arrivals else 0.0
        for arrival, ts in self.arrivals:
            if not start <= arrival < end:
                continue
            frames += 1
            if self.anchor is None:
                latencies.append((arrival - ts / 90000 - floor) * 1000)
                continue
            n = self.anchor + round(ts / FRAME_TICKS)
            if n < len(sent):
                latencies.append((arrival - sent[n]) * 1000)
        return frames, latencies


# --- signaling ----------------------------------------------------------------------------------------------------


class Client:
    """One participant: its inbox on the channel layer and its peer connections."""

    def __init__(self, visit_id: str, participant_id: str) -> None:
        self.visit_id, self.participant_id = visit_id, participant_id
        self.inbox = participant_inbox(visit_id, participant_id)
        self.layer = get_channel_layer()
        self.pcs: list[RTCPeerConnection] = []
        self.answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.channel = ""
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.inbox, self.channel)
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            frame = json.loads(message["text"])
            future = self.answers.pop(frame.get("pc"), None)
            if future is not None and not future.done():
                future.set_result(frame)

    async def negotiate(self, pc_id: str, pc: RTCPeerConnection) -> None:
        self.pcs.append(pc)
        await pc.setLocalDescription(await pc.createOffer())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.answers[pc_id] = future
        await self.layer.group_send(
            RELAY_GROUP,
            {
                "type": "relay.signal",
                "visit_id": self.visit_id,
                "participant_id": self.participant_id,
                "role": "guest",
                "name": "Bench",
                "inbox": self.inbox,
                "token": relay_token_issue(visit_id=self.visit_id, participant_id=self.participant_id),
                "frame": {"kind": "signal", "pc": pc_id, "type": "offer", "sdp": pc.localDescription.sdp},
            },
        )
        frame = await asyncio.wait_for(future, 60)
        if frame.get("kind") != "signal":
            raise RuntimeError(f"relay refused {pc_id}: {frame.get('code')}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=frame["sdp"], type="answer"))

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        for pc in self.pcs:
            await pc.close()
        with contextlib.suppress(Exception):
            await self.layer.group_discard(self.inbox, self.channel)


async def add_visit(frames: list[bytes], fanout: int, mode: str) -> tuple[list[Client], list[Viewer]]:
    visit_id = str(uuid.uuid4())
    publisher = Client(visit_id, "practitioner")
    await publisher.open()
    track = LoopedVideo(frames)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = pc.addTransceiver(track, direction="sendonly").sender
    hooks.sender_on_keyframe_request(sender, track.keyframe)
    await publisher.negotiate("pub", pc)
    clients, viewers = [publisher], []
    for k in range(fanout):
        pid = "patient" if k == 0 else f"guest-{uuid.uuid4().hex}"
        viewer_client = Client(visit_id, pid)
        await viewer_client.open()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = pc.addTransceiver("video", direction="recvonly")
        if mode == "transcode":
            caps = RTCRtpReceiver.getCapabilities("video").codecs
            transceiver.setCodecPreferences([c for c in caps if c.mimeType == "video/H264"])
        viewer = Viewer(track)
        hooks.receiver_tap(transceiver.receiver, viewer.on_frame)  # counted, never decoded
        await viewer_client.negotiate("sub:practitioner", pc)
        clients.append(viewer_client)
        viewers.append(viewer)
    return clients, viewers


# --- the relay process --------------------------------------------------------------------------------------------


def start_relay(log_path: Path) -> subprocess.Popen[bytes]:
    r = redis.Redis.from_url(REDIS_URL)
    r.delete(relay_heartbeat_key())
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "relay", "--max-visits", "100000", "--max-participants", "64"],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        raw = r.get(relay_heartbeat_key())
        if raw and json.loads(raw).get("pid") == proc.pid:
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"relay exited:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    raise RuntimeError("relay did not start")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


# --- the run ------------------------------------------------------------------------------------------------------


async def run_mode(
    mode: str, relay: psutil.Process, frames: list[bytes], args: argparse.Namespace
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the largest sustained step, the first step measured)."""
    clients: list[Client] = []
    viewers: list[Viewer] = []
    me = psutil.Process()
    best: dict[str, Any] | None = None
    first: dict[str, Any] | None = None
    streams = args.start_forward if mode == "forward" else args.start_transcode
    try:
        while streams <= args.max_streams:
            while len(viewers) < streams:
                new_clients, new_viewers = await add_visit(frames, args.fanout, mode)
                clients += new_clients
                viewers += new_viewers
            await asyncio.sleep(args.warmup)  # the measurement window itself: not synchronisation
            start, relay_cpu0, me_cpu0 = time.monotonic(), cpu_seconds(relay), cpu_seconds(me)
            await asyncio.sleep(args.window)
            end, relay_cpu, me_cpu = time.monotonic(), cpu_seconds(relay) - relay_cpu0, cpu_seconds(me) - me_cpu0
            fps, latencies = [], []
            for viewer in viewers:
                count, lat = viewer.window(start, end)
                fps.append(count / (end - start))
                latencies += lat
            latencies.sort()
            p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("inf")
            cores = relay_cpu / (end - start)
            step = {
                "benchmark": "relay_streams",
                "mode": mode,
                "streams": len(viewers),
                "publishers": len(viewers) // args.fanout,
                "fanout": args.fanout,
                "relay_cpu_pct": round(100 * cores, 1),
                "client_cpu_pct": round(100 * me_cpu / (end - start), 1),
                "fps_mean": round(statistics.fmean(fps), 2),
                "fps_min": round(min(fps), 2),
                "latency_p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
                "latency_p95_ms": round(p95, 1),
                "streams_per_core": round(len(viewers) / cores, 1) if cores > 0 else None,
            }
            ok = step["fps_mean"] >= 0.9 * FPS and p95 <= 150
            step["sustained"] = ok
            first = first or step
            print(json.dumps(step), flush=True)
            if not ok:
                break
            best = step
            streams = max(streams + args.fanout, int(streams * args.growth))
            streams += -streams % args.fanout
    finally:
        for client in clients:
            await client.close()
    return best, first


async def main_async(args: argparse.Namespace) -> None:
    log("encoding the 640x480 VP8 loop once")
    frames = encode_loop()
    log(f"loop: {len(frames)} frames, {sum(map(len, frames)) * 8 / LOOP_S / 1000:.0f} kbit/s")
    log_path = Path(os.environ.get("BENCH_RELAY_LOG", str(ROOT / ".data" / "relay-bench-relay.log")))
    log_path.parent.mkdir(exist_ok=True)
    proc = start_relay(log_path)
    relay = psutil.Process(proc.pid)
    results: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
    try:
        for mode in args.modes.split(","):
            log(f"mode {mode}")
            results[mode] = await run_mode(mode, relay, frames, args)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    summary: dict[str, Any] = {
        "benchmark": "relay_streams",
        "summary": True,
        "resolution": f"{WIDTH}x{HEIGHT}",
        "fps": FPS,
        "fanout": args.fanout,
    }
    per_core: dict[str, float | None] = {}
    for mode, (best, first) in results.items():
        # Without a sustained step (the host gave the relay too little CPU even for the first), the first step's
        # CPU cost per stream is reported instead, flagged "sustained": false.
        step = best or first or {}
        per_core[mode] = step.get("streams_per_core")
        summary[f"{mode}_max_streams"] = best["streams"] if best else None
        summary[f"{mode}_streams_per_core"] = per_core[mode]
        summary[f"{mode}_sustained"] = best is not None
    forward, transcode = per_core.get("forward"), per_core.get("transcode")
    summary["ratio"] = round(forward / transcode, 1) if forward and transcode else None
    summary["host_load_1m"] = round(os.getloadavg()[0], 2)
    summary["cpus"] = os.cpu_count()
    print(json.dumps(summary), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="forward,transcode")
    parser.add_argument("--fanout", type=int, default=2)
    parser.add_argument("--start-forward", type=int, default=8)
    parser.add_argument("--start-transcode", type=int, default=2)
    parser.add_argument("--growth", type=float, default=1.5)
    parser.add_argument("--max-streams", type=int, default=240)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--window", type=float, default=6)
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
