/**
 * Browser media and WebRTC doubles for unit tests (happy-dom has neither): tracks, streams, a peer connection that
 * keeps the signaling state machine of the spec closely enough for perfect negotiation, and a MediaEnv built on them.
 * The real thing is exercised by the Playwright tests in Chromium.
 */
import type { IceConfig } from "../api/types";
import type { MediaEnv } from "../telehealth/env";
import type { WebSocketLike } from "../realtime/RealtimeClient";

let nextId = 1;

export class FakeTrack {
  readonly id = `track-${nextId++}`;
  enabled = true;
  readyState: "live" | "ended" = "live";
  private listeners = new Map<string, (() => void)[]>();

  constructor(
    readonly kind: "audio" | "video",
    readonly deviceId = `${kind}-default`,
    readonly label = "",
  ) {}

  stop(): void {
    this.readyState = "ended";
  }

  getSettings(): { deviceId: string } {
    return { deviceId: this.deviceId };
  }

  addEventListener(type: string, listener: () => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  /** The browser ends the track (e.g. "Stop sharing" on a screen share). */
  end(): void {
    this.readyState = "ended";
    for (const listener of this.listeners.get("ended") ?? []) listener();
  }
}

export class FakeStream {
  readonly id = `stream-${nextId++}`;
  private tracks: FakeTrack[];

  constructor(tracks: FakeTrack[] = []) {
    this.tracks = [...tracks];
  }

  getTracks(): FakeTrack[] {
    return [...this.tracks];
  }

  getAudioTracks(): FakeTrack[] {
    return this.tracks.filter((t) => t.kind === "audio");
  }

  getVideoTracks(): FakeTrack[] {
    return this.tracks.filter((t) => t.kind === "video");
  }

  addTrack(track: FakeTrack): void {
    if (!this.tracks.includes(track)) this.tracks.push(track);
  }
}

export class FakeSender {
  setStreamsCalls = 0;
  constructor(public track: FakeTrack | null) {}

  async replaceTrack(track: FakeTrack | null): Promise<void> {
    this.track = track;
  }

  setStreams(): void {
    this.setStreamsCalls += 1;
  }
}

export class FakeTransceiver {
  readonly sender: FakeSender;
  readonly receiver: { track: FakeTrack };
  currentDirection: string | null = null;

  constructor(
    kind: "audio" | "video",
    track: FakeTrack | null,
    public direction: string,
  ) {
    this.sender = new FakeSender(track);
    this.receiver = { track: new FakeTrack(kind) };
  }
}

type Handler<E> = ((event: E) => void) | null;

export class FakeCandidate {
  constructor(
    readonly candidate: string,
    readonly sdpMid: string | null = "0",
    readonly sdpMLineIndex: number | null = 0,
  ) {}

  get type(): string {
    return / typ (\w+)/.exec(this.candidate)?.[1] ?? "host";
  }

  toJSON() {
    return { candidate: this.candidate, sdpMid: this.sdpMid, sdpMLineIndex: this.sdpMLineIndex, usernameFragment: null };
  }
}

export class FakePeerConnection {
  static created: FakePeerConnection[] = [];

  signalingState: RTCSignalingState = "stable";
  iceConnectionState: RTCIceConnectionState = "new";
  connectionState: RTCPeerConnectionState = "new";
  iceGatheringState: RTCIceGatheringState = "new";
  localDescription: { type: string; sdp: string } | null = null;
  remoteDescription: { type: string; sdp: string } | null = null;
  readonly transceivers: FakeTransceiver[] = [];
  readonly addedCandidates: (RTCIceCandidateInit | null)[] = [];
  readonly dataChannels: string[] = [];
  closed = false;
  restartRequested = false;
  restarts = 0;
  stats = new Map<string, Record<string, unknown>>();
  onicecandidate: Handler<{ candidate: FakeCandidate | null }> = null;
  ontrack: Handler<{ track: FakeTrack; streams: FakeStream[] }> = null;
  onnegotiationneeded: Handler<Event> = null;
  oniceconnectionstatechange: Handler<Event> = null;
  onconnectionstatechange: Handler<Event> = null;
  onicegatheringstatechange: Handler<Event> = null;
  private offers = 0;
  private negotiationQueued = false;

  constructor(public config: RTCConfiguration) {
    FakePeerConnection.created.push(this);
  }

  static reset(): void {
    FakePeerConnection.created = [];
  }

