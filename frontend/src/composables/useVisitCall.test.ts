import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { effectScope, type EffectScope } from "vue";

import type { CallQualityStats } from "../api/types";
import { settle } from "../testing/app";
import { FakeSocket } from "../testing/FakeSocket";
import { FakePeerConnection, FakeStream, FakeTrack, connectedStats, fakeMediaEnv, turnIceConfig, type FakeEnvHandle } from "../testing/fakeRtc";
import { VisitSocket } from "../telehealth/visitSocket";
import { useVisitCall, type VisitCall, type VisitCallOptions } from "./useVisitCall";

const VISIT = "7f3c0000-0000-4000-8000-000000000001";

const ICE = turnIceConfig();

let scope: EffectScope;
let fake: FakeEnvHandle;
let server: FakeSocket;
let socket: VisitSocket;
let reports: CallQualityStats[];
let iceFetches: number;

function frames(kind?: string): Record<string, unknown>[] {
  return (server.sent as Record<string, unknown>[]).filter((f) => kind === undefined || f.kind === kind);
}

function signals(type: string): Record<string, unknown>[] {
  return frames("signal").filter((f) => f.type === type);
}

function connect(status = "in-progress", role: "patient" | "practitioner" = "practitioner"): void {
  server = fake.sockets.at(-1) as FakeSocket;
  server.open();
  server.receive({ kind: "welcome", role, participant_id: role, status });
}

function makeCall(overrides: Partial<VisitCallOptions> = {}): VisitCall {
  const created = scope.run(() =>
    useVisitCall({
      visitId: VISIT,
      role: "practitioner",
      socket,
      env: fake.env,
      iceConfig: async () => {
        iceFetches += 1;
        return ICE;
      },
      report: async (_id, stats) => {
        reports.push(stats);
      },
      statsIntervalMs: 1e9,
      ...overrides,
    }),
  );
  if (!created) throw new Error("no call");
  return created;
}

beforeEach(() => {
  FakePeerConnection.reset();
  fake = fakeMediaEnv((url) => new FakeSocket(url));
  socket = new VisitSocket({ url: fake.env.visitSocketUrl(VISIT), createSocket: (url) => fake.env.createSocket(url) });
  socket.start();
  reports = [];
  iceFetches = 0;
  scope = effectScope();
});

afterEach(() => {
  scope.stop();
  socket.stop();
});

