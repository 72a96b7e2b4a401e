import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { StreamEvent } from "../api/types";
import {
  RealtimeClient,
  backoffDelay,
  type FetchFn,
  type RealtimeClientOptions,
  type RealtimeWarning,
  type ResponseLike,
  type Termination,
} from "./RealtimeClient";
import { FakeSocket } from "../testing/FakeSocket";

// ------------------------------------------------------------------ fakes

function ev(stream: string, seq: number, type = "test.happened", data: Record<string, unknown> = {}): StreamEvent {
  return { stream, seq, type, data, at: new Date(Date.UTC(2026, 0, 1, 12, 0, seq)).toISOString() };
}

/** The REST side: a log of events per stream, served like /api/v1/realtime/events/. */
class FakeServer {
  readonly log = new Map<string, StreamEvent[]>();
  readonly calls: { stream: string; after: number }[] = [];
  readonly forbidden = new Set<string>();
  failuresLeft = 0;
  private held: (() => void)[] = [];
  holdRequests = false;

  /** Appends events up to seq `upTo` to a stream and returns the new ones. */
  emit(stream: string, upTo: number): StreamEvent[] {
    const events = this.log.get(stream) ?? [];
    const added: StreamEvent[] = [];
    for (let seq = (events.at(-1)?.seq ?? 0) + 1; seq <= upTo; seq++) {
      const event = ev(stream, seq);
      events.push(event);
      added.push(event);
    }
    this.log.set(stream, events);
    return added;
  }

  event(stream: string, seq: number): StreamEvent {
    const found = this.log.get(stream)?.find((e) => e.seq === seq);
    if (!found) throw new Error(`no event ${stream}#${seq}`);
    return found;
  }

  release(): void {
    const held = this.held;
    this.held = [];
    this.holdRequests = false;
    for (const resolve of held) resolve();
  }

  readonly fetch: FetchFn = async (url) => {
    const parsed = new URL(url, "http://consulta.test");
    expect(parsed.pathname).toBe("/api/v1/realtime/events/");
    const stream = parsed.searchParams.get("stream") ?? "";
    const after = Number(parsed.searchParams.get("after"));
    this.calls.push({ stream, after });
    if (this.holdRequests) await new Promise<void>((resolve) => this.held.push(resolve));
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      return jsonResponse(502, { code: "bad_gateway", detail: "upstream down" });
    }
    if (this.forbidden.has(stream)) {
      return jsonResponse(403, { code: "stream_forbidden", detail: "Not your stream." });
    }
    const all = this.log.get(stream) ?? [];
    return jsonResponse(200, {
      stream,
      last_seq: all.at(-1)?.seq ?? 0,
      events: all.filter((e) => e.seq > after).slice(0, 500),
    });
  };
}

function jsonResponse(status: number, body: unknown): ResponseLike {
  return { ok: status >= 200 && status < 300, status, json: async () => body };
}

