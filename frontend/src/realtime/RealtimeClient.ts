/**
 * RealtimeClient: one websocket per tab to /ws/v1/events/, with per-stream sequence
 * tracking so that every event reaches subscribers exactly once and in order.
 *
 * Framework-free on purpose: the WebSocket constructor, fetch, the random source and
 * the URL are injected, so the whole protocol is unit-tested without a browser.
 *
 * Guarantees, per stream:
 * - first time a stream is seen (first hello), the server's seq is the baseline: nothing
 *   older is fetched;
 * - when the server is ahead of us (a later hello, or a live event with seq > known + 1),
 *   the missing events are fetched over REST (`after` = known seq, paging while a page is
 *   full) and delivered before any live event of that stream, which is buffered meanwhile;
 * - an event with seq <= known is a duplicate and is dropped.
 *
 * Group streams (`group:<name>`) are joined on request: `subscribeStream` sends a subscribe frame
 * now (if live) and again after every reconnect; the server's `subscribed` answer carries the
 * stream's seq and is treated like a hello for that stream (baseline first time, catch-up later).
 * Events of a group stream nobody subscribes to any more are dropped.
 *
 * Connection: a ping every 25 s; no frame within 10 s of a ping means the socket is dead.
 * Close 4401/4403 ends the client (no reconnect); any other close reconnects with
 * exponential backoff and full jitter (0.5 s doubling, capped at 10 s).
 */
import type { StreamEvent, StreamEventPage } from "../api/types";
import {
  CLOSE_NOT_AUTHENTICATED,
  CLOSE_SESSION_REVOKED,
  EVENTS_PAGE_SIZE,
  isStreamEvent,
  parseServerFrame,
  type PingFrame,
  type SubscriptionFrame,
} from "./protocol";

export type RealtimeStatus =
  /** Created, start() not called yet. */
  | "idle"
  /** Opening the first socket. */
  | "connecting"
  /** hello received: events flow. */
  | "live"
  /** The socket dropped; waiting for or opening the next one. */
  | "reconnecting"
  /** The server ended the session (4401/4403); the client will not reconnect. */
  | "terminated"
  /** stop() was called. */
  | "stopped";

/** The part of the browser WebSocket this client uses (the real one satisfies it). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The part of a fetch Response this client reads. */
export type ResponseLike = Pick<Response, "ok" | "status" | "json">;
export type FetchFn = (url: string, init?: RequestInit) => Promise<ResponseLike>;

export interface Termination {
  code: number;
  /** data.reason of the last `session.revoked` event received, if any ("deactivated", "logged_out"). */
  revokedReason: string | null;
}

export interface RealtimeWarning {
  code:
    | "bad_frame"
    | "server_error_frame"
    | "fetch_failed"
    | "stream_forbidden"
    | "gap_unrecoverable"
    | "sequence_reset"
    | "listener_failed";
  stream?: string;
  detail?: string;
}

export interface RealtimeClientOptions {
  /** Websocket URL, evaluated at every (re)connect. Defaults to /ws/v1/events/ on this origin. */
  url?: string | (() => string);
  WebSocket?: WebSocketConstructor;
  fetch?: FetchFn;
  /** REST endpoint for missed events. */
  eventsPath?: string;
  /** Source of jitter in [0, 1). */
  random?: () => number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** How many REST rounds that bring nothing new are tolerated before skipping a gap. */
  maxEmptyCatchUpRounds?: number;
  onWarning?: (warning: RealtimeWarning) => void;
}

export type RealtimeEventListener = (event: StreamEvent) => void;
export type StatusListener = (status: RealtimeStatus) => void;
export type TerminationListener = (termination: Termination) => void;
/** Told each time the server confirms a group subscription (first time, and again after each reconnect). */
export type SubscribedListener = (stream: string) => void;

interface StreamState {
  /** seq of the last event delivered (or the baseline). */
  known: number;
  /** Highest seq the server is known to have for this stream. */
  target: number;
  /** Events received live (or out of order) and not yet delivered, by seq. */
  buffer: Map<number, StreamEvent>;
  catchingUp: boolean;
}

class FetchError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(`GET events failed: ${status} ${code}`);
  }
}

export function defaultRealtimeUrl(): string {
  const { protocol, host } = globalThis.location;
  return `${protocol === "https:" ? "wss:" : "ws:"}//${host}/ws/v1/events/`;
}

/** Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt: number, random: () => number, baseMs = 500, capMs = 10_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

const OPEN = 1;

export class RealtimeClient {
  private readonly options: Required<Omit<RealtimeClientOptions, "onWarning">> &
    Pick<RealtimeClientOptions, "onWarning">;
  private readonly streams = new Map<string, StreamState>();
  private readonly eventListeners = new Set<RealtimeEventListener>();
  private readonly statusListeners = new Set<StatusListener>();
  private readonly terminationListeners = new Set<TerminationListener>();
  private readonly subscribedListeners = new Set<SubscribedListener>();
  /** Group streams wanted, with how many callers want each. */
  private readonly groups = new Map<string, number>();

  private currentStatus: RealtimeStatus = "idle";
  private socket: WebSocketLike | null = null;
  /** Bumped for every socket so that callbacks of an abandoned socket are ignored. */
  private generation = 0;
  /** Reconnect attempts since the last hello. */
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private revokedReason: string | null = null;
  /** Set by stop() and by termination: pending catch-ups and timers must not act any more. */
  private finished = false;

  constructor(options: RealtimeClientOptions = {}) {
    this.options = {
      url: options.url ?? defaultRealtimeUrl,
      WebSocket: options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructor),
      fetch: options.fetch ?? ((url, init) => globalThis.fetch(url, init)),
      eventsPath: options.eventsPath ?? "/api/v1/realtime/events/",
      random: options.random ?? Math.random,
      pingIntervalMs: options.pingIntervalMs ?? 25_000,
      pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
      backoffBaseMs: options.backoffBaseMs ?? 500,
      backoffCapMs: options.backoffCapMs ?? 10_000,
      maxEmptyCatchUpRounds: options.maxEmptyCatchUpRounds ?? 3,
      onWarning: options.onWarning,
    };
  }

  get status(): RealtimeStatus {
    return this.currentStatus;
  }

  /** The last seq delivered (or adopted as baseline) for a stream. */
  knownSeq(stream: string): number | undefined {
    return this.streams.get(stream)?.known;
  }

  /** Opens the socket. Calling it again while running does nothing; a stopped client cannot restart. */
  start(): void {
    if (this.currentStatus !== "idle") return;
    this.connect();
  }

  /** Closes the socket for good (sign-out, tab teardown). */
  stop(): void {
    if (this.finished) return;
    this.finished = true;
    this.teardownSocket(1000, "client stopped");
    this.clearReconnect();
    this.setStatus("stopped");
  }

  subscribe(listener: RealtimeEventListener): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onStatus(listener: StatusListener): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  onTerminated(listener: TerminationListener): () => void {
    this.terminationListeners.add(listener);
    return () => this.terminationListeners.delete(listener);
  }

  /**
   * Receive a `group:<name>` stream on this socket, now and after every reconnect, until the returned
   * function is called (by every caller that asked for it: subscriptions are counted).
   */
  subscribeStream(stream: string): () => void {
    const count = this.groups.get(stream) ?? 0;
    this.groups.set(stream, count + 1);
    if (count === 0 && this.currentStatus === "live") this.sendSubscription("subscribe", stream);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.groups.get(stream) ?? 1) - 1;
      if (left > 0) {
        this.groups.set(stream, left);
        return;
      }
      this.groups.delete(stream);
      this.streams.delete(stream);
      if (this.currentStatus === "live") this.sendSubscription("unsubscribe", stream);
    };
  }

  onSubscribed(listener: SubscribedListener): () => void {
    this.subscribedListeners.add(listener);
    return () => this.subscribedListeners.delete(listener);
  }

  // ---------------------------------------------------------------- connection

  private connect(): void {
    this.reconnectTimer = null;
    if (this.finished) return;
    this.setStatus(this.currentStatus === "idle" || this.currentStatus === "connecting" ? "connecting" : "reconnecting");
    const generation = ++this.generation;
    let socket: WebSocketLike;
    try {
      const url = typeof this.options.url === "function" ? this.options.url() : this.options.url;
      socket = new this.options.WebSocket(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    const current = () => generation === this.generation && !this.finished;
    socket.onopen = () => {
      if (current()) this.startHeartbeat();
    };
    socket.onmessage = (event) => {
      if (!current()) return;
      this.clearPongTimer();
      this.handleFrame(event.data);
    };
    socket.onclose = (event) => {
      if (current()) this.handleClose(event.code);
    };
    // An error is always followed by a close event, which decides what happens next.
    socket.onerror = () => undefined;
  }

  private handleClose(code: number): void {
    this.stopHeartbeat();
    this.socket = null;
    if (code === CLOSE_NOT_AUTHENTICATED || code === CLOSE_SESSION_REVOKED) {
      this.finished = true;
      this.generation++;
      this.setStatus("terminated");
      const termination: Termination = { code, revokedReason: this.revokedReason };
      for (const listener of [...this.terminationListeners]) listener(termination);
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.finished) return;
    this.clearReconnect();
    this.setStatus("reconnecting");
    const delay = backoffDelay(this.attempt, this.options.random, this.options.backoffBaseMs, this.options.backoffCapMs);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  /** Detaches the current socket (its late callbacks are ignored) and closes it. */
  private teardownSocket(code?: number, reason?: string): void {
    this.stopHeartbeat();
    const socket = this.socket;
    this.socket = null;
    this.generation++;
    if (!socket) return;
    try {
      socket.close(code, reason);
    } catch {
      // Closing an already broken socket may throw; it is gone either way.
    }
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => this.ping(), this.options.pingIntervalMs);
  }

  private ping(): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN) return;
    const frame: PingFrame = { kind: "ping" };
    try {
      socket.send(JSON.stringify(frame));
    } catch {
      this.onDeadSocket();
      return;
    }
    if (this.pongTimer === null) {
      this.pongTimer = setTimeout(() => this.onDeadSocket(), this.options.pongTimeoutMs);
    }
  }

  private sendSubscription(kind: SubscriptionFrame["kind"], stream: string): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN) return;
    const frame: SubscriptionFrame = { kind, stream };
    try {
      socket.send(JSON.stringify(frame));
    } catch {
      // The socket is dying; its close reconnects, and the next hello subscribes again.
    }
  }

  private onDeadSocket(): void {
    this.teardownSocket(1000, "heartbeat timeout");
    this.scheduleReconnect();
  }

  private clearPongTimer(): void {
    if (this.pongTimer !== null) clearTimeout(this.pongTimer);
    this.pongTimer = null;
  }

  private stopHeartbeat(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.clearPongTimer();
  }

  private setStatus(status: RealtimeStatus): void {
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    for (const listener of [...this.statusListeners]) listener(status);
  }

  private warn(warning: RealtimeWarning): void {
    this.options.onWarning?.(warning);
  }

  // ---------------------------------------------------------------- frames

  private handleFrame(raw: unknown): void {
    const frame = parseServerFrame(raw);
    if (!frame) {
      this.warn({ code: "bad_frame" });
      return;
    }
    switch (frame.kind) {
      case "hello":
        this.attempt = 0;
        this.setStatus("live");
        this.handleHello(frame.streams);
        // A new socket starts with the default streams only: ask again for the groups.
        for (const stream of this.groups.keys()) this.sendSubscription("subscribe", stream);
        break;
      case "subscribed":
        if (!this.groups.has(frame.stream)) break; // given up meanwhile
        this.handleHello({ [frame.stream]: frame.seq });
        for (const listener of [...this.subscribedListeners]) {
          try {
            listener(frame.stream);
          } catch (error) {
            this.warn({ code: "listener_failed", stream: frame.stream, detail: String(error) });
          }
        }
        break;
      case "unsubscribed":
        break;
      case "event": {
        const event: StreamEvent = { stream: frame.stream, seq: frame.seq, type: frame.type, data: frame.data, at: frame.at };
        if (event.type === "session.revoked") {
          const reason = event.data.reason;
          this.revokedReason = typeof reason === "string" ? reason : null;
        }
        this.handleLiveEvent(event);
        break;
      }
      case "pong":
        break;
      case "error":
        this.warn({ code: "server_error_frame", detail: `${frame.code}: ${frame.detail}` });
        break;
    }
  }

  private handleHello(serverSeqs: Record<string, number>): void {
    for (const [stream, serverSeq] of Object.entries(serverSeqs)) {
      const state = this.streams.get(stream);
      if (!state) {
        // First sight of this stream: adopt the server's position as the baseline.
        this.streams.set(stream, { known: serverSeq, target: serverSeq, buffer: new Map(), catchingUp: false });
        continue;
      }
      if (serverSeq < state.known && !state.catchingUp) {
        // Sequences never go back unless the server's stream was reset; follow it.
        this.warn({ code: "sequence_reset", stream, detail: `${state.known} -> ${serverSeq}` });
        state.known = serverSeq;
        state.target = serverSeq;
        state.buffer.clear();
        continue;
      }
      state.target = Math.max(state.target, serverSeq);
      if (state.target > state.known) void this.catchUp(stream, state);
    }
  }

  private handleLiveEvent(event: StreamEvent): void {
    // A group left a moment ago may still send what was in flight.
    if (event.stream.startsWith("group:") && !this.groups.has(event.stream)) return;
    let state = this.streams.get(event.stream);
    if (!state) {
      // A stream that the hello did not announce: nothing to compare with, start from here.
      state = { known: event.seq - 1, target: event.seq, buffer: new Map(), catchingUp: false };
      this.streams.set(event.stream, state);
    }
    if (event.seq <= state.known) return; // duplicate
    state.target = Math.max(state.target, event.seq);
    if (state.catchingUp) {
      state.buffer.set(event.seq, event);
      return;
    }
    if (event.seq === state.known + 1) {
      this.deliver(state, event);
      return;
    }
    state.buffer.set(event.seq, event); // gap: fetch what is missing first
    void this.catchUp(event.stream, state);
  }

  private deliver(state: StreamState, event: StreamEvent): void {
    state.known = event.seq;
    state.buffer.delete(event.seq);
    for (const listener of [...this.eventListeners]) {
      try {
        listener(event);
      } catch (error) {
        this.warn({ code: "listener_failed", stream: event.stream, detail: String(error) });
      }
    }
  }

  /** Delivers buffered events that continue the sequence; drops buffered duplicates. */
  private drain(state: StreamState): void {
    for (const seq of [...state.buffer.keys()]) {
      if (seq <= state.known) state.buffer.delete(seq);
    }
    let next = state.buffer.get(state.known + 1);
    while (next) {
      this.deliver(state, next);
      next = state.buffer.get(state.known + 1);
    }
  }

  private active(stream: string, state: StreamState): boolean {
    return !this.finished && this.streams.get(stream) === state;
  }

  /** Fetches and delivers everything between state.known and state.target, then the buffer. */
  private async catchUp(stream: string, state: StreamState): Promise<void> {
    if (state.catchingUp) return;
    state.catchingUp = true;
    let failures = 0;
    let emptyRounds = 0;
    try {
      while (this.active(stream, state)) {
        this.drain(state);
        if (state.known >= state.target) break;

        let page: StreamEventPage;
        try {
          page = await this.fetchPage(stream, state.known);
        } catch (error) {
          if (!this.active(stream, state)) return;
          if (error instanceof FetchError && error.status === 403) {
            this.warn({ code: "stream_forbidden", stream });
            this.streams.delete(stream);
            return;
          }
          if (error instanceof FetchError && error.status === 401) {
            // Signed out: the socket is closed with 4401 right after; nothing to catch up.
            return;
          }
          this.warn({ code: "fetch_failed", stream, detail: String(error) });
          await this.sleep(backoffDelay(failures++, this.options.random, this.options.backoffBaseMs, this.options.backoffCapMs));
          continue;
        }
        if (!this.active(stream, state)) return;
        failures = 0;

        const before = state.known;
        const events = page.events.filter(isStreamEvent).sort((a, b) => a.seq - b.seq);
        for (const event of events) {
          if (event.stream !== stream || event.seq <= state.known) continue;
          if (event.seq === state.known + 1) this.deliver(state, event);
          else state.buffer.set(event.seq, event);
        }
        if (typeof page.last_seq === "number") state.target = Math.max(state.target, page.last_seq);
        this.drain(state);

        if (events.length >= EVENTS_PAGE_SIZE) continue; // a full page: there may be more
        if (state.known > before) {
          emptyRounds = 0;
          continue;
        }
        if (state.known >= state.target) break;
        // The server could not fill the gap (pruned history?). Retry a few times, then move on
        // rather than holding back every later event forever.
        emptyRounds++;
        if (emptyRounds >= this.options.maxEmptyCatchUpRounds) {
          const buffered = [...state.buffer.keys()].sort((a, b) => a - b);
          const skipTo = (buffered[0] ?? state.target + 1) - 1;
          this.warn({ code: "gap_unrecoverable", stream, detail: `${state.known + 1}..${skipTo}` });
          state.known = skipTo;
          emptyRounds = 0;
          continue;
        }
        await this.sleep(backoffDelay(emptyRounds, this.options.random, this.options.backoffBaseMs, this.options.backoffCapMs));
      }
    } finally {
      state.catchingUp = false;
    }
  }

  private async fetchPage(stream: string, after: number): Promise<StreamEventPage> {
    const params = new URLSearchParams({ stream, after: String(after) });
    const response = await this.options.fetch(`${this.options.eventsPath}?${params.toString()}`, {
      method: "GET",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) {
      let code = `http_${response.status}`;
      try {
        const body: unknown = await response.json();
        if (typeof body === "object" && body !== null && typeof (body as { code?: unknown }).code === "string") {
          code = (body as { code: string }).code;
        }
      } catch {
        // Not JSON: keep the HTTP status as the code.
      }
      throw new FetchError(response.status, code);
    }
    const page = (await response.json()) as StreamEventPage;
    if (!page || !Array.isArray(page.events)) throw new FetchError(response.status, "bad_page");
    return page;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}
