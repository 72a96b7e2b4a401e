/**
 * The video call of a multi-party visit through Consulta's media relay (docs/telehealth.md, "Relay mode";
 * docs/signaling-protocol.md): one `pub` RTCPeerConnection that sends this side's audio and video to the relay
 * (sendonly), and one `sub:<participant>` connection per other admitted, connected participant that receives that
 * participant's media from the relay (recvonly). There is no renegotiation: each connection is offered once by the
 * browser (the relay only answers); a change of roster opens or closes whole `sub` connections.
 *
 * Recovery: a connection that fails, closes, stays disconnected for `disconnectedGraceMs`, gets no answer within
 * `answerTimeoutMs` (the relay restarted and forgot it) or is refused with a transient `relay-error` is offered again
 * on the same id with a new RTCPeerConnection, after a backoff of 1, 2, 4 … at most 8 s, with jitter. A relay that
 * restarts therefore sees every browser re-offer all its connections.
 *
 * The practitioner can mute a participant: the `muted` frame for this side stops its microphone on the wire at once
 * (the track is disabled and taken off the sender) and the user cannot unmute until the practitioner allows it.
 *
 * Stats: every `statsIntervalMs` each `sub` connection's inbound video `framesDecoded` and inbound audio level
 * (per participant, for the tiles and the active-speaker highlight). Never logs SDP, candidates or names.
 */
import { computed, getCurrentScope, onScopeDispose, ref, shallowRef, type ShallowRef } from "vue";

import { telehealth } from "../api/endpoints";
import type { IceConfig } from "../api/types";
import { NO_SPEAKER, intervalLevel, nextSpeaker, type SpeakerState } from "../telehealth/activeSpeaker";
import { mediaEnv, type MediaEnv } from "../telehealth/env";
import type {
  MediaFrame,
  RelaySignalFrame,
  RosterEntry,
  ServerFrame,
  VisitSocket,
} from "../telehealth/visitSocket";
import { useLocalMedia, type MediaKind } from "./useLocalMedia";
import { candidateFrame, rtcConfiguration } from "./useVisitCall";

export interface RelayCallOptions {
  visitId: string;
  socket: VisitSocket;
  /** A camera/microphone stream already open (the direct call's, the device check's); otherwise one is opened. */
  localStream?: MediaStream | null;
  /** Stop the local stream's tracks when the call stops (true when nobody else keeps it). */
  ownsStream?: boolean;
  /** Force TURN (iceTransportPolicy "relay") towards the media relay. */
  forceRelay?: boolean;
  env?: MediaEnv;
  iceConfig?: (visitId: string) => Promise<IceConfig>;
  random?: () => number;
  statsIntervalMs?: number;
  answerTimeoutMs?: number;
  disconnectedGraceMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
}

export type RelayPhase =
  /** Opening the camera, fetching ICE servers. */
  | "starting"
  /** Not (yet) admitted, or the visit is not in progress, or the socket is away. */
  | "waiting"
  | "connecting"
  | "connected"
  /** The connection to the relay was lost; offering again with backoff. */
  | "reconnecting"
  /** The practitioner removed this participant (close 4411). */
  | "removed"
  | "ended"
  | "stopped";

/** What this browser receives from one other participant. */
export interface RemoteParticipant {
  stream: MediaStream | null;
  state: RTCPeerConnectionState | "new";
  framesDecoded: number;
  level: number;
  /** What that participant said it sends (its `media` frames). */
  audio: boolean;
  video: boolean;
  screen: boolean;
}

interface PcEntry {
  id: string;
  /** The participant a `sub` receives from; null for `pub`. */
  source: string | null;
  pc: RTCPeerConnection | null;
  attempt: number;
  answered: boolean;
  answerTimer: ReturnType<typeof setTimeout> | null;
  retryTimer: ReturnType<typeof setTimeout> | null;
  disconnectedTimer: ReturnType<typeof setTimeout> | null;
  lastAudio: { totalAudioEnergy?: number; totalSamplesDuration?: number } | null;
}

const GUEST_ROLES = new Set(["interpreter", "family", "clinician"]);

/** Errors the relay may stop answering for a while: worth offering again later. */
const TRANSIENT_ERRORS = new Set(["bad_sdp", "overloaded", "not_allowed"]);

export function isGuestRole(role: string): boolean {
  return GUEST_ROLES.has(role);
}

