/**
 * The video call of a visit: one RTCPeerConnection between the patient and the practitioner, signaled over the
 * visit socket (docs/signaling-protocol.md).
 *
 * Negotiation ("perfect negotiation"): the practitioner is impolite and the only offerer; the patient is polite and
 * answers. The practitioner adds an audio and a video transceiver (sendrecv) and offers; the patient puts its tracks
 * on the transceivers the offer created and answers, so it never needs to offer itself. Candidates trickle both ways.
 *
 * Recovery:
 * - a peer (re)joins (page reload, new socket): the practitioner starts a new connection and offers; the patient
 *   starts a new connection and waits for that offer. A reloaded page rejoins the in-progress visit this way, with
 *   no new admit. A peer that leaves takes its connection with it: this side closes its own and waits.
 * - ICE fails, or stays disconnected for `disconnectedGraceMs`: the practitioner restarts ICE (new offer, fresh TURN
 *   credentials if the old ones are about to expire); the patient asks for it with a `restart` signal.
 *
 * Media (useLocalMedia, shared with the relay call): mute, camera off, switch camera or microphone (replaceTrack, no
 * renegotiation), screen share (replaceTrack with the display track, back to the camera when sharing ends),
 * audio-only. Each change is told to the peer with a `media` frame.
 *
 * Stats: every `statsIntervalMs` a getStats summary (`stats`, for the Connection panel); every `reportIntervalMs`
 * the latest summary is reported to the API. Never logs SDP, candidates or anything about the patient.
 */
import { computed, getCurrentScope, onScopeDispose, ref, shallowRef, type Ref, type ShallowRef } from "vue";

import { telehealth } from "../api/endpoints";
import type { CallQualityStats, IceConfig } from "../api/types";
import type { PrefetchedIce } from "../stores/visit";
import { summarizeStats, type StatsCounters, type StatsReportLike } from "../telehealth/callStats";
import { mediaEnv, type MediaEnv } from "../telehealth/env";
import type {
  IceCandidateFrame,
  MediaFrame,
  ParticipantRole,
  ServerFrame,
  SignalFrame,
  VisitSocket,
} from "../telehealth/visitSocket";
import { useLocalMedia, type MediaKind } from "./useLocalMedia";

export type { DeviceOption } from "./useLocalMedia";

export interface VisitCallOptions {
  visitId: string;
  role: ParticipantRole;
  socket: VisitSocket;
  /** Force TURN relay (diagnosis, `?relay=1`), whatever the server's policy. */
  forceRelay?: boolean;
  /** A camera/microphone stream already open (the waiting room's preview); otherwise the call opens one. */
  localStream?: MediaStream | null;
  env?: MediaEnv;
  iceConfig?: (visitId: string) => Promise<IceConfig>;
  /**
   * ICE servers fetched ahead (the clinic console's prefetch): used for the first connection when they resolve to
   * a configuration; null (or a failed prefetch) fetches them as usual. Renewals always fetch.
   */
  prefetchedIce?: Promise<PrefetchedIce | null> | null;
  report?: (visitId: string, stats: CallQualityStats) => Promise<unknown>;
  statsIntervalMs?: number;
  reportIntervalMs?: number;
  disconnectedGraceMs?: number;
  /** Least time between two ICE restarts. */
  restartSpacingMs?: number;
}

export interface RemoteMedia {
  audio: boolean;
  video: boolean;
  screen: boolean;
}

export type CallPhase =
  /** Opening the camera, fetching ICE servers. */
  | "starting"
  /** Waiting for the other participant (or for the visit to start). */
  | "waiting"
  | "connecting"
  | "connected"
  /** Media stopped flowing; restarting ICE. */
  | "reconnecting"
  | "ended"
  | "stopped";

/** Renew TURN credentials when less than this is left. */
const CREDENTIAL_MARGIN_MS = 60_000;

/** A local candidate as the wire carries it (null: gathering is complete). */
export function candidateFrame(candidate: RTCIceCandidate | null): IceCandidateFrame | null {
  if (!candidate) return null;
  const init = candidate.toJSON();
  return {
    candidate: init.candidate ?? "",
    sdpMid: init.sdpMid ?? null,
    sdpMLineIndex: init.sdpMLineIndex ?? null,
    usernameFragment: init.usernameFragment ?? null,
  };
}

