/**
 * The visit signaling socket /ws/v1/visits/<id>/ (docs/signaling-protocol.md): typed frames, reconnect with
 * backoff, a keep-alive ping, and the presence of the other participants.
 *
 * One socket per visit per tab, shared by the waiting room and the visit page (stores/visit.ts), so a patient stays
 * "present" while the page changes. Signal frames (offer/answer/candidate/restart) go to one handler at a time —
 * the call — and wait in a buffer while no call is attached (e.g. the doctor's offer reaching the waiting room just
 * before the page moves to the visit). A peer that (re)joins starts a new session: its older buffered signals are
 * dropped, as are all of them when this socket reconnects.
 *
 * Multi-party visits (issue 7): the socket also keeps the visit's media mode (`direct` or `relay`, from the welcome
 * and `visit-mode` pushes) and its roster (every participant with name, role, admitted/muted/connected). Signals
 * from the media relay (`from: "relay"`, with a `pc`) go to their own handler (the relay call) and are never
 * buffered: a relay answer nobody waits for is stale, and the relay call re-offers when an answer does not come.
 *
 * Close codes: 4401 not signed in, 4403 not a participant, 4409 the same participant connected from another socket
 * (another tab took over), 4410 visit ended, 4411 removed from the visit by the practitioner — final, no reconnect.
 * Any other close (network, 4400/4413/4429) reconnects with exponential backoff and jitter.
 */
import type { VisitStatus } from "../api/types";
import type { WebSocketLike } from "../realtime/RealtimeClient";

export type ParticipantRole = "patient" | "practitioner";
/** A guest's role in a multi-party visit (invited by link). */
export type GuestRole = "interpreter" | "family" | "clinician";
export type AnyRole = ParticipantRole | GuestRole;
export type MediaMode = "direct" | "relay";

/** One participant of the visit as the server's `roster` push describes it. */
export interface RosterEntry {
  participant_id: string;
  role: AnyRole;
  name: string;
  admitted: boolean;
  muted: boolean;
  connected: boolean;
  /** "admitted" | "waiting" | "invited" | "removed" | "expired" (guests), when the server says. */
  status?: string;
  /** The device check passed. */
  ready?: boolean;
}

/** The relay call's peer connection ids: `pub` (this side's media), `sub:<participant>` (one per other participant). */
export type RelayPcId = string;

/** What the relay sends back (through the visit socket). */
export type RelaySignalFrame = { kind: "signal"; from: "relay"; pc: RelayPcId; type: "answer"; sdp: string };

export interface RelayErrorFrame {
  kind: "relay-error";
  pc: RelayPcId;
  code: "unknown_participant" | "bad_sdp" | "not_allowed" | "overloaded" | string;
  detail: string;
}

/** What the relay call sends to the relay. */
export type RelayClientFrame =
  | { kind: "signal"; to: "relay"; pc: RelayPcId; type: "offer"; sdp: string }
  | { kind: "signal"; to: "relay"; pc: RelayPcId; type: "candidate"; candidate: IceCandidateFrame | null }
  | { kind: "signal"; to: "relay"; pc: RelayPcId; type: "close" };

export type ControlAction = "mute" | "unmute" | "remove";

export interface IceCandidateFrame {
  candidate: string;
  sdpMid: string | null;
  sdpMLineIndex: number | null;
  usernameFragment?: string | null;
}

export type SignalFrame =
  | { kind: "signal"; type: "offer" | "answer"; sdp: string; from?: string }
  | { kind: "signal"; type: "candidate"; candidate: IceCandidateFrame | null; from?: string }
  | { kind: "signal"; type: "restart"; from?: string };

export interface MediaFrame {
  kind: "media";
  audio: boolean;
  video: boolean;
  screen: boolean;
  from?: string;
}

export type ServerFrame =
  | { kind: "welcome"; role: AnyRole; participant_id: string; status: VisitStatus; mode?: MediaMode }
  | { kind: "peer-joined" | "peer-present"; participant_id: string; role: AnyRole; name?: string }
  | { kind: "peer-left"; participant_id: string }
  | { kind: "visit-state"; status: VisitStatus }
  | { kind: "pong" }
  | { kind: "error"; code: string; detail: string }
  | { kind: "visit-mode"; mode: MediaMode }
  | { kind: "roster"; participants: RosterEntry[] }
  | { kind: "muted"; participant_id: string; by: string; audio: boolean }
  | RelayErrorFrame
  | SignalFrame
  | RelaySignalFrame
  | MediaFrame;