/** The roster entries this participant receives media from: every other admitted participant whose socket is on. */
export function sourcesFor(roster: RosterEntry[], self: string | null): string[] {
  return roster
    .filter((p) => p.participant_id !== self && p.connected && (p.admitted || p.role === "practitioner"))
    .map((p) => p.participant_id);
}

export function useRelayCall(options: RelayCallOptions) {
  const env = options.env ?? mediaEnv();
  const socket = options.socket;
  const random = options.random ?? Math.random;
  const statsIntervalMs = options.statsIntervalMs ?? 500;
  const answerTimeoutMs = options.answerTimeoutMs ?? 5000;
  const disconnectedGraceMs = options.disconnectedGraceMs ?? 2000;
  const backoffBaseMs = options.backoffBaseMs ?? 1000;
  const backoffCapMs = options.backoffCapMs ?? 8000;
  const fetchIce = options.iceConfig ?? ((id: string) => telehealth.iceServers(id));

  const phase = ref<RelayPhase>("starting");
  /** The practitioner muted this participant: the microphone stays off until they allow it again. */
  const mutedByPractitioner = ref(false);
  const relayError = ref("");
  /** Connections offered again after a failure (all ids together). */
  const restarts = ref(0);
  const remotes: ShallowRef<Record<string, RemoteParticipant>> = shallowRef({});
  const activeSpeaker = ref<string | null>(null);
  /** The ids of the connections open now (`pub`, `sub:…`), for the page and the tests. */
  const pcIds = ref<string[]>([]);

  let ice: IceConfig | null = null;
  const entries = new Map<string, PcEntry>();
  let speaker: SpeakerState = NO_SPEAKER;
  let statsTimer: ReturnType<typeof setTimeout> | null = null;
  let unsubscribe: (() => void)[] = [];
  let stopped = false;
  let started = false;

  const connected = computed(() => phase.value === "connected");

  // --- media -------------------------------------------------------------------------------------------------

  function pubSender(kind: MediaKind): RTCRtpSender | null {
    const pc = entries.get("pub")?.pc;
    if (!pc) return null;
    // The pub connection's transceivers are ours, in the order we added them: audio, then video.
    const transceivers = pc.getTransceivers();
    return transceivers[kind === "audio" ? 0 : 1]?.sender ?? null;
  }

  const media = useLocalMedia({
    env,
    localStream: options.localStream,
    async replaceTrack(kind, track) {
      const sender = pubSender(kind);
      if (!sender) return;
      try {
        await sender.replaceTrack(track);
      } catch {
        // The connection closed meanwhile; the next one starts with the right track.
      }
    },
    announce: (state) => socket.send({ kind: "media", ...state }),
    video: { width: { ideal: 640 }, height: { ideal: 480 } },
    audience: "The others",
    // The stream may come from the direct call or the device check, muted or with the camera off there.
    adoptTrackState: true,
    micLocked: mutedByPractitioner,
  });
  const { localStream, outgoing, announceMedia } = media;

  /** The practitioner muted (audio false) or allowed again (audio true) this participant's microphone. */
  function onMutedByPractitioner(audio: boolean): void {
    if (!audio) {
      mutedByPractitioner.value = true;
      media.setMuted(true);
    } else {
      // Allowed to speak again: the user unmutes when ready (never unmuted remotely).
      mutedByPractitioner.value = false;
    }
    void media.putOnAir("audio");
  }

  // --- remote participants -----------------------------------------------------------------------------------

  function blankRemote(): RemoteParticipant {
    return { stream: null, state: "new", framesDecoded: 0, level: 0, audio: true, video: true, screen: false };
  }

  function patchRemote(id: string, patch: Partial<RemoteParticipant>): void {
    const current = remotes.value[id] ?? blankRemote();
    remotes.value = { ...remotes.value, [id]: { ...current, ...patch } };
  }

  function dropRemote(id: string): void {
    if (!(id in remotes.value)) return;
    const next = { ...remotes.value };
    delete next[id];
    remotes.value = next;
  }

  // --- connections -------------------------------------------------------------------------------------------

  function selfId(): string | null {
    return socket.welcome?.participant_id ?? null;
  }

  /** This participant may send and receive through the relay now. */
  function admitted(): boolean {
    if (socket.status !== "open" || socket.visitStatus !== "in-progress" || socket.mode !== "relay") return false;
    const self = selfId();
    const role = socket.welcome?.role ?? "";
    if (!isGuestRole(role)) return true;
    return socket.roster.some((p) => p.participant_id === self && p.admitted);
  }

  function setPhase(next: RelayPhase): void {
    if (phase.value === "ended" || phase.value === "stopped" || phase.value === "removed") return;
    phase.value = next;
  }

  function refreshPhase(): void {
    if (!admitted()) {
      setPhase("waiting");
      return;
    }
    const pub = entries.get("pub");
    const state = pub?.pc?.connectionState;
    if (state === "connected") setPhase("connected");
    else if ((pub?.attempt ?? 0) > 0) setPhase("reconnecting");
    else setPhase("connecting");
  }

  function publishIds(): void {
    pcIds.value = [...entries.keys()].sort();
  }

  function clearTimers(entry: PcEntry): void {
    for (const key of ["answerTimer", "retryTimer", "disconnectedTimer"] as const) {
      const timer = entry[key];
      if (timer) clearTimeout(timer);
      entry[key] = null;
    }
  }

  function closeRtc(entry: PcEntry): void {
    const pc = entry.pc;
    entry.pc = null;
    entry.answered = false;
    entry.lastAudio = null;
    if (!pc) return;
    pc.onicecandidate = null;
    pc.ontrack = null;
    pc.onconnectionstatechange = null;
    pc.close();
  }

  /** Closes a connection for good (the participant left, or the call stops); tells the relay if asked to. */
  function closeEntry(id: string, tellRelay: boolean): void {
    const entry = entries.get(id);
    if (!entry) return;
    clearTimers(entry);
    closeRtc(entry);
    entries.delete(id);
    if (tellRelay) socket.send({ kind: "signal", to: "relay", pc: id, type: "close" });
    if (entry.source) dropRemote(entry.source);
    publishIds();
  }

  function backoff(attempt: number): number {
    const ceiling = Math.min(backoffCapMs, backoffBaseMs * 2 ** attempt);
    // Jitter (±20 %) so that every browser of a visit does not re-offer at the same instant after a relay restart.
    return Math.round(ceiling * (0.8 + 0.4 * random()));
  }

  /** Offers this connection again later (a new RTCPeerConnection on the same id). */
  function scheduleRetry(entry: PcEntry): void {
    if (stopped || entries.get(entry.id) !== entry || entry.retryTimer) return;
    clearTimers(entry);
    closeRtc(entry);
    const delay = backoff(entry.attempt);
    entry.attempt += 1;
    if (entry.source) patchRemote(entry.source, { state: "connecting", stream: null });
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = null;
      if (stopped || entries.get(entry.id) !== entry) return;
      restarts.value += 1;
      void offer(entry);
    }, delay);
    refreshPhase();
  }

  function onConnectionState(entry: PcEntry, pc: RTCPeerConnection): void {
    if (entry.pc !== pc) return;
    const state = pc.connectionState;
    if (entry.source) patchRemote(entry.source, { state });
    if (state === "connected") {
      entry.attempt = 0;
      if (entry.disconnectedTimer) clearTimeout(entry.disconnectedTimer);
      entry.disconnectedTimer = null;
      relayError.value = "";
    } else if (state === "failed" || state === "closed") {
      scheduleRetry(entry);
    } else if (state === "disconnected" && !entry.disconnectedTimer) {
      entry.disconnectedTimer = setTimeout(() => {
        entry.disconnectedTimer = null;
        if (entry.pc === pc && pc.connectionState !== "connected") scheduleRetry(entry);
      }, disconnectedGraceMs);
    }
    refreshPhase();
  }

  function attachRemoteTrack(entry: PcEntry, pc: RTCPeerConnection, event: RTCTrackEvent): void {
    if (entry.pc !== pc || !entry.source) return;
    const existing = remotes.value[entry.source]?.stream;
    const tracks = existing ? existing.getTracks().filter((t) => t.kind !== event.track.kind) : [];
    // A new stream object so that the <video> element sees the change.
    patchRemote(entry.source, { stream: env.createMediaStream([...tracks, event.track]) });
  }

  /** A new RTCPeerConnection for this id, its transceivers, and the offer to the relay. */
  async function offer(entry: PcEntry): Promise<void> {
    closeRtc(entry);
    const pc = env.createPeerConnection(rtcConfiguration(ice, options.forceRelay ?? false));
    entry.pc = pc;
    pc.onicecandidate = (event) => {
      if (entry.pc !== pc) return;
      socket.send({ kind: "signal", to: "relay", pc: entry.id, type: "candidate", candidate: candidateFrame(event.candidate) });
    };
    pc.onconnectionstatechange = () => onConnectionState(entry, pc);
    if (entry.source) {
      pc.ontrack = (event) => attachRemoteTrack(entry, pc, event);
      for (const kind of ["audio", "video"] as const) pc.addTransceiver(kind, { direction: "recvonly" });
    } else {
      const stream = localStream.value;
      for (const kind of ["audio", "video"] as const) {
        pc.addTransceiver(outgoing(kind) ?? kind, { direction: "sendonly", streams: stream ? [stream] : [] });
      }
    }
    try {
      await pc.setLocalDescription();
    } catch {
      if (entry.pc === pc) scheduleRetry(entry);
      return;
    }
    if (entry.pc !== pc || !pc.localDescription) return;
    const sent = socket.send({ kind: "signal", to: "relay", pc: entry.id, type: "offer", sdp: pc.localDescription.sdp });
    if (!sent) {
      // The socket is away: the next welcome starts every connection over.
      closeRtc(entry);
      return;
    }
    entry.answerTimer = setTimeout(() => {
      entry.answerTimer = null;
      // No answer: the relay restarted (and lost the offer) or is down. Offer again, with backoff.
      if (entry.pc === pc && !entry.answered) scheduleRetry(entry);
    }, answerTimeoutMs);
    refreshPhase();
  }

  function openEntry(id: string, source: string | null): void {
    if (entries.has(id)) return;
    const entry: PcEntry = {
      id,
      source,
      pc: null,
      attempt: 0,
      answered: false,
      answerTimer: null,
      retryTimer: null,
      disconnectedTimer: null,
      lastAudio: null,
    };
    entries.set(id, entry);
    if (source && !(source in remotes.value)) patchRemote(source, { state: "connecting" });
    publishIds();
    void offer(entry);
  }

  /** Opens and closes connections so that there is a `pub` and one `sub` per current source. */
  function sync(): void {
    if (stopped || !started) return;
    if (!admitted()) {
      for (const id of [...entries.keys()]) closeEntry(id, false);
      refreshPhase();
      return;
    }
    const wanted = new Set(sourcesFor(socket.roster, selfId()));
    for (const [id, entry] of [...entries]) {
      if (entry.source && !wanted.has(entry.source)) closeEntry(id, true);
    }
    openEntry("pub", null);
    for (const source of wanted) openEntry(`sub:${source}`, source);
    refreshPhase();
  }

  /** Every connection again from scratch (our socket reconnected: the relay may have lost all of them). */
  function restartAll(): void {
    for (const id of [...entries.keys()]) closeEntry(id, false);
    sync();
  }

  async function onRelaySignal(frame: RelaySignalFrame): Promise<void> {
    const entry = entries.get(frame.pc);
    const pc = entry?.pc;
    if (!entry || !pc || frame.type !== "answer" || pc.signalingState !== "have-local-offer") return;
    entry.answered = true;
    if (entry.answerTimer) clearTimeout(entry.answerTimer);
    entry.answerTimer = null;
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: frame.sdp });
    } catch {
      if (entry.pc === pc) scheduleRetry(entry);
    }
  }

  function onRelayError(frame: Extract<ServerFrame, { kind: "relay-error" }>): void {
    const entry = entries.get(frame.pc);
    if (!entry) return;
    if (frame.code === "overloaded") relayError.value = "The video relay is busy. Trying again…";
    if (frame.code === "unknown_participant") {
      // That participant is not (or no longer) publishing: wait for the roster to say otherwise.
      closeEntry(frame.pc, false);
      return;
    }
    if (TRANSIENT_ERRORS.has(frame.code)) scheduleRetry(entry);
  }

  function onFrame(frame: ServerFrame): void {
    if (stopped) return;
    switch (frame.kind) {
      case "welcome":
        restartAll();
        break;
      case "roster":
      case "visit-mode":
        sync();
        break;
      case "visit-state":
        if (frame.status === "finished" || frame.status === "left") end();
        else sync();
        break;
      case "peer-left":
        sync();
        break;
      case "muted":
        if (frame.participant_id === selfId()) onMutedByPractitioner(frame.audio);
        break;
      case "relay-error":
        onRelayError(frame);
        break;
      case "media": {
        const from = (frame as MediaFrame).from;
        if (from && from in remotes.value) patchRemote(from, { audio: frame.audio, video: frame.video, screen: frame.screen });
        break;
      }
      default:
        break;
    }
  }

  // --- stats -------------------------------------------------------------------------------------------------

  async function sample(): Promise<void> {
    const levels: Record<string, number> = {};
    for (const entry of [...entries.values()]) {
      const pc = entry.pc;
      if (!entry.source || !pc) continue;
      let report: Map<string, Record<string, unknown>>;
      try {
        report = (await pc.getStats()) as unknown as Map<string, Record<string, unknown>>;
      } catch {
        continue;
      }
      if (entry.pc !== pc) continue;
      let frames = 0;
      let level = 0;
      for (const stat of report.values()) {
        if (stat.type !== "inbound-rtp") continue;
        if (stat.kind === "video") frames += Number(stat.framesDecoded ?? 0);
        if (stat.kind === "audio") {
          const audio = stat as { audioLevel?: number; totalAudioEnergy?: number; totalSamplesDuration?: number };
          level = intervalLevel(audio, entry.lastAudio);
          entry.lastAudio = { totalAudioEnergy: audio.totalAudioEnergy, totalSamplesDuration: audio.totalSamplesDuration };
        }
      }
      levels[entry.source] = level;
      patchRemote(entry.source, { framesDecoded: frames, level });
    }
    speaker = nextSpeaker(levels, speaker, env.now());
    activeSpeaker.value = speaker.current;
  }

  function scheduleStats(): void {
    statsTimer = setTimeout(() => {
      void sample().finally(() => {
        if (!stopped) scheduleStats();
      });
    }, statsIntervalMs);
  }

  // --- lifecycle ---------------------------------------------------------------------------------------------

  async function loadIce(): Promise<void> {
    try {
      ice = await fetchIce(options.visitId);
    } catch {
      // Without the API's servers the relay can still be reached directly (host candidates on loopback/LAN).
      ice = null;
    }
  }

  async function start(): Promise<void> {
    stopped = false;
    phase.value = "starting";
    await Promise.all([media.openMedia().then(media.refreshDevices), loadIce()]);
    if (stopped) return;
    started = true;
    unsubscribe = [
      socket.subscribe(onFrame),
      socket.attachRelaySignals((frame) => void onRelaySignal(frame)),
      socket.onStatus((status) => {
        if (status === "closed" && socket.finalCode === 4411) {
          teardown();
          phase.value = "removed";
        } else if (status !== "open") {
          sync();
        }
      }),
      env.onDeviceChange(() => void media.refreshDevices()),
    ];
    announceMedia();
    sync();
    scheduleStats();
  }

  function teardown(): void {
    stopped = true;
    for (const stop of unsubscribe) stop();
    unsubscribe = [];
    if (statsTimer) clearTimeout(statsTimer);
    statsTimer = null;
    for (const id of [...entries.keys()]) closeEntry(id, socket.status === "open");
    media.dropScreenShare();
    remotes.value = {};
    activeSpeaker.value = null;
  }

  function releaseStream(): void {
    if (options.ownsStream) for (const t of localStream.value?.getTracks() ?? []) t.stop();
  }

  function end(): void {
    teardown();
    releaseStream();
    phase.value = "ended";
  }

  function stop(): void {
    teardown();
    releaseStream();
    if (phase.value !== "ended" && phase.value !== "removed") phase.value = "stopped";
  }

  if (getCurrentScope()) onScopeDispose(stop);

  return {
    mode: "relay" as const,
    phase,
    connected,
    localStream,
    remotes,
    activeSpeaker,
    pcIds,
    muted: media.muted,
    mutedByPractitioner,
    cameraOff: media.cameraOff,
    sharing: media.sharing,
    audioOnly: media.audioOnly,
    mediaError: media.mediaError,
    relayError,
    cameras: media.cameras,
    microphones: media.microphones,
    cameraId: media.cameraId,
    microphoneId: media.microphoneId,
    restarts,
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
    /** Takes one stats sample now (tests). */
    sample,
    /** Re-reads the socket's roster and mode now (tests; frames do it by themselves). */
    sync,
    /** The RTCPeerConnection open now for an id (tests and diagnostics). */
    peerConnection: (id: string): RTCPeerConnection | null => entries.get(id)?.pc ?? null,
  };
}

export type RelayCall = ReturnType<typeof useRelayCall>;