describe("useVisitCall, practitioner (impolite offerer)", () => {
  it("offers on a new connection when the patient is present, with the API's ICE servers, and trickles candidates", async () => {
    connect();
    server.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    const call = makeCall();
    await call.start();
    await settle();

    const pc = FakePeerConnection.last();
    expect(pc.config.iceServers).toEqual(ICE.iceServers);
    expect(pc.config.iceTransportPolicy).toBe("all");
    expect(pc.transceivers.map((t) => [t.receiver.track.kind, t.direction, t.sender.track?.kind])).toEqual([
      ["audio", "sendrecv", "audio"],
      ["video", "sendrecv", "video"],
    ]);
    const [offer] = signals("offer");
    expect(offer?.sdp).toMatch(/^v=0 offer/);

    pc.gather("candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host");
    pc.gather(null);
    expect(signals("candidate").map((f) => f.candidate)).toEqual([
      { candidate: "candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: null },
      null,
    ]);

    server.receive({ kind: "signal", type: "answer", sdp: "v=0 answer", from: "patient" });
    server.receive({ kind: "signal", type: "candidate", candidate: { candidate: "candidate:2 1 udp 1 198.51.100.2 4000 typ srflx", sdpMid: "0", sdpMLineIndex: 0 }, from: "patient" });
    await settle();
    expect(pc.remoteDescription?.type).toBe("answer");
    expect(pc.signalingState).toBe("stable");
    expect(pc.addedCandidates).toHaveLength(1);

    pc.setIceState("connected");
    expect(call.phase.value).toBe("connected");
  });

  it("fetches the ICE servers while the camera opens, and says when its offer is out", async () => {
    connect();
    server.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    let openCamera: (() => void) | null = null;
    const slowCamera = { ...fake.env, getUserMedia: (c: MediaStreamConstraints) => new Promise<MediaStream>((resolve) => (openCamera = () => void fake.env.getUserMedia(c).then(resolve))) };
    const call = makeCall({ env: slowCamera });
    const started = call.start();
    await settle();
    expect(iceFetches).toBe(1);
    expect(openCamera).not.toBeNull();
    expect(FakePeerConnection.created).toHaveLength(0);
    expect(call.negotiating.value).toBe(false);

    openCamera!();
    await started;
    await settle();
    expect(signals("offer")).toHaveLength(1);
    expect(call.negotiating.value).toBe(true);
  });

  it("takes prefetched ICE servers for its first connection, and fetches its own when the prefetch failed", async () => {
    connect();
    server.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    const prefetched = { ...ICE, iceServers: [{ urls: ["stun:prefetched.test:3478"] }] };
    const call = makeCall({ prefetchedIce: Promise.resolve({ config: prefetched, fetchedAt: Date.now() }) });
    await call.start();
    await settle();
    expect(iceFetches).toBe(0);
    expect(FakePeerConnection.last().config.iceServers).toEqual(prefetched.iceServers);
    call.stop();

    const fallback = makeCall({ prefetchedIce: Promise.resolve(null) });
    await fallback.start();
    await settle();
    expect(iceFetches).toBe(1);
    expect(FakePeerConnection.last().config.iceServers).toEqual(ICE.iceServers);
  });

  it("forces relay with forceRelay whatever the server's policy", async () => {
    connect();
    server.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    const call = makeCall({ forceRelay: true });
    await call.start();
    expect(FakePeerConnection.last().config.iceTransportPolicy).toBe("relay");
  });

  it("waits for the patient, then starts a fresh connection and offer each time the patient (re)joins", async () => {
    connect();
    const call = makeCall();
    await call.start();
    await settle();
    expect(FakePeerConnection.created).toHaveLength(0);
    expect(call.phase.value).toBe("waiting");

    server.receive({ kind: "peer-joined", participant_id: "patient", role: "patient" });
    await settle();
    const first = FakePeerConnection.last();
    expect(signals("offer")).toHaveLength(1);

    // The patient reloads: its socket leaves, a new one joins.
    server.receive({ kind: "peer-left", participant_id: "patient" });
    expect(first.closed).toBe(true);
    server.receive({ kind: "peer-joined", participant_id: "patient", role: "patient" });
    await settle();
    const second = FakePeerConnection.last();
    expect(second).not.toBe(first);
    expect(signals("offer")).toHaveLength(2);
  });

  it("does not offer before the admit, and starts when the visit becomes in-progress", async () => {
    connect("waiting");
    server.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    const call = makeCall();
    await call.start();
    await settle();
    expect(FakePeerConnection.created).toHaveLength(0);

    server.receive({ kind: "visit-state", status: "in-progress" });
    await settle();
    expect(signals("offer")).toHaveLength(1);
    expect(call.phase.value).toBe("connecting");
  });

  it("ignores a colliding offer from the patient (impolite)", async () => {
    connect();
    server.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    const call = makeCall();
    await call.start();
    await settle();
    const pc = FakePeerConnection.last();
    expect(pc.signalingState).toBe("have-local-offer");
    server.receive({ kind: "signal", type: "offer", sdp: "v=0 patient offer", from: "patient" });
    await settle();
    expect(pc.remoteDescription).toBeNull();
    expect(signals("answer")).toHaveLength(0);
  });

  it("restarts ICE when the connection fails, and when the patient asks for it", async () => {
    connect();
    server.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    const call = makeCall({ restartSpacingMs: 0 });
    await call.start();
    await settle();
    const pc = FakePeerConnection.last();
    server.receive({ kind: "signal", type: "answer", sdp: "v=0 answer", from: "patient" });
    await settle();

    pc.setIceState("failed");
    await settle();
    expect(call.phase.value).toBe("reconnecting");
    expect(pc.restarts).toBe(1);
    expect(signals("offer").at(-1)?.sdp).toMatch(/ice-restart/);
    server.receive({ kind: "signal", type: "answer", sdp: "v=0 answer 2", from: "patient" });
    await settle();

    server.receive({ kind: "signal", type: "restart", from: "patient" });
    await settle();
    expect(pc.restarts).toBe(2);
    expect(signals("offer")).toHaveLength(3);
    expect(call.restarts.value).toBe(2);
  });

  it("renews TURN credentials that are about to expire before an ICE restart", async () => {
    connect();
    server.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    const call = makeCall({ restartSpacingMs: 0 });
    await call.start();
    await settle();
    expect(iceFetches).toBe(1);
    fake.clock.now += 590_000;
    server.receive({ kind: "signal", type: "restart", from: "patient" });
    await settle();
    expect(iceFetches).toBe(2);
    expect(FakePeerConnection.last().restarts).toBe(1);
  });

  it("summarises getStats for the Connection panel and reports at most every 5 s", async () => {
    connect();
    server.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    const call = makeCall();
    await call.start();
    await settle();
    const pc = FakePeerConnection.last();

    pc.stats = connectedStats({ localType: "relay", remoteType: "srflx", framesDecoded: 10, bytesReceived: 1000, bytesSent: 500, packetsReceived: 90, packetsLost: 10 });
    await call.sample();
    expect(call.stats.value).toMatchObject({
      frames_decoded: 10,
      local_candidate_type: "relay",
      remote_candidate_type: "srflx",
      relay: true,
      rtt_ms: 12,
      packet_loss_pct: 10,
      bitrate_in_kbps: null,
      frame_width: 640,
    });
    expect(reports).toHaveLength(1);

    fake.clock.now += 1000;
    pc.stats = connectedStats({ framesDecoded: 40, bytesReceived: 126_000, bytesSent: 63_000, packetsReceived: 190, packetsLost: 10 });
    await call.sample();
    expect(call.stats.value).toMatchObject({ frames_decoded: 40, bitrate_in_kbps: 1000, bitrate_out_kbps: 500, packet_loss_pct: 0 });
    expect(reports).toHaveLength(1);

    fake.clock.now += 4000;
    await call.sample();
    expect(reports).toHaveLength(2);
    expect(reports[1]?.frames_decoded).toBe(40);
    expect(call.videoSeen.value).toBe(true);
  });

  it("ends the call when the visit finishes", async () => {
    connect();
    server.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    const call = makeCall();
    await call.start();
    await settle();
    server.receive({ kind: "visit-state", status: "finished" });
    expect(call.phase.value).toBe("ended");
    expect(FakePeerConnection.last().closed).toBe(true);
  });
});

describe("useVisitCall, patient (polite answerer)", () => {
  it("answers an offer that arrived before the call attached (waiting room), with its own tracks", async () => {
    connect("waiting", "patient");
    server.receive({ kind: "peer-present", participant_id: "practitioner", role: "practitioner" });
    server.receive({ kind: "visit-state", status: "in-progress" });
    server.receive({ kind: "signal", type: "offer", sdp: "v=0 offer 1", from: "practitioner" });
    server.receive({ kind: "signal", type: "candidate", candidate: { candidate: "candidate:9 1 udp 1 203.0.113.9 5000 typ relay", sdpMid: "1", sdpMLineIndex: 1 }, from: "practitioner" });

    const camera = new FakeStream([new FakeTrack("audio"), new FakeTrack("video")]);
    const call = makeCall({ role: "patient", localStream: camera as unknown as MediaStream });
    await call.start();
    await settle();

    expect(fake.userMediaCalls).toHaveLength(0);
    const pc = FakePeerConnection.last();
    expect(pc.remoteDescription?.sdp).toBe("v=0 offer 1");
    expect(pc.transceivers.map((t) => [t.direction, t.sender.track?.kind])).toEqual([
      ["sendrecv", "audio"],
      ["sendrecv", "video"],
    ]);
    expect(signals("answer")).toEqual([{ kind: "signal", type: "answer", sdp: "v=0 answer to v=0 offer 1" }]);
    expect(signals("offer")).toHaveLength(0);
    expect(pc.addedCandidates).toHaveLength(1);
    expect(call.remoteStream.value?.getTracks()).toHaveLength(2);
  });

  it("drops its connection when the doctor rejoins, and answers the doctor's fresh offer", async () => {
    connect("in-progress", "patient");
    const call = makeCall({ role: "patient" });
    await call.start();
    server.receive({ kind: "peer-joined", participant_id: "practitioner", role: "practitioner" });
    server.receive({ kind: "signal", type: "offer", sdp: "v=0 offer 1", from: "practitioner" });
    await settle();
    const first = FakePeerConnection.last();
    expect(first.remoteDescription?.sdp).toBe("v=0 offer 1");

    server.receive({ kind: "peer-joined", participant_id: "practitioner", role: "practitioner" });
    server.receive({ kind: "signal", type: "offer", sdp: "v=0 offer 1b", from: "practitioner" });
    await settle();
    expect(first.closed).toBe(true);
    expect(FakePeerConnection.last().remoteDescription?.sdp).toBe("v=0 offer 1b");
    expect(signals("answer")).toHaveLength(2);
  });

  it("asks the doctor for an ICE restart when its connection fails", async () => {
    connect("in-progress", "patient");
    server.receive({ kind: "peer-present", participant_id: "practitioner", role: "practitioner" });
    const call = makeCall({ role: "patient" });
    await call.start();
    server.receive({ kind: "signal", type: "offer", sdp: "v=0 offer 1", from: "practitioner" });
    await settle();
    FakePeerConnection.last().setIceState("failed");
    await settle();
    expect(signals("restart")).toEqual([{ kind: "signal", type: "restart" }]);
    expect(FakePeerConnection.last().restarts).toBe(0);
  });

  it("falls back to sound only when the camera cannot start", async () => {
    fake = fakeMediaEnv((url) => new FakeSocket(url), { fail: { video: "NotReadableError" } });
    socket = new VisitSocket({ url: fake.env.visitSocketUrl(VISIT), createSocket: (url) => fake.env.createSocket(url) });
    socket.start();
    connect("in-progress", "patient");
    const call = makeCall({ role: "patient" });
    await call.start();
    expect(call.audioOnly.value).toBe(true);
    expect(call.mediaError.value).toContain("in use by another application");
    expect(call.localStream.value?.getVideoTracks()).toHaveLength(0);
    expect(call.localStream.value?.getAudioTracks()).toHaveLength(1);
  });
});

describe("useVisitCall media controls", () => {
  async function connectedCall(): Promise<{ call: VisitCall; pc: FakePeerConnection }> {
    connect();
    server.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    const call = makeCall();
    await call.start();
    await settle();
    return { call, pc: FakePeerConnection.last() };
  }

  it("mutes and turns the camera off by disabling tracks, telling the other side", async () => {
    const { call } = await connectedCall();
    call.toggleMute();
    call.toggleCamera();
    expect(call.localStream.value?.getAudioTracks()[0]?.enabled).toBe(false);
    expect(call.localStream.value?.getVideoTracks()[0]?.enabled).toBe(false);
    expect(frames("media").at(-1)).toEqual({ kind: "media", audio: false, video: false, screen: false });
    call.toggleMute();
    expect(frames("media").at(-1)).toMatchObject({ audio: true });
  });

  it("shares the screen on the video sender and goes back to the camera when sharing ends", async () => {
    const screen = new FakeTrack("video", "screen");
    fake.env.getDisplayMedia = async () => new FakeStream([screen]) as unknown as MediaStream;
    const { call, pc } = await connectedCall();
    const camera = call.localStream.value?.getVideoTracks()[0];
    const video = pc.transceivers[1]!;

    await call.startScreenShare();
    expect(video.sender.track).toBe(screen);
    expect(call.sharing.value).toBe(true);
    expect(frames("media").at(-1)).toMatchObject({ screen: true, video: true });

    screen.end();
    await settle();
    expect(video.sender.track).toBe(camera);
    expect(call.sharing.value).toBe(false);
    expect(frames("media").at(-1)).toMatchObject({ screen: false });
  });

  it("switches camera with replaceTrack, stopping the old one, without renegotiating", async () => {
    const { call, pc } = await connectedCall();
    const offers = signals("offer").length;
    const old = call.localStream.value?.getVideoTracks()[0] as unknown as FakeTrack;
    await call.switchCamera("back-camera");
    const fresh = call.localStream.value?.getVideoTracks()[0] as unknown as FakeTrack;
    expect(fresh.deviceId).toBe("back-camera");
    expect(old.readyState).toBe("ended");
    expect(pc.transceivers[1]?.sender.track).toBe(fresh);
    await settle();
    expect(signals("offer")).toHaveLength(offers);
  });

  it("goes audio-only (no video on the sender, camera stopped) and back", async () => {
    const { call, pc } = await connectedCall();
    const camera = call.localStream.value?.getVideoTracks()[0] as unknown as FakeTrack;
    await call.setAudioOnly(true);
    expect(pc.transceivers[1]?.sender.track).toBeNull();
    expect(camera.readyState).toBe("ended");
    expect(frames("media").at(-1)).toMatchObject({ video: false });
    await call.setAudioOnly(false);
    expect(pc.transceivers[1]?.sender.track?.kind).toBe("video");
    expect(call.audioOnly.value).toBe(false);
  });
});