export type ClientFrame =
  | SignalFrame
  | RelayClientFrame
  | { kind: "control"; action: ControlAction; participant_id: string }
  | { kind: "media"; audio: boolean; video: boolean; screen: boolean }
  | { kind: "ping" };

export type VisitSocketStatus = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export const CLOSE_NOT_AUTHENTICATED = 4401;
export const CLOSE_NOT_PARTICIPANT = 4403;
export const CLOSE_REPLACED = 4409;
export const CLOSE_VISIT_ENDED = 4410;
export const CLOSE_REMOVED = 4411;
const FINAL_CLOSES = new Set([
  CLOSE_NOT_AUTHENTICATED,
  CLOSE_NOT_PARTICIPANT,
  CLOSE_REPLACED,
  CLOSE_VISIT_ENDED,
  CLOSE_REMOVED,
]);

export interface VisitSocketOptions {
  url: string;
  createSocket: (url: string) => WebSocketLike;
  random?: () => number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const KINDS = new Set([
  "welcome",
  "peer-joined",
  "peer-present",
  "peer-left",
  "visit-state",
  "pong",
  "error",
  "signal",
  "media",
  "visit-mode",
  "roster",
  "muted",
  "relay-error",
]);

/** The frame if it has a known kind (fields are checked where they are used), else null. */
export function parseVisitFrame(data: unknown): ServerFrame | null {
  if (typeof data !== "string") return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObject(value) || typeof value.kind !== "string" || !KINDS.has(value.kind)) return null;
  if (value.kind === "signal" && !["offer", "answer", "candidate", "restart"].includes(String(value.type))) return null;
  return value as unknown as ServerFrame;
}

/** A signal that came from the media relay (it names the relay call's peer connection). */
export function isRelaySignal(frame: SignalFrame | RelaySignalFrame): frame is RelaySignalFrame {
  return frame.from === "relay" && typeof (frame as { pc?: unknown }).pc === "string";
}

export type FrameListener = (frame: ServerFrame) => void;
export type SignalHandler = (frame: SignalFrame) => void;
export type RelaySignalHandler = (frame: RelaySignalFrame) => void;

export class VisitSocket {
  status: VisitSocketStatus = "idle";
  /** The last welcome (this socket's identity and the visit status when it connected). */
  welcome: Extract<ServerFrame, { kind: "welcome" }> | null = null;
  /** The latest visit status the socket told us (welcome or visit-state). */
  visitStatus: VisitStatus | null = null;
  /** Other participants connected now: participant id → role. */
  readonly peers = new Map<string, AnyRole>();
  /** How the visit's media flows now (welcome, then `visit-mode`); a visit never goes back from relay to direct. */
  mode: MediaMode = "direct";
  /** The latest roster push (every participant, this one included). */
  roster: RosterEntry[] = [];
  /** The close code that ended the socket for good (4401/4403/4410), else null. */
  finalCode: number | null = null;

  private socket: WebSocketLike | null = null;
  private listeners = new Set<FrameListener>();
  private statusListeners = new Set<(status: VisitSocketStatus) => void>();
  private signalHandler: SignalHandler | null = null;
  private relayHandler: RelaySignalHandler | null = null;
  private buffered: SignalFrame[] = [];
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly random: () => number;
  private readonly pingIntervalMs: number;
  private readonly pongTimeoutMs: number;
  private readonly backoffBaseMs: number;
  private readonly backoffCapMs: number;

  constructor(private readonly options: VisitSocketOptions) {
    this.random = options.random ?? Math.random;
    this.pingIntervalMs = options.pingIntervalMs ?? 20_000;
    this.pongTimeoutMs = options.pongTimeoutMs ?? 10_000;
    this.backoffBaseMs = options.backoffBaseMs ?? 500;
    this.backoffCapMs = options.backoffCapMs ?? 8_000;
  }

  start(): void {
    if (this.status !== "idle" && this.status !== "closed") return;
    if (this.finalCode !== null) return;
    this.setStatus("connecting");
    this.open();
  }