/** The RTCPeerConnection configuration for these ICE servers (none: host candidates only); `forceRelay`: TURN only. */
export function rtcConfiguration(ice: IceConfig | null, forceRelay: boolean): RTCConfiguration {
  return {
    iceServers: ice?.iceServers ?? [],
    iceTransportPolicy: forceRelay ? "relay" : (ice?.iceTransportPolicy ?? "all"),
  };
}

export function useVisitCall(options: VisitCallOptions) {
  const env = options.env ?? mediaEnv();
  const polite = options.role === "patient";
  const otherRole: ParticipantRole = polite ? "practitioner" : "patient";
  const statsIntervalMs = options.statsIntervalMs ?? 1000;
  const reportIntervalMs = options.reportIntervalMs ?? 5000;
  const disconnectedGraceMs = options.disconnectedGraceMs ?? 3000;
  const restartSpacingMs = options.restartSpacingMs ?? 4000;
  const fetchIce = options.iceConfig ?? ((id: string) => telehealth.iceServers(id));
  const report = options.report ?? ((id: string, stats: CallQualityStats) => telehealth.reportQuality(id, stats));
  const socket = options.socket;

  const phase = ref<CallPhase>("starting");
  const remoteStream: ShallowRef<MediaStream | null> = shallowRef(null);
  const connectionState = ref<RTCPeerConnectionState | "new">("new");
  const iceState = ref<RTCIceConnectionState | "new">("new");
  const remoteMedia: Ref<RemoteMedia> = ref({ audio: true, video: true, screen: false });
  const peerPresent = ref(false);
  const stats: Ref<CallQualityStats | null> = ref(null);
  const callError = ref("");
  const restarts = ref(0);
  /** Frames decoded were seen at least once in this call (for the visit's modality). */
  const videoSeen = ref(false);
  /**
   * This side's first description went out (the practitioner's offer, the patient's answer): the call's critical
   * path is past its own requests, and the page may start loading what sits beside the video.
   */
  const negotiating = ref(false);

  const forceRelay = options.forceRelay ?? false;
  let ice: IceConfig | null = null;
  let iceFetchedAt = 0;
  let pc: RTCPeerConnection | null = null;
  let makingOffer = false;
  let ignoreOffer = false;
  let signalChain: Promise<void> = Promise.resolve();
  /** Candidates that came before the remote description of the current connection. */
  let earlyCandidates: (RTCIceCandidateInit | null)[] = [];
  let disconnectedTimer: ReturnType<typeof setTimeout> | null = null;
  let statsTimer: ReturnType<typeof setTimeout> | null = null;
  let lastCounters: StatsCounters | null = null;
  let lastReportAt = 0;
  let lastRestartAt = -Infinity;
  let stopped = false;
  let unsubscribe: (() => void)[] = [];

  const connected = computed(() => phase.value === "connected");

  // --- media -------------------------------------------------------------------------------------------------

  function transceiver(kind: MediaKind): RTCRtpTransceiver | null {
    if (!pc) return null;
    return pc.getTransceivers().find((t) => t.currentDirection !== "stopped" && t.receiver.track.kind === kind) ?? null;
  }

  const media = useLocalMedia({
    env,
    localStream: options.localStream,
    async replaceTrack(kind, track) {
      const sender = transceiver(kind)?.sender;
      if (sender) await sender.replaceTrack(track);
    },
    announce: (state) => socket.send({ kind: "media", ...state }),
    video: { width: { ideal: 1280 }, height: { ideal: 720 } },
    audience: "The other side",
  });
  const { localStream, audioOnly, outgoing, announceMedia } = media;

  // --- connection --------------------------------------------------------------------------------------------

  async function loadIce(): Promise<void> {
    ice = await fetchIce(options.visitId);
    iceFetchedAt = env.now();
  }

  /** The first connection's ICE servers: the prefetched ones if they came, else a fetch of our own. */
  async function loadFirstIce(): Promise<void> {
    const prefetched = options.prefetchedIce ? await options.prefetchedIce : null;
    if (prefetched) {
      ice = prefetched.config;
      // On the env's clock, which credentialsExpiring reads.
      iceFetchedAt = env.now() - Math.max(0, Date.now() - prefetched.fetchedAt);
      return;
    }
    try {
      await loadIce();
    } catch {
      // Without the API's servers the call can still connect directly (host candidates).
      ice = null;
    }
  }

  function credentialsExpiring(): boolean {
    if (!ice) return true;
    const expires = Date.parse(ice.expiresAt);
    const byTtl = iceFetchedAt + ice.ttlSeconds * 1000;
    const until = Number.isNaN(expires) ? byTtl : Math.min(expires, byTtl);
    return until - env.now() < CREDENTIAL_MARGIN_MS;
  }

  function setPhase(next: CallPhase): void {
    if (phase.value === "ended" || phase.value === "stopped") return;
    phase.value = next;
  }

  function closePc(): void {
    if (disconnectedTimer) clearTimeout(disconnectedTimer);
    disconnectedTimer = null;
    const old = pc;
    pc = null;
    if (old) {
      old.onicecandidate = null;
      old.ontrack = null;
      old.onnegotiationneeded = null;
      old.oniceconnectionstatechange = null;
      old.onconnectionstatechange = null;
      old.close();
    }
    makingOffer = false;
    ignoreOffer = false;
    earlyCandidates = [];
    lastCounters = null;
    remoteStream.value = null;
    connectionState.value = "new";
    iceState.value = "new";
  }

  function sendSignal(frame: SignalFrame): void {
    socket.send(frame);
  }

  async function makeOffer(): Promise<void> {
    const current = pc;
    if (!current || polite) return;
    try {
      makingOffer = true;
      await current.setLocalDescription();
      if (current !== pc || !current.localDescription) return;
      sendSignal({ kind: "signal", type: "offer", sdp: current.localDescription.sdp });
      negotiating.value = true;
    } catch {
      callError.value = "The call could not be set up. Trying again…";
    } finally {
      makingOffer = false;
    }
  }

  function onRemoteTrack(event: RTCTrackEvent): void {
    const stream = remoteStream.value ?? env.createMediaStream();
    if (!stream.getTracks().includes(event.track)) stream.addTrack(event.track);
    // A new object so that watchers (the <video> element) see the change.
    remoteStream.value = env.createMediaStream(stream.getTracks());
  }

  function onIceState(current: RTCPeerConnection): void {
    if (current !== pc) return;
    const state = current.iceConnectionState;
    iceState.value = state;
    if (state === "connected" || state === "completed") {
      if (disconnectedTimer) clearTimeout(disconnectedTimer);
      disconnectedTimer = null;
      callError.value = "";
      setPhase("connected");
    } else if (state === "failed") {
      setPhase("reconnecting");
      void requestRestart();
    } else if (state === "disconnected") {
      setPhase("reconnecting");
      if (!disconnectedTimer) {
        disconnectedTimer = setTimeout(() => {
          disconnectedTimer = null;
          if (pc === current && current.iceConnectionState === "disconnected") void requestRestart();
        }, disconnectedGraceMs);
      }
    } else if (state === "checking") {
      if (phase.value !== "reconnecting") setPhase("connecting");
    }
  }

  /** A new connection for this visit (the old one, if any, is closed). The practitioner then offers. */
  function newPc(): void {
    closePc();
    const current = env.createPeerConnection(rtcConfiguration(ice, forceRelay));
    pc = current;
    current.onicecandidate = (event) => {
      if (current !== pc) return;
      sendSignal({ kind: "signal", type: "candidate", candidate: candidateFrame(event.candidate) });
    };
    current.ontrack = (event) => {
      if (current === pc) onRemoteTrack(event);
    };
    current.oniceconnectionstatechange = () => onIceState(current);
    current.onconnectionstatechange = () => {
      if (current !== pc) return;
      connectionState.value = current.connectionState;
      if (current.connectionState === "failed") {
        setPhase("reconnecting");
        void requestRestart();
      }
    };
    if (!polite) {
      current.onnegotiationneeded = () => {
        if (current === pc) void makeOffer();
      };
      const stream = localStream.value;
      for (const kind of ["audio", "video"] as const) {
        current.addTransceiver(outgoing(kind) ?? kind, { direction: "sendrecv", streams: stream ? [stream] : [] });
      }
    }
    setPhase("connecting");
    announceMedia();
  }

  /** Puts the patient's tracks on the transceivers a remote offer created (before answering it). */
  async function attachToOffer(): Promise<void> {
    for (const kind of ["audio", "video"] as const) {
      const t = transceiver(kind);
      if (!t) continue;
      t.direction = "sendrecv";
      await t.sender.replaceTrack(outgoing(kind));
      const stream = localStream.value;
      if (stream && typeof t.sender.setStreams === "function") t.sender.setStreams(stream);
    }
  }

  async function addCandidate(candidate: RTCIceCandidateInit | null): Promise<void> {
    const current = pc;
    if (!current) return;
    if (!current.remoteDescription) {
      earlyCandidates.push(candidate);
      return;
    }
    try {
      await current.addIceCandidate(candidate ?? undefined);
    } catch {
      // A candidate of an offer this side ignored (collision) is expected to fail; others are not fatal either.
    }
  }

  async function handleSignal(frame: SignalFrame): Promise<void> {
    if (stopped) return;
    if (frame.type === "restart") {
      if (!polite) await restartIce();
      return;
    }
    if (frame.type === "candidate") {
      await addCandidate(frame.candidate);
      return;
    }
    // An offer with no connection yet (patient): the visit is on, make one.
    if (!pc) {
      if (frame.type !== "offer" || !polite) return;
      newPc();
    }
    const current = pc!;
    const collision = frame.type === "offer" && (makingOffer || current.signalingState !== "stable");
    ignoreOffer = !polite && collision;
    if (ignoreOffer) return;
    if (frame.type === "answer" && current.signalingState !== "have-local-offer") return;
    try {
      await current.setRemoteDescription({ type: frame.type, sdp: frame.sdp });
      if (current !== pc) return;
      const early = earlyCandidates;
      earlyCandidates = [];
      for (const candidate of early) await addCandidate(candidate);
      if (frame.type === "offer") {
        await attachToOffer();
        await current.setLocalDescription();
        if (current !== pc || !current.localDescription) return;
        sendSignal({ kind: "signal", type: "answer", sdp: current.localDescription.sdp });
        negotiating.value = true;
      }
    } catch {
      callError.value = "The call could not be set up. Trying again…";
      if (polite) sendSignal({ kind: "signal", type: "restart" });
    }
  }

  function onSignal(frame: SignalFrame): void {
    signalChain = signalChain.then(() => handleSignal(frame)).catch(() => undefined);
  }

  async function restartIce(): Promise<void> {
    const current = pc;
    if (!current || polite) return;
    if (credentialsExpiring()) {
      try {
        await loadIce();
        current.setConfiguration(rtcConfiguration(ice, forceRelay));
      } catch {
        // Keep the old credentials: the restart may still work through STUN or the old allocation.
      }
    }
    if (current !== pc) return;
    restarts.value += 1;
    current.restartIce();
  }

  async function requestRestart(): Promise<void> {
    const now = env.now();
    if (now - lastRestartAt < restartSpacingMs) return;
    lastRestartAt = now;
    if (polite) {
      restarts.value += 1;
      sendSignal({ kind: "signal", type: "restart" });
    } else {
      await restartIce();
    }
  }

  /** The practitioner starts (again) when the patient is there; the patient gets a connection ready for the offer. */
  function begin(): void {
    if (stopped || socket.visitStatus !== "in-progress") {
      setPhase("waiting");
      return;
    }
    peerPresent.value = socket.peersWithRole(otherRole).length > 0;
    if (polite) {
      newPc();
      if (!peerPresent.value) setPhase("waiting");
    } else if (peerPresent.value) {
      newPc();
    } else {
      closePc();
      setPhase("waiting");
    }
  }

  function onFrame(frame: ServerFrame): void {
    if (stopped) return;
    switch (frame.kind) {
      case "welcome":
        // Our socket (re)connected: a new session on both sides.
        begin();
        break;
      case "peer-joined":
        if (frame.role !== otherRole) break;
        peerPresent.value = true;
        remoteMedia.value = { audio: true, video: true, screen: false };
        // A new session of the other side: start over (the practitioner offers at once).
        if (socket.visitStatus === "in-progress") newPc();
        break;
      case "peer-present":
        if (frame.role !== otherRole) break;
        peerPresent.value = true;
        if (!polite && socket.visitStatus === "in-progress" && !pc) newPc();
        break;
      case "peer-left":
        // The other side's socket closed: its connection is gone or will be replaced when it rejoins.
        peerPresent.value = socket.peersWithRole(otherRole).length > 0;
        if (!peerPresent.value) {
          if (polite && socket.visitStatus === "in-progress") newPc();
          else closePc();
          setPhase("waiting");
        }
        break;
      case "visit-state":
        if (frame.status === "in-progress" && !pc) begin();
        else if (frame.status === "finished" || frame.status === "left") end();
        break;
      case "media":
        remoteMedia.value = { audio: frame.audio, video: frame.video, screen: frame.screen };
        break;
      default:
        break;
    }
  }

  // --- stats -------------------------------------------------------------------------------------------------

  async function sample(): Promise<void> {
    const current = pc;
    if (!current) return;
    let reportLike: StatsReportLike;
    try {
      reportLike = (await current.getStats()) as unknown as StatsReportLike;
    } catch {
      return;
    }
    if (current !== pc) return;
    const at = env.now();
    const { summary, counters } = summarizeStats(reportLike, at, lastCounters, audioOnly.value);
    lastCounters = counters;
    stats.value = summary;
    if ((summary.frames_decoded ?? 0) > 0) videoSeen.value = true;
    if (at - lastReportAt >= reportIntervalMs) {
      lastReportAt = at;
      report(options.visitId, summary).catch(() => undefined);
    }
  }

  function scheduleStats(): void {
    statsTimer = setTimeout(() => {
      void sample().finally(() => {
        if (!stopped) scheduleStats();
      });
    }, statsIntervalMs);
  }

  // --- lifecycle ---------------------------------------------------------------------------------------------

  async function start(): Promise<void> {
    stopped = false;
    phase.value = "starting";
    // The camera opens (then the device lists, whose labels need its permission) while the ICE servers are
    // fetched: the first offer waits for the slower of the two, not for both in turn.
    await Promise.all([media.openMedia().then(media.refreshDevices), loadFirstIce()]);
    if (stopped) return;
    unsubscribe = [
      socket.subscribe(onFrame),
      socket.attachSignals(onSignal),
      env.onDeviceChange(() => void media.refreshDevices()),
    ];
    if (socket.status === "open") begin();
    else setPhase("waiting");
    scheduleStats();
  }

  function teardown(): void {
    stopped = true;
    for (const stop of unsubscribe) stop();
    unsubscribe = [];
    if (statsTimer) clearTimeout(statsTimer);
    statsTimer = null;
    media.dropScreenShare();
    closePc();
  }

  /** The visit ended: close the connection (the page shows what comes next). */
  function end(): void {
    teardown();
    phase.value = "ended";
  }

  /** The page goes: close the connection; the camera stream stays with whoever passed it in. */
  function stop(): void {
    teardown();
    if (phase.value !== "ended") phase.value = "stopped";
  }

  if (getCurrentScope()) onScopeDispose(stop);

  return {
    phase,
    connected,
    localStream,
    remoteStream,
    connectionState,
    iceState,
    muted: media.muted,
    cameraOff: media.cameraOff,
    sharing: media.sharing,
    audioOnly,
    remoteMedia,
    peerPresent,
    stats,
    mediaError: media.mediaError,
    callError,
    cameras: media.cameras,
    microphones: media.microphones,
    cameraId: media.cameraId,
    microphoneId: media.microphoneId,
    restarts,
    videoSeen,
    negotiating,
    start,
    stop,
    end,
    toggleMute: media.toggleMute,
    toggleCamera: media.toggleCamera,
    switchCamera: media.switchCamera,
    switchMicrophone: media.switchMicrophone,
    startScreenShare: media.startScreenShare,
    stopScreenShare: media.stopScreenShare,
    setAudioOnly: media.setAudioOnly,
    requestRestart,
    /** Takes one stats sample now (tests, and the panel's "Refresh"). */
    sample,
  };
}

export type VisitCall = ReturnType<typeof useVisitCall>;

/** Mirrors `MediaFrame` for the page: what the other side said it sends. */
export type { MediaFrame };
