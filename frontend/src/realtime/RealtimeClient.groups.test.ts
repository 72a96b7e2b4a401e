import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { StreamEvent } from "../api/types";
import { FakeSocket } from "../testing/FakeSocket";
import { RealtimeClient, type FetchFn } from "./RealtimeClient";

const BOARD = "group:scheduling.board";

function ev(stream: string, seq: number): StreamEvent {
  return { stream, seq, type: "appointment.changed", data: { id: seq }, at: new Date(Date.UTC(2031, 2, 3, 8, 0, seq)).toISOString() };
}

async function flush(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

function setup() {
  const sockets: FakeSocket[] = [];
  const log: StreamEvent[] = [];
  const calls: { stream: string; after: number }[] = [];
  const fetch: FetchFn = async (url) => {
    const parsed = new URL(url, "http://consulta.test");
    const stream = parsed.searchParams.get("stream") ?? "";
    const after = Number(parsed.searchParams.get("after"));
    calls.push({ stream, after });
    const events = log.filter((e) => e.stream === stream && e.seq > after);
    return { ok: true, status: 200, json: async () => ({ stream, last_seq: log.at(-1)?.seq ?? 0, events }) };
  };
  const client = new RealtimeClient({
    url: "ws://consulta.test/ws/v1/events/",
    WebSocket: class extends FakeSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    },
    fetch,
    random: () => 0,
  });
  const delivered: StreamEvent[] = [];
  const joined: string[] = [];
  client.subscribe((event) => delivered.push(event));
  client.onSubscribed((stream) => joined.push(stream));
  const socket = (): FakeSocket => {
    const last = sockets.at(-1);
    if (!last) throw new Error("no socket");
    return last;
  };
  const connect = () => {
    socket().open();
    socket().hello({ "user:5": 0 });
  };
  const frames = () => socket().sent.filter((f) => (f as { kind: string }).kind !== "ping");
  return { client, sockets, socket, connect, frames, log, calls, delivered, joined };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("RealtimeClient group subscriptions", () => {
  it("subscribes once the socket is live, and adopts the subscribed seq as the baseline", async () => {
    const t = setup();
    const leave = t.client.subscribeStream(BOARD);
    t.client.start();
    expect(t.socket().sent).toEqual([]); // not live yet
    t.connect();
    expect(t.frames()).toEqual([{ kind: "subscribe", stream: BOARD }]);

    t.socket().receive({ kind: "subscribed", stream: BOARD, seq: 7 });
    await flush();
    expect(t.joined).toEqual([BOARD]);
    expect(t.client.knownSeq(BOARD)).toBe(7);
    expect(t.calls).toEqual([]);

    t.socket().push(ev(BOARD, 8));
    expect(t.delivered.map((e) => e.seq)).toEqual([8]);
    leave();
  });

  it("subscribes at once when already live", () => {
    const t = setup();
    t.client.start();
    t.connect();
    t.client.subscribeStream(BOARD);
    expect(t.frames()).toEqual([{ kind: "subscribe", stream: BOARD }]);
  });

  it("subscribes again after a reconnect and fetches what the group sent meanwhile", async () => {
    const t = setup();
    t.client.subscribeStream(BOARD);
    t.client.start();
    t.connect();
    t.socket().receive({ kind: "subscribed", stream: BOARD, seq: 2 });

    t.socket().serverClose(1006);
    t.log.push(ev(BOARD, 3), ev(BOARD, 4));
    vi.advanceTimersByTime(1);
    expect(t.sockets).toHaveLength(2);
    t.connect();
    expect(t.frames()).toEqual([{ kind: "subscribe", stream: BOARD }]);
    t.socket().receive({ kind: "subscribed", stream: BOARD, seq: 4 });
    await flush();

    expect(t.joined).toEqual([BOARD, BOARD]);
    expect(t.calls).toEqual([{ stream: BOARD, after: 2 }]);
    expect(t.delivered.map((e) => e.seq)).toEqual([3, 4]);
  });

  it("counts subscribers: unsubscribes when the last one leaves, then drops the group's events", () => {
    const t = setup();
    t.client.start();
    t.connect();
    const first = t.client.subscribeStream(BOARD);
    const second = t.client.subscribeStream(BOARD);
    t.socket().receive({ kind: "subscribed", stream: BOARD, seq: 0 });
    expect(t.frames()).toEqual([{ kind: "subscribe", stream: BOARD }]);

    first();
    first(); // a second call changes nothing
    expect(t.frames()).toHaveLength(1);
    second();
    expect(t.frames()).toEqual([
      { kind: "subscribe", stream: BOARD },
      { kind: "unsubscribe", stream: BOARD },
    ]);

    t.socket().push(ev(BOARD, 1)); // was in flight
    t.socket().receive({ kind: "subscribed", stream: BOARD, seq: 1 }); // late answer to an abandoned request
    expect(t.delivered).toEqual([]);
    expect(t.joined).toEqual([BOARD]);
  });

  it("does not ask for groups nobody wants after a reconnect", () => {
    const t = setup();
    t.client.start();
    t.connect();
    t.client.subscribeStream(BOARD)();
    t.socket().serverClose(1006);
    vi.advanceTimersByTime(1);
    t.connect();
    expect(t.frames()).toEqual([]);
  });
});
