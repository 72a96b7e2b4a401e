import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { FakeSocket } from "../testing/FakeSocket";
import { VisitSocket, parseVisitFrame, type SignalFrame } from "./visitSocket";

let sockets: FakeSocket[];
let socket: VisitSocket;

function last(): FakeSocket {
  const s = sockets.at(-1);
  if (!s) throw new Error("no socket");
  return s;
}

function welcome(status = "in-progress"): void {
  last().open();
  last().receive({ kind: "welcome", role: "patient", participant_id: "patient", status });
}

beforeEach(() => {
  vi.useFakeTimers();
  sockets = [];
  socket = new VisitSocket({
    url: "ws://consulta.test/ws/v1/visits/abc/",
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    random: () => 0,
  });
  socket.start();
});

afterEach(() => {
  socket.stop();
  vi.useRealTimers();
});

describe("VisitSocket", () => {
  it("tracks status and the other participants from welcome, peer-present, peer-joined and peer-left", () => {
    expect(socket.status).toBe("connecting");
    welcome("waiting");
    expect(socket.status).toBe("open");
    expect(socket.visitStatus).toBe("waiting");
    last().receive({ kind: "peer-present", participant_id: "practitioner", role: "practitioner" });
    expect(socket.peersWithRole("practitioner")).toEqual(["practitioner"]);
    last().receive({ kind: "visit-state", status: "in-progress" });
    expect(socket.visitStatus).toBe("in-progress");
    last().receive({ kind: "peer-left", participant_id: "practitioner" });
    expect(socket.peersWithRole("practitioner")).toEqual([]);
  });

  it("keeps signals until a handler attaches, drops those of a peer that rejoined, then delivers in order", () => {
    welcome();
    last().receive({ kind: "signal", type: "offer", sdp: "v=0 old", from: "practitioner" });
    last().receive({ kind: "peer-joined", participant_id: "practitioner", role: "practitioner" });
    last().receive({ kind: "signal", type: "offer", sdp: "v=0 new", from: "practitioner" });
    last().receive({ kind: "signal", type: "candidate", candidate: null, from: "practitioner" });
    const got: SignalFrame[] = [];
    const detach = socket.attachSignals((frame) => got.push(frame));
    last().receive({ kind: "signal", type: "restart", from: "practitioner" });
    expect(got.map((f) => f.type)).toEqual(["offer", "candidate", "restart"]);
    expect(got[0]).toMatchObject({ sdp: "v=0 new" });
    detach();
    last().receive({ kind: "signal", type: "restart", from: "practitioner" });
    expect(got).toHaveLength(3);
  });

  it("sends only while open, and pings to notice a dead connection", () => {
    expect(socket.send({ kind: "ping" })).toBe(false);
    welcome();
    expect(socket.send({ kind: "media", audio: true, video: false, screen: false })).toBe(true);
    vi.advanceTimersByTime(20_000);
    expect(last().sent).toContainEqual({ kind: "ping" });
    const first = last();
    vi.advanceTimersByTime(10_000);
    expect(first.closedByClient?.code).toBe(4000);
    expect(socket.status).toBe("reconnecting");
    vi.advanceTimersByTime(1000);
    expect(sockets).toHaveLength(2);
  });

  it("reconnects with backoff after a network drop or a rate-limit close", () => {
    welcome();
    last().serverClose(1006);
    expect(socket.status).toBe("reconnecting");
    vi.advanceTimersByTime(250);
    expect(sockets).toHaveLength(2);
    last().serverClose(4429);
    vi.advanceTimersByTime(499);
    expect(sockets).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(sockets).toHaveLength(3);
    welcome();
    expect(socket.status).toBe("open");
  });

  it.each([4401, 4403, 4409, 4410])("does not reconnect after close %i", (code) => {
    welcome();
    last().serverClose(code);
    vi.advanceTimersByTime(60_000);
    expect(sockets).toHaveLength(1);
    expect(socket.status).toBe("closed");
    expect(socket.finalCode).toBe(code);
    if (code === 4410) expect(socket.visitStatus).toBe("finished");
  });

  it("ignores frames it does not know", () => {
    expect(parseVisitFrame("not json")).toBeNull();
    expect(parseVisitFrame(JSON.stringify({ kind: "surprise" }))).toBeNull();
    expect(parseVisitFrame(JSON.stringify({ kind: "signal", type: "bogus" }))).toBeNull();
    expect(parseVisitFrame(JSON.stringify({ kind: "pong" }))).toEqual({ kind: "pong" });
  });
});