  static last(): FakePeerConnection {
    const pc = FakePeerConnection.created.at(-1);
    if (!pc) throw new Error("no peer connection created");
    return pc;
  }

  private needNegotiation(): void {
    if (this.negotiationQueued) return;
    this.negotiationQueued = true;
    queueMicrotask(() => {
      this.negotiationQueued = false;
      if (!this.closed && this.signalingState === "stable") this.onnegotiationneeded?.({} as Event);
    });
  }

  addTransceiver(trackOrKind: FakeTrack | "audio" | "video", init: { direction?: string } = {}): FakeTransceiver {
    const kind = typeof trackOrKind === "string" ? trackOrKind : trackOrKind.kind;
    const track = typeof trackOrKind === "string" ? null : trackOrKind;
    const transceiver = new FakeTransceiver(kind, track, init.direction ?? "sendrecv");
    this.transceivers.push(transceiver);
    this.needNegotiation();
    return transceiver;
  }

  getTransceivers(): FakeTransceiver[] {
    return [...this.transceivers];
  }

  createDataChannel(label: string): void {
    this.dataChannels.push(label);
  }

  async createOffer(): Promise<{ type: "offer"; sdp: string }> {
    this.offers += 1;
    return { type: "offer", sdp: `v=0 offer ${this.offers}${this.restartRequested ? " ice-restart" : ""}` };
  }

  async setLocalDescription(description?: { type: string; sdp: string }): Promise<void> {
    if (this.closed) throw new DOMException("closed", "InvalidStateError");
    let desc = description;
    if (!desc) {
      desc =
        this.signalingState === "have-remote-offer"
          ? { type: "answer", sdp: `v=0 answer to ${this.remoteDescription?.sdp ?? ""}` }
          : await this.createOffer();
    }
    this.localDescription = desc;
    if (desc.type === "offer") {
      this.signalingState = "have-local-offer";
      this.restartRequested = false;
    } else {
      this.signalingState = "stable";
      for (const t of this.transceivers) t.currentDirection = t.direction;
    }
  }

  async setRemoteDescription(description: { type: string; sdp: string }): Promise<void> {
    if (this.closed) throw new DOMException("closed", "InvalidStateError");
    this.remoteDescription = description;
    if (description.type === "offer") {
      // An offer in have-local-offer rolls the local one back (the polite peer).
      if (this.transceivers.length === 0) {
        for (const kind of ["audio", "video"] as const) {
          const transceiver = new FakeTransceiver(kind, null, "recvonly");
          this.transceivers.push(transceiver);
          this.ontrack?.({ track: transceiver.receiver.track, streams: [] });
        }
      }
      this.signalingState = "have-remote-offer";
    } else {
      this.signalingState = "stable";
      for (const t of this.transceivers) t.currentDirection = t.direction;
    }
  }

  async addIceCandidate(candidate?: RTCIceCandidateInit): Promise<void> {
    if (!this.remoteDescription) throw new DOMException("no remote description", "InvalidStateError");
    this.addedCandidates.push(candidate ?? null);
  }

  restartIce(): void {
    this.restarts += 1;
    this.restartRequested = true;
    this.needNegotiation();
  }

  setConfiguration(config: RTCConfiguration): void {
    this.config = config;
  }

  async getStats(): Promise<Map<string, Record<string, unknown>>> {
    return new Map(this.stats);
  }

  close(): void {
    this.closed = true;
    this.signalingState = "closed";
  }

  // --- what the network does
  gather(candidate: string | null): void {
    this.onicecandidate?.({ candidate: candidate === null ? null : new FakeCandidate(candidate) });
  }

  setIceState(state: RTCIceConnectionState): void {
    this.iceConnectionState = state;
    this.oniceconnectionstatechange?.({} as Event);
  }

