import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { effectScope, type EffectScope } from "vue";

import { FakeSocket } from "../testing/FakeSocket";
import { FakePeerConnection, fakeMediaEnv, turnIceConfig, type FakeEnvHandle } from "../testing/fakeRtc";
import { VisitSocket, type RosterEntry } from "../telehealth/visitSocket";
import { sourcesFor, useRelayCall, type RelayCall, type RelayCallOptions } from "./useRelayCall";

const VISIT = "7f3c0000-0000-4000-8000-000000000002";
const GUEST = `guest-${"a".repeat(32)}`;
const ICE = turnIceConfig();

let scope: EffectScope;
let fake: FakeEnvHandle;
let server: FakeSocket;
let socket: VisitSocket;

function person(participant_id: string, role: RosterEntry["role"], extra: Partial<RosterEntry> = {}): RosterEntry {
  return { participant_id, role, name: participant_id, admitted: true, muted: false, connected: true, ...extra };
}

const EVERYONE = [person("practitioner", "practitioner"), person("patient", "patient"), person(GUEST, "interpreter")];

async function flush(ms = 0): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

function relayFrames(type?: string): Record<string, unknown>[] {
  return (server.sent as Record<string, unknown>[]).filter(
    (f) => f.kind === "signal" && f.to === "relay" && (type === undefined || f.type === type),
  );
}

let current: RelayCall | null = null;

function pcOf(id: string): FakePeerConnection {
  const pc = current?.peerConnection(id);
  if (!pc) throw new Error(`no open connection ${id}`);
  return pc as unknown as FakePeerConnection;
}

function welcome(role = "practitioner", participantId = role, mode = "relay"): void {
  server = fake.sockets.at(-1) as FakeSocket;
  server.open();
  server.receive({ kind: "welcome", role, participant_id: participantId, status: "in-progress", mode });
}

function makeCall(overrides: Partial<RelayCallOptions> = {}): RelayCall {
  const created = scope.run(() =>
    useRelayCall({
      visitId: VISIT,
      socket,
      env: fake.env,
      iceConfig: async () => ICE,
      random: () => 0.5,
      statsIntervalMs: 1e9,
      ...overrides,
    }),
  );
  if (!created) throw new Error("no call");
  current = created;
  return created;
}

beforeEach(() => {
  vi.useFakeTimers();
  FakePeerConnection.reset();
  fake = fakeMediaEnv((url) => new FakeSocket(url));
  socket = new VisitSocket({ url: fake.env.visitSocketUrl(VISIT), createSocket: (url) => fake.env.createSocket(url) });
  socket.start();
  scope = effectScope();
});

afterEach(() => {
  scope.stop();
  socket.stop();
  vi.useRealTimers();
});

describe("sourcesFor", () => {
  it("lists every other admitted, connected participant", () => {
    const roster = [
      ...EVERYONE,
      person(`guest-${"b".repeat(32)}`, "family", { admitted: false }),
      person(`guest-${"c".repeat(32)}`, "clinician", { connected: false }),
    ];
    expect(sourcesFor(roster, "patient")).toEqual(["practitioner", GUEST]);
  });
});

