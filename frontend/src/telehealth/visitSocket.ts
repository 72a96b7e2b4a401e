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
 * Close codes: 4401 not signed in, 4403 not a participant, 4409 the same participant connected from another socket
 * (another tab took over), 4410 visit ended — final, no reconnect. Any other close (network, 4400/4413/4429)
 * reconnects with exponential backoff and jitter.
 */
import type { VisitStatus } from "../api/types";
import type { WebSocketLike } from "../realtime/RealtimeClient";

export type ParticipantRole = "patient" | "practitioner";

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
  | { kind: "welcome"; role: ParticipantRole; participant_id: string; status: VisitStatus }
  | { kind: "peer-joined" | "peer-present"; participant_id: string; role: ParticipantRole }
  | { kind: "peer-left"; participant_id: string }
  | { kind: "visit-state"; status: VisitStatus }
  | { kind: "pong" }
  | { kind: "error"; code: string; detail: string }
  | SignalFrame
  | MediaFrame;

export type ClientFrame =
  | SignalFrame
  | { kind: "media"; audio: boolean; video: boolean; screen: boolean }
  | { kind: "ping" };

export type VisitSocketStatus = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export const CLOSE_NOT_AUTHENTICATED = 4401;
export const CLOSE_NOT_PARTICIPANT = 4403;
export const CLOSE_REPLACED = 4409;
export const CLOSE_VISIT_ENDED = 4410;
const FINAL_CLOSES = new Set([CLOSE_NOT_AUTHENTICATED, CLOSE_NOT_PARTICIPANT, CLOSE_REPLACED, CLOSE_VISIT_ENDED]);

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

export type FrameListener = (frame: ServerFrame) => void;
export type SignalHandler = (frame: SignalFrame) => void;

export class VisitSocket {
  status: VisitSocketStatus = "idle";
  /** The last welcome (this socket's identity and the visit status when it connected). */
  welcome: Extract<ServerFrame, { kind: "welcome" }> | null = null;
  /** The latest visit status the socket told us (welcome or visit-state). */
  visitStatus: VisitStatus | null = null;
  /** Other participants connected now: participant id → role. */
  readonly peers = new Map<string, ParticipantRole>();
  /** The close code that ended the socket for good (4401/4403/4410), else null. */
  finalCode: number | null = null;

  private socket: WebSocketLike | null = null;
  private listeners = new Set<FrameListener>();
  private statusListeners = new Set<(status: VisitSocketStatus) => void>();
  private signalHandler: SignalHandler | null = null;
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

  /** Participant ids of the other side's role that are connected now. */
  peersWithRole(role: ParticipantRole): string[] {
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
      case "signal":
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