  setGatheringState(state: RTCIceGatheringState): void {
    this.iceGatheringState = state;
    this.onicegatheringstatechange?.({} as Event);
  }
}

export interface FakeMediaOptions {
  /** getUserMedia fails for this kind with this DOMException name. */
  fail?: Partial<Record<"audio" | "video", string>>;
  devices?: { kind: MediaDeviceKind; deviceId: string; label: string }[];
  display?: () => FakeStream;
}

export interface FakeEnvHandle {
  env: MediaEnv;
  /** The time env.now() returns (ms). */
  clock: { now: number };
  sockets: WebSocketLike[];
  userMediaCalls: MediaStreamConstraints[];
}

/** A MediaEnv for tests: fake getUserMedia/getDisplayMedia/peer connections, a settable clock, a socket factory. */
export function fakeMediaEnv(
  createSocket: (url: string) => WebSocketLike,
  options: FakeMediaOptions = {},
): FakeEnvHandle {
  const clock = { now: 1_000_000 };
  const sockets: WebSocketLike[] = [];
  const userMediaCalls: MediaStreamConstraints[] = [];
  const env: MediaEnv = {
    async getUserMedia(constraints) {
      userMediaCalls.push(constraints);
      const tracks: FakeTrack[] = [];
      for (const kind of ["audio", "video"] as const) {
        const wanted = constraints[kind];
        if (!wanted) continue;
        const failure = options.fail?.[kind];
        if (failure) throw new DOMException(`${kind} failed`, failure);
        const exact = typeof wanted === "object" ? (wanted.deviceId as { exact?: string } | undefined)?.exact : undefined;
        tracks.push(new FakeTrack(kind, exact ?? `${kind}-default`));
      }
      return new FakeStream(tracks) as unknown as MediaStream;
    },
    async getDisplayMedia() {
      return (options.display?.() ?? new FakeStream([new FakeTrack("video", "screen")])) as unknown as MediaStream;
    },
    async enumerateDevices() {
      return (options.devices ?? []) as unknown as MediaDeviceInfo[];
    },
    onDeviceChange: () => () => undefined,
    createPeerConnection: (config) => new FakePeerConnection(config) as unknown as RTCPeerConnection,
    createMediaStream: (tracks = []) => new FakeStream(tracks as unknown as FakeTrack[]) as unknown as MediaStream,
    createSocket(url) {
      const socket = createSocket(url);
      sockets.push(socket);
      return socket;
    },
    createAudioContext: () => null,
    visitSocketUrl: (visitId) => `ws://consulta.test/ws/v1/visits/${visitId}/`,
    now: () => clock.now,
  };
  return { env, clock, sockets, userMediaCalls };
}

/** ICE servers as the API gives them: one TURN server whose credentials last ten minutes from now. */
export function turnIceConfig(): IceConfig {
  return {
    iceServers: [{ urls: ["turn:turn.test:3478?transport=udp"], username: "1700000000:7", credential: "c2VjcmV0" }],
    iceTransportPolicy: "all",
    expiresAt: new Date(Date.now() + 600_000).toISOString(),
    ttlSeconds: 600,
  };
}

/** A getStats report of a connected call: the selected pair, both candidates, inbound video/audio, outbound. */
export function connectedStats(options: {
  localType?: string;
  remoteType?: string;
  framesDecoded?: number;
  bytesReceived?: number;
  bytesSent?: number;
  packetsLost?: number;
  packetsReceived?: number;
  rtt?: number;
}): Map<string, Record<string, unknown>> {
  return new Map<string, Record<string, unknown>>([
    ["T1", { id: "T1", type: "transport", selectedCandidatePairId: "CP1" }],
    [
      "CP1",
      {
        id: "CP1",
        type: "candidate-pair",
        localCandidateId: "L1",
        remoteCandidateId: "R1",
        state: "succeeded",
        nominated: true,
        currentRoundTripTime: options.rtt ?? 0.012,
      },
    ],
    ["CP2", { id: "CP2", type: "candidate-pair", localCandidateId: "L2", remoteCandidateId: "R1", state: "failed" }],
    ["L1", { id: "L1", type: "local-candidate", candidateType: options.localType ?? "host" }],
    ["L2", { id: "L2", type: "local-candidate", candidateType: "srflx" }],
    ["R1", { id: "R1", type: "remote-candidate", candidateType: options.remoteType ?? "host" }],
    [
      "IV",
      {
        id: "IV",
        type: "inbound-rtp",
        kind: "video",
        framesDecoded: options.framesDecoded ?? 0,
        framesPerSecond: 30,
        frameWidth: 640,
        frameHeight: 480,
        bytesReceived: options.bytesReceived ?? 0,
        packetsLost: options.packetsLost ?? 0,
        packetsReceived: options.packetsReceived ?? 0,
        jitter: 0.004,
      },
    ],
    ["IA", { id: "IA", type: "inbound-rtp", kind: "audio", bytesReceived: 0, packetsLost: 0, packetsReceived: 0, jitter: 0.002 }],
    ["OV", { id: "OV", type: "outbound-rtp", kind: "video", bytesSent: options.bytesSent ?? 0 }],
  ]);
}