describe("useRelayCall", () => {
  it("opens one sendonly pub and one recvonly sub per other participant, offering each to the relay", async () => {
    welcome();
    server.receive({ kind: "roster", participants: EVERYONE });
    const call = makeCall();
    await call.start();
    await flush();

    expect(call.pcIds.value).toEqual(["pub", `sub:${GUEST}`, "sub:patient"]);
    expect(relayFrames("offer").map((f) => f.pc).sort()).toEqual(["pub", `sub:${GUEST}`, "sub:patient"]);
    const pub = pcOf("pub");
    expect(pub.config.iceServers).toEqual(ICE.iceServers);
    expect(pub.transceivers.map((t) => [t.direction, t.sender.track?.kind])).toEqual([
      ["sendonly", "audio"],
      ["sendonly", "video"],
    ]);
    const sub = pcOf("sub:patient");
    expect(sub.transceivers.map((t) => [t.direction, t.sender.track])).toEqual([
      ["recvonly", null],
      ["recvonly", null],
    ]);

    // Candidates trickle to the relay, named by connection.
    sub.gather("candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host");
    sub.gather(null);
    expect(relayFrames("candidate").filter((f) => f.pc === "sub:patient").map((f) => f.candidate)).toEqual([
      { candidate: "candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: null },
      null,
    ]);

    // The relay's answer goes to its own connection only.
    server.receive({ kind: "signal", from: "relay", pc: "sub:patient", type: "answer", sdp: "v=0 relay answer" });
    await flush();
    expect(sub.remoteDescription?.sdp).toBe("v=0 relay answer");
    expect(pub.remoteDescription).toBeNull();
  });

  it("offers again on the same id with a new connection when no answer comes, backing off 1, 2, 4 s", async () => {
    welcome();
    server.receive({ kind: "roster", participants: [person("practitioner", "practitioner")] });
    const call = makeCall({ answerTimeoutMs: 5000 });
    await call.start();
    await flush();
    expect(relayFrames("offer")).toHaveLength(1);

    await flush(5000); // no answer: the relay restarted
    expect(call.phase.value).toBe("reconnecting");
    await flush(999);
    expect(relayFrames("offer")).toHaveLength(1);
    await flush(1);
    expect(relayFrames("offer")).toHaveLength(2);
    expect(FakePeerConnection.created[0]!.closed).toBe(true);

    await flush(5000 + 1999);
    expect(relayFrames("offer")).toHaveLength(2);
    await flush(1);
    expect(relayFrames("offer")).toHaveLength(3);
    expect(call.restarts.value).toBe(2);

    // Answered and connected: the next failure starts the backoff from 1 s again.
    const pub = pcOf("pub");
    server.receive({ kind: "signal", from: "relay", pc: "pub", type: "answer", sdp: "v=0 answer" });
    await flush();
    pub.connectionState = "connected";
    pub.onconnectionstatechange?.({} as Event);
    expect(call.phase.value).toBe("connected");
    pub.connectionState = "failed";
    pub.onconnectionstatechange?.({} as Event);
    await flush(1000);
    expect(relayFrames("offer")).toHaveLength(4);
  });

  it("opens and closes sub connections as the roster changes, telling the relay", async () => {
    welcome();
    server.receive({ kind: "roster", participants: EVERYONE.slice(0, 2) });
    const call = makeCall();
    await call.start();
    await flush();
    expect(call.pcIds.value).toEqual(["pub", "sub:patient"]);

    server.receive({ kind: "roster", participants: EVERYONE });
    await flush();
    expect(call.pcIds.value).toEqual(["pub", `sub:${GUEST}`, "sub:patient"]);
    const guestPc = pcOf(`sub:${GUEST}`);

    server.receive({ kind: "roster", participants: EVERYONE.slice(0, 2) });
    await flush();
    expect(call.pcIds.value).toEqual(["pub", "sub:patient"]);
    expect(guestPc.closed).toBe(true);
    expect(relayFrames("close").map((f) => f.pc)).toEqual([`sub:${GUEST}`]);
    expect(call.remotes.value[GUEST]).toBeUndefined();
  });

  it("a guest waits without any connection until admitted, then joins the relay", async () => {
    welcome("interpreter", GUEST);
    server.receive({ kind: "roster", participants: [...EVERYONE.slice(0, 2), person(GUEST, "interpreter", { admitted: false })] });
    const call = makeCall();
    await call.start();
    await flush();
    expect(call.phase.value).toBe("waiting");
    expect(FakePeerConnection.created).toHaveLength(0);

    server.receive({ kind: "roster", participants: EVERYONE });
    await flush();
    expect(call.pcIds.value).toEqual(["pub", "sub:patient", "sub:practitioner"]);
    expect(call.phase.value).toBe("connecting");
  });

  it("stops the microphone on the wire when the practitioner mutes this side, and keeps it muted", async () => {
    welcome("patient");
    server.receive({ kind: "roster", participants: EVERYONE });
    const call = makeCall();
    await call.start();
    await flush();
    const pub = pcOf("pub");
    const mic = call.localStream.value!.getAudioTracks()[0]!;

    server.receive({ kind: "muted", participant_id: "patient", by: "practitioner", audio: false });
    await flush();
    expect(call.mutedByPractitioner.value).toBe(true);
    expect(call.muted.value).toBe(true);
    expect(mic.enabled).toBe(false);
    expect(pub.transceivers[0]!.sender.track).toBeNull();
    call.toggleMute();
    expect(call.muted.value).toBe(true);

    // Allowed again: the user unmutes themselves.
    server.receive({ kind: "muted", participant_id: "patient", by: "practitioner", audio: true });
    await flush();
    expect(call.muted.value).toBe(true);
    call.toggleMute();
    await flush();
    expect(call.muted.value).toBe(false);
    expect(mic.enabled).toBe(true);
    expect(pub.transceivers[0]!.sender.track).toBe(mic);
  });

  it("handles relay errors: an unknown participant's sub is dropped, a busy relay is offered again later", async () => {
    welcome();
    server.receive({ kind: "roster", participants: EVERYONE });
    const call = makeCall();
    await call.start();
    await flush();
    server.receive({ kind: "relay-error", pc: `sub:${GUEST}`, code: "unknown_participant", detail: "not publishing" });
    await flush();
    expect(call.pcIds.value).toEqual(["pub", "sub:patient"]);

    const offers = relayFrames("offer").length;
    server.receive({ kind: "relay-error", pc: "pub", code: "overloaded", detail: "busy" });
    await flush();
    expect(call.relayError.value).toMatch(/busy/);
    await flush(1000);
    expect(relayFrames("offer")).toHaveLength(offers + 1);
  });

  it("counts frames decoded per participant and highlights the loudest above the threshold", async () => {
    welcome();
    server.receive({ kind: "roster", participants: EVERYONE });
    const call = makeCall();
    await call.start();
    await flush();
    const stats = (frames: number, energy: number, duration: number) =>
      new Map<string, Record<string, unknown>>([
        ["IV", { type: "inbound-rtp", kind: "video", framesDecoded: frames }],
        ["IA", { type: "inbound-rtp", kind: "audio", audioLevel: 0, totalAudioEnergy: energy, totalSamplesDuration: duration }],
      ]);
    pcOf("sub:patient").stats = stats(10, 0, 1);
    pcOf(`sub:${GUEST}`).stats = stats(20, 0, 1);
    await call.sample();
    expect(call.remotes.value.patient?.framesDecoded).toBe(10);
    expect(call.remotes.value[GUEST]?.framesDecoded).toBe(20);
    expect(call.activeSpeaker.value).toBeNull();

    // The guest speaks: RMS over the interval sqrt(0.01 / 1) = 0.1, above the threshold.
    pcOf("sub:patient").stats = stats(40, 0, 2);
    pcOf(`sub:${GUEST}`).stats = stats(50, 0.01, 2);
    await call.sample();
    expect(call.remotes.value.patient?.framesDecoded).toBe(40);
    expect(call.activeSpeaker.value).toBe(GUEST);
  });

  it("closes everything and stays away when this participant is removed (4411)", async () => {
    welcome("interpreter", GUEST);
    server.receive({ kind: "roster", participants: EVERYONE });
    const call = makeCall();
    await call.start();
    await flush();
    expect(call.pcIds.value).toHaveLength(3);
    server.serverClose(4411);
    await flush(10_000);
    expect(call.phase.value).toBe("removed");
    expect(call.pcIds.value).toEqual([]);
    expect(FakePeerConnection.created.every((pc) => pc.closed)).toBe(true);
    expect(fake.sockets).toHaveLength(1);
  });
});