/** Lets pending promise chains (fetch → json → deliver) run to the end. */
async function flush(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

function setup(options: Partial<RealtimeClientOptions> = {}) {
  const sockets: FakeSocket[] = [];
  const server = new FakeServer();
  const delivered: StreamEvent[] = [];
  const statuses: string[] = [];
  const terminations: Termination[] = [];
  const warnings: RealtimeWarning[] = [];
  const client = new RealtimeClient({
    url: "ws://consulta.test/ws/v1/events/",
    WebSocket: class extends FakeSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    },
    fetch: server.fetch,
    random: () => 0.5,
    onWarning: (warning) => warnings.push(warning),
    ...options,
  });
  client.subscribe((event) => delivered.push(event));
  client.onStatus((status) => statuses.push(status));
  client.onTerminated((termination) => terminations.push(termination));
  const socket = (): FakeSocket => {
    const last = sockets.at(-1);
    if (!last) throw new Error("no socket opened");
    return last;
  };
  const seqs = (stream: string) => delivered.filter((e) => e.stream === stream).map((e) => e.seq);
  return { client, sockets, socket, server, delivered, statuses, terminations, warnings, seqs };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

// ------------------------------------------------------------------ tests

describe("RealtimeClient sequencing", () => {
  it("adopts the hello seqs as the baseline on first connect, without fetching", async () => {
    const t = setup();
    t.server.emit("user:5", 12);
    t.client.start();
    expect(t.client.status).toBe("connecting");
    t.socket().open();
    t.socket().hello({ "user:5": 12, "role:practitioner": 3 });
    await flush();

    expect(t.client.status).toBe("live");
    expect(t.server.calls).toEqual([]);
    expect(t.delivered).toEqual([]);
    expect(t.client.knownSeq("user:5")).toBe(12);
    expect(t.client.knownSeq("role:practitioner")).toBe(3);

    t.socket().push(ev("user:5", 13));
    expect(t.seqs("user:5")).toEqual([13]);
    expect(t.server.calls).toEqual([]);
  });

  it("fetches the missing range when a live event skips seqs, then delivers in order", async () => {
    const t = setup();
    t.server.emit("user:5", 10);
    t.client.start();
    t.socket().open();
    t.socket().hello({ "user:5": 10 });

    t.server.emit("user:5", 14);
    t.socket().push(t.server.event("user:5", 14)); // 11..13 were lost
    expect(t.seqs("user:5")).toEqual([]); // held back until the gap is filled
    await flush();

    expect(t.server.calls).toEqual([{ stream: "user:5", after: 10 }]);
    expect(t.seqs("user:5")).toEqual([11, 12, 13, 14]);
    expect(t.client.knownSeq("user:5")).toBe(14);

    t.socket().push(ev("user:5", 15));
    expect(t.seqs("user:5")).toEqual([11, 12, 13, 14, 15]);
  });

  it("buffers live events that arrive while a gap is being fetched", async () => {
    const t = setup();
    t.client.start();
    t.socket().open();
    t.socket().hello({ "user:5": 0 });
    t.server.emit("user:5", 3);
    t.server.holdRequests = true;

    t.socket().push(t.server.event("user:5", 3)); // gap: 1, 2 missing
    await flush();
    t.server.emit("user:5", 5);
    t.socket().push(t.server.event("user:5", 4));
    t.socket().push(t.server.event("user:5", 5));
    expect(t.seqs("user:5")).toEqual([]);

    t.server.release();
    await flush();
    expect(t.seqs("user:5")).toEqual([1, 2, 3, 4, 5]);
    expect(t.server.calls).toHaveLength(1);
  });

  it("drops duplicates, whether repeated live or already fetched over REST", async () => {
    const t = setup();
    t.client.start();
    t.socket().open();
    t.socket().hello({ "user:5": 0 });
    t.server.emit("user:5", 2);

    t.socket().push(t.server.event("user:5", 1));
    t.socket().push(t.server.event("user:5", 1));
    t.socket().push(t.server.event("user:5", 2));
    t.socket().push(t.server.event("user:5", 1));
    t.socket().push(t.server.event("user:5", 2));
    await flush();
    expect(t.seqs("user:5")).toEqual([1, 2]);

    // 3..6 happen; 6 arrives live first (gap), then 4 and 5 arrive live during the fetch.
    t.server.emit("user:5", 6);
    t.server.holdRequests = true;
    t.socket().push(t.server.event("user:5", 6));
    await flush();
    t.socket().push(t.server.event("user:5", 4));
    t.socket().push(t.server.event("user:5", 5));
    t.server.release();
    await flush();
    t.socket().push(t.server.event("user:5", 6));
    expect(t.seqs("user:5")).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("catches up over REST after a reconnect before delivering live events", async () => {
    const t = setup();
    t.server.emit("user:5", 12);
    t.server.emit("role:practitioner", 3);
    t.client.start();
    t.socket().open();
    t.socket().hello({ "user:5": 12, "role:practitioner": 3 });

    t.socket().serverClose(1012); // server restart
    expect(t.client.status).toBe("reconnecting");
    t.server.emit("user:5", 15); // missed while away
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.sockets).toHaveLength(2);

    t.server.holdRequests = true;
    t.socket().open();
    t.socket().hello({ "user:5": 15, "role:practitioner": 3 });
    t.server.emit("user:5", 16);
    t.socket().push(t.server.event("user:5", 16)); // live, but 13..15 come first
    await flush();
    expect(t.seqs("user:5")).toEqual([]);

    t.server.release();
    await flush();
    expect(t.server.calls).toEqual([{ stream: "user:5", after: 12 }]);
    expect(t.seqs("user:5")).toEqual([13, 14, 15, 16]);
    expect(t.seqs("role:practitioner")).toEqual([]);
    expect(t.client.status).toBe("live");
  });

  it("pages through the REST endpoint while pages are full", async () => {
    const t = setup();
    t.client.start();
    t.socket().open();
    t.socket().hello({ "role:scheduler": 0 });
    t.socket().serverClose(1006);
    await vi.advanceTimersByTimeAsync(10_000);

    t.server.emit("role:scheduler", 1203);
    t.socket().open();
    t.socket().hello({ "role:scheduler": 1203 });
    await flush();

    expect(t.server.calls.map((c) => c.after)).toEqual([0, 500, 1000]);
    const seqs = t.seqs("role:scheduler");
    expect(seqs).toHaveLength(1203);
    expect(seqs).toEqual(Array.from({ length: 1203 }, (_, i) => i + 1));
  });

  it("retries a failed catch-up fetch with backoff", async () => {
    const t = setup();
    t.client.start();
    t.socket().open();
    t.socket().hello({ "user:5": 0 });
    t.server.emit("user:5", 2);
    t.server.failuresLeft = 2;

    t.socket().push(t.server.event("user:5", 2));
    await flush();
    expect(t.seqs("user:5")).toEqual([]);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(t.server.calls).toHaveLength(3);
    expect(t.seqs("user:5")).toEqual([1, 2]);
    expect(t.warnings.filter((w) => w.code === "fetch_failed")).toHaveLength(2);
  });

  it("stops tracking a stream the server says is forbidden", async () => {
    const t = setup();
    t.client.start();
    t.socket().open();
    t.socket().hello({ "role:admin": 4 });
    t.server.forbidden.add("role:admin");
    t.socket().push(ev("role:admin", 9));
    await flush();

    expect(t.delivered).toEqual([]);
    expect(t.client.knownSeq("role:admin")).toBeUndefined();
    expect(t.warnings.map((w) => w.code)).toContain("stream_forbidden");
  });

  it("skips a gap the server cannot fill after a few empty rounds", async () => {
    const t = setup({ maxEmptyCatchUpRounds: 2 });
    t.client.start();
    t.socket().open();
    t.socket().hello({ "user:5": 0 });
    // 1..4 were pruned from the server: REST has nothing for them.
    t.socket().push(ev("user:5", 5));
    await vi.advanceTimersByTimeAsync(5_000);

    expect(t.seqs("user:5")).toEqual([5]);
    expect(t.warnings.map((w) => w.code)).toContain("gap_unrecoverable");
  });

  it("keeps delivering to other subscribers when one throws", () => {
    const t = setup();
    t.client.subscribe(() => {
      throw new Error("boom");
    });
    t.client.start();
    t.socket().open();
    t.socket().hello({ "user:5": 0 });
    t.socket().push(ev("user:5", 1));
    t.socket().push(ev("user:5", 2));
    expect(t.seqs("user:5")).toEqual([1, 2]);
    expect(t.warnings.filter((w) => w.code === "listener_failed")).toHaveLength(2);
  });

  it("ignores malformed frames", () => {
    const t = setup();
    t.client.start();
    t.socket().open();
    t.socket().onmessage?.({ data: "not json" } as MessageEvent);
    t.socket().receive({ kind: "event", stream: "user:5" });
    t.socket().receive({ kind: "error", code: "bad_frame", detail: "What was that?" });
    expect(t.delivered).toEqual([]);
    expect(t.warnings.map((w) => w.code)).toEqual(["bad_frame", "bad_frame", "server_error_frame"]);
  });
});

describe("RealtimeClient connection", () => {
  it("computes full-jitter exponential backoff from 0.5 s capped at 10 s", () => {
    const max = () => 0.999999;
    expect([0, 1, 2, 3, 4, 5, 6, 10].map((n) => backoffDelay(n, max))).toEqual([
      499, 999, 1999, 3999, 7999, 9999, 9999, 9999,
    ]);
    expect(backoffDelay(3, () => 0)).toBe(0);
    expect(backoffDelay(2, () => 0.5)).toBe(1000);
  });

  it("reconnects with growing delays and resets the backoff after a hello", async () => {
    const t = setup({ random: () => 0.999999 });
    t.client.start();
    t.socket().open();
    t.socket().hello({ "user:5": 0 });
    expect(t.statuses).toEqual(["connecting", "live"]);

    // Three failed attempts in a row: 0.5 s, 1 s, 2 s ceilings.
    const expected = [499, 999, 1999];
    for (const [i, delay] of expected.entries()) {
      t.socket().serverClose(1006);
      expect(t.client.status).toBe("reconnecting");
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(t.sockets).toHaveLength(i + 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(t.sockets).toHaveLength(i + 2);
    }

    // This one succeeds; the next drop starts again from 0.5 s.
    t.socket().open();
    t.socket().hello({ "user:5": 0 });
    expect(t.client.status).toBe("live");
    t.socket().serverClose(1011);
    await vi.advanceTimersByTimeAsync(499);
    expect(t.sockets).toHaveLength(5);
    expect(t.statuses).toEqual(["connecting", "live", "reconnecting", "live", "reconnecting"]);
  });

  it("treats a constructor failure like a dropped socket", async () => {
    let calls = 0;
    const t = setup({
      WebSocket: class extends FakeSocket {
        constructor(url: string) {
          super(url);
          calls++;
          if (calls === 1) throw new Error("SecurityError");
        }
      },
    });
    t.client.start();
    expect(t.client.status).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(500);
    expect(calls).toBe(2);
  });

  it.each([4401, 4403])("does not reconnect after close code %i", async (code) => {
    const t = setup();
    t.client.start();
    t.socket().open();
    t.socket().hello({ "user:5": 0 });
    t.socket().serverClose(code);

    expect(t.client.status).toBe("terminated");
    expect(t.terminations).toEqual([{ code, revokedReason: null }]);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(t.sockets).toHaveLength(1);
  });

  it("reports the revocation reason of the last session.revoked event", async () => {
    const t = setup();
    t.client.start();
    t.socket().open();
    t.socket().hello({ "session:ab12cd": 0 });
    t.socket().push(ev("session:ab12cd", 1, "session.revoked", { reason: "deactivated" }));
    t.socket().serverClose(4403);

    expect(t.seqs("session:ab12cd")).toEqual([1]);
    expect(t.terminations).toEqual([{ code: 4403, revokedReason: "deactivated" }]);
  });

  it("pings every 25 s and reconnects when nothing answers within 10 s", async () => {
    const t = setup();
    t.client.start();
    t.socket().open();
    t.socket().hello({ "user:5": 0 });

    await vi.advanceTimersByTimeAsync(25_000);
    expect(t.socket().sent).toEqual([{ kind: "ping" }]);
    t.socket().receive({ kind: "pong" });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.sockets).toHaveLength(1); // answered: still alive

    await vi.advanceTimersByTimeAsync(15_000); // second ping at 50 s
    expect(t.socket().sent).toEqual([{ kind: "ping" }, { kind: "ping" }]);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(t.client.status).toBe("live");
    await vi.advanceTimersByTimeAsync(1);
    const dead = t.sockets[0];
    expect(dead?.closedByClient).not.toBeNull();
    expect(t.client.status).toBe("reconnecting");

    // A late close event from the dead socket must not schedule a second reconnect.
    dead?.serverClose(1006);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.sockets).toHaveLength(2);
  });

  it("stop() closes the socket and never reconnects", async () => {
    const t = setup();
    t.client.start();
    t.socket().open();
    t.socket().hello({ "user:5": 0 });
    t.client.stop();

    expect(t.client.status).toBe("stopped");
    expect(t.socket().closedByClient?.code).toBe(1000);
    t.socket().serverClose(1000);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.sockets).toHaveLength(1);
    t.client.start();
    expect(t.sockets).toHaveLength(1);
  });
});
