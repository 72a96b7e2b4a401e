// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { WaitingInfo } from "../api/types";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { button, heading, text } from "../testing/dom";
import { FakePeerConnection, fakeMediaEnv, type FakeEnvHandle } from "../testing/fakeRtc";
import { FakeSocket } from "../testing/FakeSocket";
import { resetMediaEnv, setMediaEnv } from "../telehealth/env";
import { makeVisit } from "../testing/telehealthFixtures";

const T = "/api/v1/telehealth";
const VISIT = "7f3c0000-0000-4000-8000-00000000000a";
const VISIT_STREAM = `group:visit.${VISIT}`;

let mounted: MountedApp | null = null;
let backend: FakeBackend;
let fake: FakeEnvHandle;
let waiting: WaitingInfo;
let visitStatus: "waiting" | "in-progress";

function byTestId(id: string): string {
  return text(document.querySelector(`[data-testid="${id}"]`));
}

async function openWaitingRoom(): Promise<MountedApp> {
  const app = await mountApp(`/visits/${VISIT}/waiting`, backend);
  await waitFor(() => byTestId("queue-position") !== "", "the waiting room");
  app.socket().open();
  app.socket().hello({ "user:20": 0 });
  await waitFor(() => app.socket().sent.some((f) => JSON.stringify(f) === JSON.stringify({ kind: "subscribe", stream: VISIT_STREAM })), "subscribe");
  app.socket().receive({ kind: "subscribed", stream: VISIT_STREAM, seq: 0 });
  await settle();
  return app;
}

beforeEach(() => {
  backend = new FakeBackend();
  backend.me = makeMe({ id: 20, roles: ["patient"], primary_role: "patient", patient_id: 42 });
  fake = fakeMediaEnv((url) => new FakeSocket(url));
  setMediaEnv(fake.env);
  FakePeerConnection.reset();
  waiting = {
    visit_id: VISIT,
    status: "waiting",
    position: 3,
    ahead: 2,
    estimated_wait_minutes: 25,
    doctor_name: "Dr Meredith Grey",
    doctor_status: "in-visit",
    notice: { body: "Running 10 minutes late", created_at: new Date().toISOString() },
    ready: true,
  };
  visitStatus = "waiting";
  backend.on(`GET ${T}/visits/${VISIT}/waiting/`, () => ({ status: 200, body: { ...waiting } }));
  backend.on(`GET ${T}/visits/${VISIT}/`, () => ({ status: 200, body: makeVisit({ status: visitStatus, admitted_at: visitStatus === "in-progress" ? new Date().toISOString() : null }) }));
  backend.on(`GET ${T}/visits/${VISIT}/messages/`, () => ({
    status: 200,
    body: { results: [{ id: 1, visit_id: VISIT, kind: "chat", body: "We will be with you shortly", sender_id: 3, sender_name: "Nurse Joy", sender_role: "staff", created_at: new Date().toISOString() }] },
  }));
  backend.on(`POST ${T}/ice-servers/`, () => ({ status: 200, body: { iceServers: [], iceTransportPolicy: "all", expiresAt: new Date(Date.now() + 600_000).toISOString(), ttlSeconds: 600 } }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  resetMediaEnv();
});

describe("VisitWaitingRoomPage", () => {
  it("shows the place, the estimate, the doctor's status, the notice and the chat, and keeps the visit socket open", async () => {
    mounted = await openWaitingRoom();
    expect(heading()).toBe("Waiting room");
    expect(byTestId("queue-position")).toBe("You are number 3 in the queue");
    expect(byTestId("estimated-wait")).toBe("Estimated wait: about 25 minutes");
    expect(byTestId("doctor-status")).toBe("Dr Meredith Grey is with another patient.");
    expect(byTestId("clinic-notice")).toContain("Running 10 minutes late");
    await waitFor(() => byTestId("chat-messages").includes("We will be with you shortly"), "the chat");
    expect(fake.sockets.map((s) => (s as FakeSocket).url)).toEqual([`ws://consulta.test/ws/v1/visits/${VISIT}/`]);
    // The camera preview is opened here (and kept for the call).
    expect(fake.userMediaCalls).toHaveLength(1);
  });

  it("refetches the waiting info on each waiting.changed event of the patient's stream", async () => {
    mounted = await openWaitingRoom();
    const before = backend.calls(`GET ${T}/visits/${VISIT}/waiting/`).length;
    waiting = { ...waiting, position: 1, ahead: 0, estimated_wait_minutes: 4, doctor_status: "available", notice: null };
    mounted.socket().push({ stream: "user:20", seq: 1, type: "waiting.changed", data: { visit_id: VISIT }, at: new Date().toISOString() });
    await waitFor(() => byTestId("queue-position").startsWith("You are number 1 in the queue"), "the new position");
    expect(backend.calls(`GET ${T}/visits/${VISIT}/waiting/`).length).toBe(before + 1);
    expect(byTestId("estimated-wait")).toBe("Estimated wait: about 4 minutes");
    expect(byTestId("doctor-status")).toBe("Dr Meredith Grey is online.");
    expect(document.querySelector('[data-testid="clinic-notice"]')).toBeNull();
  });

  it("moves to the visit page when the doctor admits, keeping the same visit socket", async () => {
    mounted = await openWaitingRoom();
    const visitSocket = fake.sockets[0] as FakeSocket;
    visitSocket.open();
    visitSocket.receive({ kind: "welcome", role: "patient", participant_id: "patient", status: "waiting" });
    visitStatus = "in-progress";
    waiting = { ...waiting, status: "in-progress" };
    mounted.socket().push({ stream: VISIT_STREAM, seq: 1, type: "visit.changed", data: { visit_id: VISIT, status: "in-progress", version: 2 }, at: new Date().toISOString() });
    // The visit page's chunk (WebRTC, chart, note editor) is compiled on first use: allow for it.
    await waitFor(() => heading().startsWith("Video visit"), "the visit page", 15_000);
    expect(mounted.router.currentRoute.value.path).toBe(`/visits/${VISIT}`);
    visitSocket.receive({ kind: "visit-state", status: "in-progress" });
    visitSocket.receive({ kind: "peer-joined", participant_id: "practitioner", role: "practitioner" });
    visitSocket.receive({ kind: "signal", type: "offer", sdp: "v=0 offer 1", from: "practitioner" });
    await waitFor(() => visitSocket.sent.some((f) => (f as { type?: string }).type === "answer"), "the answer");
    expect(fake.sockets).toHaveLength(1);
    expect(fake.userMediaCalls).toHaveLength(1);
  }, 20_000);

  it("leaves the queue with Leave waiting room", async () => {
    backend.on(`POST ${T}/visits/${VISIT}/leave/`, () => ({ status: 200, body: makeVisit({ status: "left" }) }));
    backend.on("GET /api/v1/scheduling/me/appointments/", () => ({ status: 200, body: { results: [] } }));
    backend.on("GET /api/v1/scheduling/me/waitlist/", () => ({ status: 200, body: { entries: [], offers: [] } }));
    mounted = await openWaitingRoom();
    button("Leave waiting room").click();
    await waitFor(() => mounted!.router.currentRoute.value.path === "/patient/appointments", "the appointments");
    expect(backend.calls(`POST ${T}/visits/${VISIT}/leave/`)).toHaveLength(1);
    expect((fake.sockets[0] as FakeSocket).closedByClient?.code).toBe(1000);
  });
});
