"""Video visit start-up: time from the doctor's Admit click to the first decoded video frame, on both sides.

Reproduce: ``.venv/bin/python benchmarks/telehealth_admit_to_frame.py`` (``make bench`` runs it with the others;
3-8 minutes, depending on the machine's load). Options: ``--runs 10`` (measured runs per mode), ``--modes
direct,relay``, ``--warmup 1`` (unmeasured runs per mode first), ``--dump FILE`` (append every run's page
timelines, in ms after the click, as JSON lines), ``--frontend-dist DIR`` (a built front end; default
``$FRONTEND_DIST`` or ``frontend/dist``, built with Vite into a temporary folder if it has no ``index.html``).
Environment:
``BENCH_VIDEO_DATABASE_URL`` (default: ``consulta_video_bench`` on the server of ``BENCH_DATABASE_URL``, i.e.
``postgres://postgres@127.0.0.1:5432/consulta_video_bench``), ``BENCH_REDIS_URL`` (default
``redis://127.0.0.1:6379/7``; key and channel prefix ``consulta-video-bench``), ``BENCH_LOG_LEVEL``.

What one run is (the same flow as tests/browser/test_video_visit.py, through the real app in the system Chromium
with its fake camera and microphone):

1. A fresh video appointment of the demo patient ``patient`` with ``doctor`` is booked by the scheduler (with an
   override reason, so any hour works), and the patient checks in through the telehealth services (consent,
   intake, a passed device check).
2. The patient's page opens ``/visits/<id>/waiting`` (the waiting room: visit socket, camera preview) and the
   doctor's page opens ``/clinic/virtual``. The run waits until both are settled: the patient's visit socket got
   its ``welcome``, the camera preview is open, the patient's events socket is subscribed to ``group:visit.<id>``;
   the doctor's queue shows the patient with an enabled Admit button and the doctor's events socket is subscribed
   to their queue stream.
3. The doctor's Admit button is clicked. From there on it is all the app: the admit request, the doctor's visit
   page (camera, ICE servers, visit socket), the patient's waiting room following by itself to the visit page,
   offer/answer/candidates over the visit sockets, ICE, DTLS, the first key frame.
4. The visit is ended through ``telehealth.services.visit_end``.

What is measured, in the pages, on one clock (``performance.timeOrigin + performance.now()``: wall-clock
milliseconds; both pages run in one Chromium on one machine). An init script (``page.add_init_script``, in the
benchmark's pages only; nothing in the app) records: the Admit click (a capture-phase click listener on the
doctor's page), every fetch (method and path, ids masked), getUserMedia, each websocket's open and the kinds of
frames in and out (never SDP or candidates), and for each RTCPeerConnection its ICE gathering, ICE and connection
(DTLS) states, description calls, the types of its local candidates and its tracks. Once the remote video track
arrives it polls ``getStats()`` every 10 ms for the first ``framesEncoded`` of the outbound video and the first
``packetsReceived`` / ``framesDecoded`` of the inbound video, and a ``requestVideoFrameCallback`` on the page's
remote ``<video data-testid="remote-video">`` (hooked where the app sets its ``srcObject``) records the first
frame it presents. The figure for a side is ``first remote frame presented - Admit click``: a frame presented has
been decoded, and this callback comes within a frame interval of the decode, whereas the getStats poll lands
10-50 ms after it (a poll interval plus a getStats call on a busy machine). A run where the callback did not fire
falls back to the getStats time (``stats_fallback_runs`` counts them); ``stats_decoded_median_ms`` is the getStats
figure, as a cross-check.
``side: "both"`` is the later of the two sides in each run: the moment both people see each other.

Modes: ``direct`` (``iceTransportPolicy: "all"``; host candidates on loopback win) and ``relay`` (``"relay"``:
media goes through a real coturn that this script starts with ``turn/turnserver.local.conf`` and the flags of
``tests/support/servers.py``'s ``Turn``). The app forces relay either per page with ``?relay=1`` or for everyone
through the server setting ``TELEHEALTH_ICE_TRANSPORT_POLICY=relay``, which the ICE-servers API returns to both
pages. The admit flow drops the query string (the clinic navigates to ``/visits/<id>`` and the waiting room does
too), so relay runs use the server setting: a second daphne with ``TELEHEALTH_ICE_TRANSPORT_POLICY=relay`` serves
the relay runs, and both pages take relay from their first ICE-servers fetch, as a relay-only deployment would.
Both daphnes give the same TURN and STUN servers (TURN REST credentials for this coturn). Every run checks the
selected candidate pair afterwards: relay on both ends in relay runs, no relay in direct runs (a run that does
not is reported as failed). Runs of the two modes alternate, so a change of machine load hits both alike; one
unmeasured warm-up run per mode comes first.

Output (stdout, one JSON line per figure; progress on stderr): first a ``"machine"`` line (load averages, CPUs,
busy share of the host), then per mode and side ``{"bench":"telehealth_admit_to_frame","mode":..,"side":..,
"runs":..,"median_ms":..,"p90_ms":..,"min_ms":..,"max_ms":..,"target_ms":..}`` (plus ``met``, ``failed_runs``,
``stats_decoded_median_ms``, ``stats_fallback_runs``, the host's busy share before the runs), and per mode a
``telehealth_admit_to_frame_profile`` line: the median time after the click of each step on each side, the
critical path of a video visit's start. Targets: 1500 ms direct, 2000 ms relay.

Isolation: its own database (created, migrated and demo-seeded: ehr, scheduling, telehealth), Redis database and
key prefix, daphne and coturn processes on free ports (stopped by pid), a snapshot of the front end in a temporary
folder, the system Chromium (``/usr/bin/chromium``, the browser tests' flags). Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCRIPT = Path(__file__).resolve()


def _sibling_database(url: str, name: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{name}"))


DATABASE_URL = os.environ.get("BENCH_VIDEO_DATABASE_URL") or _sibling_database(
    os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/consulta_bench"), "consulta_video_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
KEY_PREFIX = "consulta-video-bench"  # Redis pub/sub channels are server-wide: a prefix of our own
HARD_LIMIT_S = 840
DEMO_PASSWORD = "consulta-demo"  # noqa: S105 -- the public demo accounts' password (ehr demo seed)
PATIENT, DOCTOR, SCHEDULER = "patient", "doctor", "scheduler"
TARGET_MS = {"direct": 1500.0, "relay": 2000.0}
FRAME_TIMEOUT_MS = 20_000
CHROMIUM = "/usr/bin/chromium"
# The browser tests' flags (tests/browser/conftest.py): fake devices, loopback WebRTC.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
T = TypeVar("T")

# Recorder for the benchmark's pages (never part of the app). Everything goes to window.__bench.seq as
# [name, epoch ms, extra]; names only, never SDP, candidates or page content.
INIT_SCRIPT = r"""
(() => {
  if (window.__bench) return;
  const now = () => performance.timeOrigin + performance.now();
  const B = { seq: [], marks: {}, subscribed: [], pcs: [] };
  window.__bench = B;
  const mark = (name, extra, at) => {
    const t = at ?? now();
    if (!(name in B.marks)) B.marks[name] = t;
    if (B.seq.length < 20000) B.seq.push([name, t, extra ?? null]);
  };
  B.mark = mark;

  window.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button") : null;
    if (button && button.textContent.trim() === "Admit") mark("admit_click");
  }, true);

  const mask = (path) => path.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, ":id")
    .replace(/\/\d+(?=\/|$)/g, "/:n");
  const originalFetch = window.fetch;
  window.fetch = function (input, init) {
    let label = "fetch";
    try {
      const url = new URL(typeof input === "string" || input instanceof URL ? String(input) : input.url, location.href);
      const method = String((init && init.method) || (input && input.method) || "GET").toUpperCase();
      label = `${method} ${mask(url.pathname)}`;
    } catch {}
    mark(`fetch>${label}`);
    return originalFetch.apply(this, arguments).then(
      (response) => { mark(`fetch<${label}`, response.status); return response; },
      (error) => { mark(`fetch!${label}`); throw error; },
    );
  };

  // Lazily loaded scripts (route chunks): when each arrived, by name without its content hash.
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const file = entry.name.split("?")[0].split("/").pop() || "";
      if (!file.endsWith(".js")) continue;
      mark(`res:${file.replace(/-[\w-]{8}\.js$/, "")}`, null, performance.timeOrigin + entry.responseEnd);
    }
  }).observe({ type: "resource", buffered: true });

  const media = navigator.mediaDevices;
  if (media && media.getUserMedia) {
    const original = media.getUserMedia.bind(media);
    media.getUserMedia = (constraints) => {
      mark("gum>");
      return original(constraints).then((stream) => { mark("gum<"); return stream; });
    };
  }

  const NativeSocket = window.WebSocket;
  class BenchSocket extends NativeSocket {
    constructor(url, protocols) {
      super(url, protocols);
      const path = new URL(String(url), location.href).pathname;
      const kind = path.startsWith("/ws/v1/visits/") ? "visit" : path.startsWith("/ws/v1/events") ? "events" : "other";
      this.__kind = kind;
      mark(`ws_new:${kind}`);
      this.addEventListener("open", () => mark(`ws_open:${kind}`));
      this.addEventListener("close", (event) => mark(`ws_close:${kind}`, event.code));
      this.addEventListener("message", (event) => {
        let frame;
        try { frame = JSON.parse(event.data); } catch { return; }
        let name = frame.kind;
        if (frame.kind === "signal") name = `signal:${frame.type}`;
        else if (frame.kind === "event") name = `event:${frame.type}`;
        else if (frame.kind === "visit-state") name = `visit-state:${frame.status}`;
        else if (frame.kind === "subscribed") B.subscribed.push(frame.stream);
        mark(`ws_in:${kind}:${name}`);
      });
    }
    send(data) {
      try {
        const frame = JSON.parse(data);
        mark(`ws_out:${this.__kind}:${frame.kind === "signal" ? `signal:${frame.type}` : frame.kind}`);
      } catch {}
      return super.send(data);
    }
  }
  window.WebSocket = BenchSocket;

  const NativePC = window.RTCPeerConnection;
  class BenchPC extends NativePC {
    constructor(config, ...rest) {
      super(config, ...rest);
      const id = B.pcs.length;
      B.pcs.push(this);
      const pcMark = (name, extra) => mark(`pc:${name}`, { pc: id, ...(extra || {}) });
      pcMark("new", { policy: (config && config.iceTransportPolicy) || "all" });
      this.addEventListener("icegatheringstatechange", () => pcMark(`gathering:${this.iceGatheringState}`));
      this.addEventListener("iceconnectionstatechange", () => pcMark(`ice:${this.iceConnectionState}`));
      this.addEventListener("connectionstatechange", () => pcMark(`conn:${this.connectionState}`));
      this.addEventListener("signalingstatechange", () => pcMark(`sig:${this.signalingState}`));
      this.addEventListener("icecandidate", (event) =>
        pcMark(`cand:${event.candidate ? event.candidate.type : "end"}`));
      let polling = false;
      this.addEventListener("track", (event) => {
        pcMark(`track:${event.track.kind}`);
        if (event.track.kind !== "video" || polling) return;
        polling = true;
        const seen = {};
        const poll = async () => {
          while (this.signalingState !== "closed" && !(seen.decoded && seen.encoded)) {
            let report;
            try { report = await this.getStats(); } catch { return; }
            const at = now();
            report.forEach((s) => {
              if (s.type === "inbound-rtp" && s.kind === "video") {
                if (!seen.packet && (s.packetsReceived || 0) > 0) {
                  seen.packet = true;
                  mark("pc:first_video_packet", { pc: id }, at);
                }
                if (!seen.decoded && (s.framesDecoded || 0) > 0) {
                  seen.decoded = true;
                  mark("pc:first_decoded", { pc: id, keyFramesDecoded: s.keyFramesDecoded || 0 }, at);
                }
              }
              if (s.type === "outbound-rtp" && s.kind === "video" && !seen.encoded && (s.framesEncoded || 0) > 0) {
                seen.encoded = true;
                mark("pc:first_encoded", { pc: id }, at);
              }
            });
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        };
        void poll();
      });
      for (const method of ["setLocalDescription", "setRemoteDescription", "createOffer", "createAnswer"]) {
        const original = this[method].bind(this);
        this[method] = (...args) => {
          pcMark(`${method}>`);
          return original(...args).then((value) => {
            const type = method === "setLocalDescription" ? this.localDescription && this.localDescription.type
              : method === "setRemoteDescription" ? this.remoteDescription && this.remoteDescription.type : null;
            pcMark(`${method}<`, { type });
            return value;
          });
        };
      }
    }
  }
  window.RTCPeerConnection = BenchPC;

  const source = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "srcObject");
  Object.defineProperty(HTMLMediaElement.prototype, "srcObject", {
    configurable: true,
    enumerable: source.enumerable,
    get() { return source.get.call(this); },
    set(value) {
      source.set.call(this, value);
      if (!value || !value.getVideoTracks || !value.getVideoTracks().length) return;
      if (this.getAttribute("data-testid") !== "remote-video" || !this.requestVideoFrameCallback) return;
      this.requestVideoFrameCallback((at, meta) => {
        mark("video:presented", {
          receive: meta.receiveTime ? performance.timeOrigin + meta.receiveTime : null,
          width: meta.width,
        }, performance.timeOrigin + at);
      });
    },
  });

  B.firstAfter = (name, since) => {
    for (const [n, t] of B.seq) if (n === name && t >= since) return t;
    return null;
  };
  /** Candidate types of the selected pair of the connection that decoded video after `since`. */
  B.route = async (since) => {
    const hit = B.seq.find(([n, t]) => n === "pc:first_decoded" && t >= since);
    const pc = hit ? B.pcs[hit[2].pc] : B.pcs[B.pcs.length - 1];
    if (!pc) return null;
    const report = await pc.getStats();
    let pairId = null;
    report.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    const pair = pairId ? report.get(pairId)
      : [...report.values()].find((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded");
    if (!pair) return null;
    const type = (id) => report.get(id)?.candidateType ?? null;
    return { local: type(pair.localCandidateId), remote: type(pair.remoteCandidateId) };
  };
})();
"""


def log(msg: str) -> None:
    print(f"[telehealth_admit_to_frame {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line, separators=(",", ":")), flush=True)


def django_env() -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": DATABASE_URL,
        "TEST_REDIS_URL": REDIS_URL,
        "TEST_KEY_PREFIX": KEY_PREFIX,
        "CELERY_QUEUE": f"{KEY_PREFIX}-celery",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    }


def _die_with_parent() -> None:
    """Children get SIGTERM if this process dies without cleaning up (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def host_busy_share(seconds: float = 1.0) -> float:
    def sample() -> tuple[int, int]:
        user, nice, system, idle, iowait, irq, softirq, steal = (
            int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
        )
        busy = user + nice + system + irq + softirq
        return busy, busy + idle + iowait + steal

    b0, t0 = sample()
    time.sleep(seconds)
    b1, t1 = sample()
    return round((b1 - b0) / max(t1 - t0, 1), 2)


def wait_for_quiet_host(threshold: float = 0.5, timeout: float = 10) -> float:
    """Wait (bounded) until the shared machine is less busy than ``threshold``; return the last busy share."""
    deadline = time.monotonic() + timeout
    share = host_busy_share(0.5)
    while share >= threshold and time.monotonic() < deadline:
        share = host_busy_share(0.5)
    return share


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Child:
    """A server process of ours with its output in a log file; stopped by pid, never by name."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, port: int) -> None:
        self.name = name
        self.port = port
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # safe: no threads are running yet when the children start
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            if port_open(self.port):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not listen on 127.0.0.1:{self.port} within {timeout}s")

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def problems(self) -> list[str]:
        keys = ("ERROR", "Traceback", "CRITICAL")
        benign = "Connection reset by peer"  # coturn: a browser closing its TURN-over-TCP allocation
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if any(k in line for k in keys) and benign not in line]

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._log.close()


def start_coturn(log_dir: Path, secret: str) -> Child:
    """coturn with turn/turnserver.local.conf on a free port and a relay port range of its own (the flags of
    tests/support/servers.py Turn)."""
    port = free_port()
    low = 50000 + (port % 100) * 100
    argv = [
        "turnserver",
        "-c",
        str(ROOT / "turn" / "turnserver.local.conf"),
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        f"--static-auth-secret={secret}",
        f"--min-port={low}",
        f"--max-port={low + 99}",
        f"--pidfile={log_dir / 'coturn.pid'}",
        "--log-file=stdout",
    ]
    turn = Child("coturn", argv, dict(os.environ), log_dir, port)
    turn.wait_ready(15)
    return turn


def start_daphne(name: str, log_dir: Path, extra_env: dict[str, str]) -> Child:
    port = free_port()
    env = {**os.environ, **django_env(), **extra_env}
    argv = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    return Child(name, argv, env, log_dir, port)


def ensure_database() -> None:
    import psycopg

    parts = urllib.parse.urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    if not name.endswith("bench"):
        raise SystemExit(f"refusing to use database {name!r}: the benchmark writes only to a *bench database")
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def prepare_frontend(requested: str | None, log_dir: Path) -> Path:
    """A snapshot of the built front end in the run's folder (a colleague's rebuild cannot change it mid-run)."""
    source = Path(requested or os.environ.get("FRONTEND_DIST") or ROOT / "frontend" / "dist")
    snapshot = log_dir / "dist"
    if (source / "index.html").is_file():
        shutil.copytree(source, snapshot)
        return snapshot
    log(f"{source} has no index.html: building the front end into {snapshot}")
    subprocess.run(
        ["npx", "vite", "build", "--outDir", str(snapshot), "--emptyOutDir"],
        cwd=ROOT / "frontend",
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )
    return snapshot


# --- database work (a worker thread: Playwright's sync API keeps an event loop in the main thread) --------------

_DB = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-db")


def on_db(fn: Callable[[], T]) -> T:
    return _DB.submit(fn).result()


def seed() -> dict[str, Any]:
    """Demo data (idempotent), and nothing left open by an earlier run of this benchmark."""
    from ehr.models import Patient, User
    from ehr.services.demo import demo_seed
    from scheduling.services.demo import demo_seed_scheduling
    from telehealth.models import Visit
    from telehealth.services.demo import demo_seed_telehealth
    from telehealth.services.visits import visit_end, visit_leave

    demo_seed(password=DEMO_PASSWORD)
    demo_seed_scheduling()
    demo_seed_telehealth()
    doctor = User.objects.get(username=DOCTOR)
    for visit in Visit.objects.filter(practitioner=doctor, status__in=["in-progress", "waiting"]):
        if visit.status == "in-progress":
            visit_end(actor=doctor, visit_id=str(visit.pk))
        else:
            visit_leave(actor=visit.patient_user, visit_id=str(visit.pk))
    patient = Patient.objects.get(user__username=PATIENT)
    return {"doctor_id": doctor.pk, "patient_name": patient.given_name}


def book_and_check_in() -> tuple[int, str]:
    """A fresh video appointment with the doctor starting soon (check-in open), checked in through the services."""
    import datetime as dt

    from django.utils import timezone

    from ehr.models import Patient, User
    from scheduling.errors import SlotUnavailable
    from scheduling.models import AppointmentType
    from scheduling.services.booking import appointment_book
    from telehealth.services.visits import visit_check_in, visit_device_check_record

    scheduler = User.objects.get(username=SCHEDULER)
    patient_user = User.objects.get(username=PATIENT)
    first = (timezone.now() + dt.timedelta(minutes=10)).replace(second=0, microsecond=0)
    first -= dt.timedelta(minutes=first.minute % 5)
    for step in range(10):
        try:
            ref = appointment_book(
                actor=scheduler,
                appointment_type_id=AppointmentType.objects.get(code="video-consult").pk,
                patient_id=Patient.objects.get(user=patient_user).pk,
                start=first + dt.timedelta(minutes=5 * step),
                practitioner_id=User.objects.get(username=DOCTOR).pk,
                override_reason="Benchmark of a video visit's start",
            )
            break
        except SlotUnavailable:
            continue
    else:
        raise RuntimeError("no start free for a benchmark video visit in the next hour")
    visit = visit_check_in(
        actor=patient_user, appointment_id=ref.id, consent=True, answers={"reason": "Benchmark", "private": True}
    )
    checks = {"camera": "pass", "microphone": "pass", "speaker": "pass", "turn": "pass"}
    visit_device_check_record(actor=patient_user, visit_id=str(visit.id), result=checks)
    return ref.id, str(visit.id)


def end_visit(visit_id: str) -> None:
    from ehr.models import User
    from telehealth.models import Visit
    from telehealth.services.visits import visit_end, visit_leave

    visit = Visit.objects.get(pk=visit_id)
    if visit.status == "in-progress":
        visit_end(actor=User.objects.get(username=DOCTOR), visit_id=visit_id)
    elif visit.status == "waiting":
        visit_leave(actor=visit.patient_user, visit_id=visit_id)


# --- browser side -----------------------------------------------------------------------------------------------


@dataclass
class Mode:
    name: str
    server: Child
    patient: Any = None  # playwright Page
    doctor: Any = None
    contexts: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@dataclass
class RunResult:
    ok: bool
    patient_ms: float | None = None
    doctor_ms: float | None = None
    patient_decoded_ms: float | None = None
    doctor_decoded_ms: float | None = None
    fallback_sides: list[str] = field(default_factory=list)
    timeline: dict[str, list[list[Any]]] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    route: dict[str, Any] = field(default_factory=dict)
    busy_before: float = 0.0
    error: str = ""


def sign_in(browser: Any, base_url: str, username: str) -> tuple[Any, Any]:
    from playwright.sync_api import expect

    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="America/New_York")
    ctx.set_default_timeout(15_000)
    ctx.add_init_script(INIT_SCRIPT)
    page = ctx.new_page()
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    return ctx, page


SETTLED_PATIENT = """(stream) => {
  const b = window.__bench;
  return Boolean(b && b.marks["ws_in:visit:welcome"] && b.marks["gum<"] && b.subscribed.includes(stream)
    && document.querySelector("[data-testid=queue-position]"));
}"""
SETTLED_DOCTOR = """(stream) => {
  const b = window.__bench;
  return Boolean(b && b.subscribed.includes(stream));
}"""
DECODED_AFTER = """(since) => window.__bench.firstAfter("pc:first_decoded", since) !== null"""
PRESENTED_AFTER = """(since) => window.__bench.firstAfter("video:presented", since) !== null"""

# The critical path, in order: (label, page, mark). Each is the first such mark at or after the click.
STEPS = [
    ("admit_response", "doctor", "fetch<POST /api/v1/telehealth/visits/:id/admit/"),
    ("page_chunk_loaded", "doctor", "res:VideoVisitPage"),
    ("visit_requested", "doctor", "fetch>GET /api/v1/telehealth/visits/:id/"),
    ("visit_loaded", "doctor", "fetch<GET /api/v1/telehealth/visits/:id/"),
    ("camera_open", "doctor", "gum<"),
    ("ice_servers", "doctor", "fetch<POST /api/v1/telehealth/ice-servers/"),
    ("socket_open", "doctor", "ws_open:visit"),
    ("welcome", "doctor", "ws_in:visit:welcome"),
    ("peer_present", "doctor", "ws_in:visit:peer-present"),
    ("pc_created", "doctor", "pc:new"),
    ("offer_sent", "doctor", "ws_out:visit:signal:offer"),
    ("first_candidate", "doctor", "ws_out:visit:signal:candidate"),
    ("answer_received", "doctor", "ws_in:visit:signal:answer"),
    ("ice_checking", "doctor", "pc:ice:checking"),
    ("ice_connected", "doctor", "pc:ice:connected"),
    ("dtls_connected", "doctor", "pc:conn:connected"),
    ("gathering_complete", "doctor", "pc:gathering:complete"),
    ("first_encoded", "doctor", "pc:first_encoded"),
    ("first_video_packet", "doctor", "pc:first_video_packet"),
    ("first_decoded", "doctor", "pc:first_decoded"),
    ("presented", "doctor", "video:presented"),
    ("told_in_progress", "patient", "ws_in:visit:visit-state:in-progress"),
    ("page_chunk_loaded", "patient", "res:VideoVisitPage"),
    ("visit_requested", "patient", "fetch>GET /api/v1/telehealth/visits/:id/"),
    ("visit_loaded", "patient", "fetch<GET /api/v1/telehealth/visits/:id/"),
    ("ice_servers", "patient", "fetch<POST /api/v1/telehealth/ice-servers/"),
    ("pc_created", "patient", "pc:new"),
    ("offer_received", "patient", "ws_in:visit:signal:offer"),
    ("answer_sent", "patient", "ws_out:visit:signal:answer"),
    ("ice_checking", "patient", "pc:ice:checking"),
    ("ice_connected", "patient", "pc:ice:connected"),
    ("dtls_connected", "patient", "pc:conn:connected"),
    ("first_encoded", "patient", "pc:first_encoded"),
    ("first_video_packet", "patient", "pc:first_video_packet"),
    ("first_decoded", "patient", "pc:first_decoded"),
    ("presented", "patient", "video:presented"),
]


def first_after(seq: list[list[Any]], name: str, since: float) -> float | None:
    return next((t for n, t, _ in seq if n == name and t >= since), None)


def one_run(mode: Mode, world: dict[str, Any]) -> RunResult:
    from playwright.sync_api import expect

    busy = wait_for_quiet_host()
    _, visit_id = on_db(book_and_check_in)
    try:
        mode.patient.goto(f"{mode.url}/visits/{visit_id}/waiting")
        mode.doctor.goto(f"{mode.url}/clinic/virtual")
        entry = (
            mode.doctor.get_by_test_id("my-queue").get_by_test_id("queue-entry").filter(has_text=world["patient_name"])
        )
        admit = entry.get_by_role("button", name="Admit")
        expect(admit).to_be_enabled()
        mode.patient.wait_for_function(SETTLED_PATIENT, arg=f"group:visit.{visit_id}")
        mode.doctor.wait_for_function(SETTLED_DOCTOR, arg=f"group:telehealth.queue.{world['doctor_id']}")
        admit.click()
        click = mode.doctor.evaluate("() => window.__bench.marks.admit_click ?? null")
        if click is None:
            return RunResult(ok=False, busy_before=busy, error="the Admit click was not seen by the page")
        for page in (mode.doctor, mode.patient):
            page.wait_for_function(DECODED_AFTER, arg=click, timeout=FRAME_TIMEOUT_MS)
        for page in (mode.doctor, mode.patient):
            with contextlib.suppress(Exception):  # presentation is a side figure; decoding is the measure
                page.wait_for_function(PRESENTED_AFTER, arg=click, timeout=3000)
        seqs = {side: page.evaluate("() => window.__bench.seq") for side, page in _sides(mode)}
        route = {side: page.evaluate("(since) => window.__bench.route(since)", click) for side, page in _sides(mode)}
    finally:
        on_db(lambda: end_visit(visit_id))
        for page in (mode.patient, mode.doctor):
            with contextlib.suppress(Exception):
                page.goto("about:blank")

    result = RunResult(ok=True, busy_before=busy, route=route)
    result.timeline = {
        side: [[name, round(t - click, 1), extra] for name, t, extra in seq if t >= click - 50]
        for side, seq in seqs.items()
    }
    for side in ("patient", "doctor"):
        decoded = first_after(seqs[side], "pc:first_decoded", click)
        presented = first_after(seqs[side], "video:presented", click)
        frame = presented if presented is not None else decoded
        if presented is None:
            result.fallback_sides.append(side)
        setattr(result, f"{side}_ms", None if frame is None else frame - click)
        setattr(result, f"{side}_decoded_ms", None if decoded is None else decoded - click)
    for label, side, name in STEPS:
        at = first_after(seqs[side], name, click)
        if at is not None:
            result.steps[f"{side}.{label}"] = round(at - click, 1)
    relay_pairs = [r for r in route.values() if r and r.get("local") == "relay" and r.get("remote") == "relay"]
    any_relay = any(r and "relay" in (r.get("local"), r.get("remote")) for r in route.values())
    if mode.name == "relay" and len(relay_pairs) != 2:
        result.ok, result.error = False, f"relay forced but the selected pairs were {route}"
    elif mode.name == "direct" and any_relay:
        result.ok, result.error = False, f"direct run went through the relay: {route}"
    return result


def _sides(mode: Mode) -> list[tuple[str, Any]]:
    return [("patient", mode.patient), ("doctor", mode.doctor)]


def summarize(mode: str, results: list[RunResult]) -> None:
    good = [r for r in results if r.ok and r.patient_ms is not None and r.doctor_ms is not None]
    failed = len(results) - len(good)
    busy = round(statistics.mean(r.busy_before for r in results), 2) if results else None
    figures: dict[str, list[float]] = {
        "patient": [r.patient_ms for r in good if r.patient_ms is not None],
        "doctor": [r.doctor_ms for r in good if r.doctor_ms is not None],
        "both": [max(r.patient_ms or 0.0, r.doctor_ms or 0.0) for r in good],
    }
    decoded = {
        "patient": [r.patient_decoded_ms for r in good if r.patient_decoded_ms is not None],
        "doctor": [r.doctor_decoded_ms for r in good if r.doctor_decoded_ms is not None],
        "both": [max(r.patient_decoded_ms or 0.0, r.doctor_decoded_ms or 0.0) for r in good],
    }
    for side, values in figures.items():
        values = sorted(values)
        line: dict[str, Any] = {"bench": "telehealth_admit_to_frame", "mode": mode, "side": side, "runs": len(values)}
        if values:
            median = statistics.median(values)
            line.update(
                median_ms=round(median),
                p90_ms=round(percentile(values, 0.9)),
                min_ms=round(values[0]),
                max_ms=round(values[-1]),
            )
        line["target_ms"] = TARGET_MS[mode]
        line["met"] = bool(values) and statistics.median(values) < TARGET_MS[mode]
        line["failed_runs"] = failed
        line["stats_decoded_median_ms"] = round(statistics.median(decoded[side])) if decoded[side] else None
        line["stats_fallback_runs"] = sum(1 for r in good if r.fallback_sides and side in (*r.fallback_sides, "both"))
        line["host_busy_before"] = busy
        line["load_avg"] = load_average()
        emit(line)
    steps: dict[str, float] = {}
    for key in {k for r in good for k in r.steps}:
        values = [r.steps[key] for r in good if key in r.steps]
        steps[key] = round(statistics.median(values), 1)
    ordered = {f"{side}.{label}": steps[f"{side}.{label}"] for label, side, _ in STEPS if f"{side}.{label}" in steps}
    emit(
        {
            "bench": "telehealth_admit_to_frame_profile",
            "mode": mode,
            "runs": len(good),
            "median_ms_after_click": ordered,
        }
    )
    for r in results:
        if not r.ok:
            log(f"{mode}: failed run: {r.error}")


@contextlib.contextmanager
def servers(log_dir: Path, modes: list[str]) -> Iterator[dict[str, Child]]:
    started: list[Child] = []
    try:
        secret = secrets.token_hex(16)
        turn = start_coturn(log_dir, secret)
        started.append(turn)
        ice_env = {
            "TURN_URLS": f"turn:127.0.0.1:{turn.port}?transport=udp,turn:127.0.0.1:{turn.port}?transport=tcp",
            "STUN_URLS": f"stun:127.0.0.1:{turn.port}",
            "TURN_SECRET": secret,
        }
        out = {}
        for mode in modes:
            policy = "relay" if mode == "relay" else "all"
            daphne = start_daphne(f"daphne-{mode}", log_dir, {**ice_env, "TELEHEALTH_ICE_TRANSPORT_POLICY": policy})
            started.append(daphne)
            out[mode] = daphne
        for daphne in out.values():
            daphne.wait_ready()
        yield out
    finally:
        for child in reversed(started):
            child.stop()
        for child in started:
            for line in child.problems()[:5]:
                log(f"{child.name} log: {line}")


def _alarm(signum: int, frame: Any) -> None:
    raise TimeoutError(f"telehealth_admit_to_frame exceeded its hard limit of {HARD_LIMIT_S}s")


def orchestrate(args: argparse.Namespace) -> None:
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HARD_LIMIT_S)
    started = time.monotonic()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(TARGET_MS):
        raise SystemExit("--modes: a comma-separated list of direct, relay")
    if not Path(CHROMIUM).is_file() or not shutil.which("turnserver"):
        raise SystemExit(f"needs {CHROMIUM} and coturn's turnserver (apt-get install -y chromium coturn)")
    emit(
        {
            "bench": "telehealth_admit_to_frame",
            "machine": {"load_avg": load_average(), "cpus": os.cpu_count(), "host_busy": host_busy_share()},
        }
    )
    log_dir = Path(tempfile.mkdtemp(prefix="consulta-video-bench-"))
    dist = prepare_frontend(args.frontend_dist, log_dir)
    env = django_env()
    env["FRONTEND_DIST"] = str(dist)
    os.environ.update(env)
    ensure_database()
    log("migrating the bench database")
    done = subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "--noinput", "--skip-checks"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{done.stderr[-4000:]}")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    results: dict[str, list[RunResult]] = {m: [] for m in modes}
    clean = False
    try:
        # The servers start first, while this process has no threads yet (their preexec_fn runs after fork).
        with servers(log_dir, modes) as daphnes:
            log("seeding the demo (ehr, scheduling, telehealth)")
            world = on_db(seed)
            _measure(args, modes, daphnes, world, results)
        for name in modes:
            summarize(name, results[name])
        clean = True
    finally:
        signal.alarm(0)
        if clean:
            shutil.rmtree(log_dir, ignore_errors=True)
            log(f"done in {time.monotonic() - started:.0f}s")
        else:
            log(f"done in {time.monotonic() - started:.0f}s; logs kept in {log_dir}")


def _measure(
    args: argparse.Namespace,
    modes: list[str],
    daphnes: dict[str, Child],
    world: dict[str, Any],
    results: dict[str, list[RunResult]],
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            plan: dict[str, Mode] = {}
            for name in modes:
                mode = Mode(name=name, server=daphnes[name])
                pctx, mode.patient = sign_in(browser, mode.url, PATIENT)
                dctx, mode.doctor = sign_in(browser, mode.url, DOCTOR)
                mode.contexts = [pctx, dctx]
                plan[name] = mode
            for i in range(args.warmup):
                for name in modes:
                    r = one_run(plan[name], world)
                    log(f"warm-up {name} {i + 1}: patient {_ms(r.patient_ms)}, doctor {_ms(r.doctor_ms)}")
            for i in range(args.runs):
                for name in modes:
                    try:
                        r = one_run(plan[name], world)
                    except Exception as failure:  # a run that times out is reported, the others go on
                        r = RunResult(ok=False, error=f"{type(failure).__name__}: {str(failure)[:300]}")
                    results[name].append(r)
                    if args.dump:
                        with Path(args.dump).open("a") as out:
                            out.write(json.dumps({"mode": name, "run": i + 1, **asdict(r)}) + "\n")
                    log(
                        f"{name} run {i + 1}/{args.runs}: patient {_ms(r.patient_ms)}, doctor {_ms(r.doctor_ms)}"
                        f" (host busy {r.busy_before:.0%}){'' if r.ok else ' FAILED: ' + r.error}"
                    )
        finally:
            browser.close()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_VIDEO_RUNS", "10")))
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--modes", default="direct,relay")
    parser.add_argument("--frontend-dist", default=None)
    parser.add_argument("--dump", default=None, help="append each run's page timelines (ms after the click) here")
    orchestrate(parser.parse_args())


if __name__ == "__main__":
    main()