  /** Closes for good (this tab leaves the visit's socket). */
  stop(): void {
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close(1000, "leaving");
    }
    this.peers.clear();
    this.buffered = [];
    this.setStatus("closed");
  }

  /** Sends a frame now; false when the socket is not open (the caller recovers on the next welcome). */
  send(frame: ClientFrame): boolean {
    if (!this.socket || this.socket.readyState !== 1 || this.status !== "open") return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  subscribe(listener: FrameListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStatus(listener: (status: VisitSocketStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** The call takes the signal frames: those buffered first, in order, then each as it comes. */
  attachSignals(handler: SignalHandler): () => void {
    this.signalHandler = handler;
    const pending = this.buffered;
    this.buffered = [];
    for (const frame of pending) handler(frame);
    return () => {
      if (this.signalHandler === handler) this.signalHandler = null;
    };
  }

  /** The relay call takes the relay's signals (none are buffered: see the module's comment). */
  attachRelaySignals(handler: RelaySignalHandler): () => void {
    this.relayHandler = handler;
    return () => {
      if (this.relayHandler === handler) this.relayHandler = null;
    };
  }

  /** Participant ids of the other side's role that are connected now. */
  peersWithRole(role: AnyRole): string[] {
    return [...this.peers].filter(([, r]) => r === role).map(([id]) => id);
  }

  private open(): void {
    let socket: WebSocketLike;
    try {
      socket = this.options.createSocket(this.options.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.startPing();
    };
    socket.onmessage = (event) => this.onMessage(event.data);
    socket.onerror = () => undefined;
    socket.onclose = (event) => this.onClose(event.code);
  }

  private onMessage(data: unknown): void {
    this.clearPongTimer();
    const frame = parseVisitFrame(data);
    if (!frame) return;
    switch (frame.kind) {
      case "welcome":
        this.attempt = 0;
        this.welcome = frame;
        this.visitStatus = frame.status;
        if (frame.mode === "relay" || frame.mode === "direct") this.mode = frame.mode;
        this.peers.clear();
        this.buffered = [];
        this.setStatus("open");
        break;
      case "peer-joined":
      case "peer-present":
        this.peers.set(frame.participant_id, frame.role);
        if (frame.kind === "peer-joined") {
          this.buffered = this.buffered.filter((f) => f.from !== frame.participant_id);
        }
        break;
      case "peer-left":
        this.peers.delete(frame.participant_id);
        break;
      case "visit-state":
        this.visitStatus = frame.status;
        break;
      case "visit-mode":
        if (frame.mode === "relay" || frame.mode === "direct") this.mode = frame.mode;
        break;
      case "roster":
        if (Array.isArray(frame.participants)) this.roster = frame.participants;
        break;
      case "signal":
        if (isRelaySignal(frame)) {
          this.relayHandler?.(frame);
          return;
        }
        if (this.signalHandler) this.signalHandler(frame);
        else this.buffered.push(frame);
        return;
      default:
        break;
    }
    for (const listener of [...this.listeners]) listener(frame);
  }

  private onClose(code: number): void {
    this.clearTimers();
    this.socket = null;
    this.peers.clear();
    if (FINAL_CLOSES.has(code)) {
      this.finalCode = code;
      if (code === CLOSE_VISIT_ENDED) this.visitStatus = "finished";
      this.setStatus("closed");
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.setStatus("reconnecting");
    const ceiling = Math.min(this.backoffCapMs, this.backoffBaseMs * 2 ** this.attempt);
    this.attempt += 1;
    const delay = Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  private startPing(): void {
    this.pingTimer = setInterval(() => {
      if (!this.send({ kind: "ping" })) return;
      this.clearPongTimer();
      this.pongTimer = setTimeout(() => {
        // No answer: the connection is dead even if the browser has not noticed yet.
        const socket = this.socket;
        if (socket) {
          socket.onclose = null;
          socket.close(4000, "no pong");
        }
        this.onClose(1006);
      }, this.pongTimeoutMs);
    }, this.pingIntervalMs);
  }

  private clearPongTimer(): void {
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.pongTimer = null;
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.retryTimer = null;
    this.pingTimer = null;
    this.clearPongTimer();
  }

  private setStatus(status: VisitSocketStatus): void {
    if (this.status === status) return;
    this.status = status;
    for (const listener of [...this.statusListeners]) listener(status);
  }
}
