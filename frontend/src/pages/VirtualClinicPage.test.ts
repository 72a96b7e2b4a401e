// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { QueueEntry, QueueView } from "../api/types";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { button, heading, link, navigation, text } from "../testing/dom";
import { FakePeerConnection, fakeMediaEnv, type FakeEnvHandle } from "../testing/fakeRtc";
import { FakeSocket } from "../testing/FakeSocket";
import { TEST_VISIT_ID, makeVisit } from "../testing/telehealthFixtures";
import { resetMediaEnv, setMediaEnv } from "../telehealth/env";

const T = "/api/v1/telehealth";
const VISIT = TEST_VISIT_ID;
const QUEUE_STREAM = "group:telehealth.queue.7";

let mounted: MountedApp | null = null;
let backend: FakeBackend;
let fake: FakeEnvHandle;
let queue: QueueView;

function entry(overrides: Partial<QueueEntry> = {}): QueueEntry {
  return {
    visit_id: VISIT,
    appointment_id: 100,
    patient_name: "Ada Abbott",
    appointment_start: new Date().toISOString(),
    checked_in_at: new Date().toISOString(),
    waiting_seconds: 600,
    ready: true,
    device_check: { camera: "pass", microphone: "pass", speaker: "skipped", turn: "pass" },
    intake: [
      { question: "What is the reason for your visit?", answer: "Sore throat" },
      { question: "Are you somewhere private?", answer: true },
    ],
    connected: true,
    position: 1,
    practitioner_id: 7,
    practitioner_name: "Dr Meredith Grey",
    ...overrides,
  };
}

function entries(section: string): string[] {
  return [...document.querySelectorAll(`[data-testid="${section}"] [data-testid="queue-entry"] h3`)].map(text);
}

beforeEach(() => {
  backend = new FakeBackend();
  backend.me = makeMe();
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
  fake = fakeMediaEnv((url) => new FakeSocket(url));
  setMediaEnv(fake.env);
  FakePeerConnection.reset();
  queue = { mine: [entry()], pool: [], notice: null, presence: { status: "offline", last_seen_at: null }, current_visit: null };
  backend.on(`GET ${T}/queue/`, () => ({ status: 200, body: structuredClone(queue) }));
  backend.on(`GET ${T}/colleagues/`, () => ({ status: 200, body: { results: [{ id: 7, name: "Dr Meredith Grey" }, { id: 8, name: "Dr Priya Raman" }] } }));
  backend.on(`POST ${T}/presence/`, () => ({ status: 204 }));
  backend.on(`POST ${T}/ice-servers/`, () => ({ status: 200, body: { iceServers: [], iceTransportPolicy: "all", expiresAt: new Date(Date.now() + 600_000).toISOString(), ttlSeconds: 600 } }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  resetMediaEnv();
});

describe("VirtualClinicPage", () => {
  it("is linked from the clinician's home and the nav, lists the queue with intake and readiness, and beats presence", async () => {
    mounted = await mountApp("/clinic", backend);
    expect(link("Virtual clinic", navigation("Main")).getAttribute("href")).toBe("/clinic/virtual");
    link("Open the virtual clinic").click();
    await waitFor(() => entries("my-queue").length === 1, "the queue");
    expect(heading()).toBe("Virtual clinic");
    expect(entries("my-queue")).toEqual(["1. Ada Abbott"]);
    const row = document.querySelector('[data-testid="queue-entry"]')!;
    expect(text(row)).toContain("Sore throat");
    expect([...row.querySelectorAll("dd")].map(text)).toEqual(["Sore throat", "Yes"]);
    expect(text(row.querySelector('[data-testid="queue-ready"]'))).toBe("Ready");
    expect(text(row)).toContain("waiting 10 min");
    expect(backend.calls(`POST ${T}/presence/`)[0]?.body).toEqual({ status: "available" });
  });

  it("refetches the queue on queue.changed", async () => {
    mounted = await mountApp("/clinic/virtual", backend);
    await waitFor(() => entries("my-queue").length === 1, "the queue");
    mounted.socket().open();
    mounted.socket().hello({ "user:7": 0 });
    await waitFor(() => mounted!.socket().sent.some((f) => JSON.stringify(f) === JSON.stringify({ kind: "subscribe", stream: QUEUE_STREAM })), "subscribe");
    mounted.socket().receive({ kind: "subscribed", stream: QUEUE_STREAM, seq: 0 });
    queue.mine = [entry(), entry({ visit_id: "7f3c0000-0000-4000-8000-00000000000b", patient_name: "Ben Brown", position: 2 })];
    mounted.socket().push({ stream: QUEUE_STREAM, seq: 1, type: "queue.changed", data: { practitioner_id: 7 }, at: new Date().toISOString() });
    await waitFor(() => entries("my-queue").length === 2, "the new entry");
    expect(entries("my-queue")).toEqual(["1. Ada Abbott", "2. Ben Brown"]);
  });

  it("posts and clears the notice, and messages a waiting patient", async () => {
    backend.on(`POST ${T}/notice/`, (request) => {
      queue.notice = { body: (request.body as { body: string }).body, created_at: new Date().toISOString() };
      return { status: 201, body: queue.notice };
    });
    backend.on(`DELETE ${T}/notice/`, () => {
      queue.notice = null;
      return { status: 204 };
    });
    backend.on(`POST ${T}/visits/${VISIT}/messages/`, (request) => ({
      status: 201,
      body: { id: 5, visit_id: VISIT, kind: "chat", body: (request.body as { body: string }).body, sender_id: 7, sender_name: "Dr Meredith Grey", sender_role: "practitioner", created_at: new Date().toISOString() },
    }));
    mounted = await mountApp("/clinic/virtual", backend);
    await waitFor(() => entries("my-queue").length === 1, "the queue");

    const notice = document.querySelector<HTMLInputElement>("#notice-body")!;
    notice.value = "Running 10 minutes late";
    notice.dispatchEvent(new Event("input"));
    button("Post notice").click();
    await waitFor(() => text(document.querySelector('[data-testid="active-notice"]')).includes("Running 10 minutes late"), "the notice");
    button("Clear notice").click();
    await waitFor(() => document.querySelector('[data-testid="active-notice"]') === null, "cleared");

    button("Message").click();
    await settle();
    const box = document.querySelector<HTMLTextAreaElement>(`#queue-${VISIT}-message`)!;
    box.value = "The doctor will see you in 5 minutes";
    box.dispatchEvent(new Event("input"));
    button("Send").click();
    await waitFor(() => backend.calls(`POST ${T}/visits/${VISIT}/messages/`).length === 1, "the message");
    expect(backend.calls(`POST ${T}/visits/${VISIT}/messages/`)[0]?.body).toEqual({ body: "The doctor will see you in 5 minutes" });
  });

  it("starts the call from the admit's answer with ICE servers fetched ahead; the chart, note and chat wait for the offer", async () => {
    const encounter = backend.clinical.addEncounter(42, { modality: "virtual" });
    let status: "waiting" | "in-progress" = "waiting";
    const detail = () => makeVisit({ status, role: "practitioner", patient_id: 42, encounter_id: encounter.id, admitted_at: status === "waiting" ? null : new Date().toISOString() });
    backend.on(`POST ${T}/visits/${VISIT}/admit/`, () => {
      status = "in-progress";
      return { status: 200, body: detail() };
    });
    backend.on(`GET ${T}/visits/${VISIT}/`, () => ({ status: 200, body: detail() }));
    backend.on(`GET ${T}/visits/${VISIT}/messages/`, () => ({ status: 200, body: { results: [] } }));
    mounted = await mountApp("/clinic/virtual", backend);
    await waitFor(() => entries("my-queue").length === 1, "the queue");
    // A patient is waiting: the ICE servers are fetched ahead, without a visit.
    await waitFor(() => backend.calls(`POST ${T}/ice-servers/`).length === 1, "the ICE prefetch");
    expect(backend.calls(`POST ${T}/ice-servers/`)[0]?.body).toEqual({});

    button("Admit").click();
    await waitFor(() => heading() === "Video visit with Ada Abbott", "the visit page", 15_000);
    const visitSocket = fake.sockets[0] as FakeSocket;
    expect(visitSocket).toBeDefined();
    // The call started from the admit's answer: no GET of the visit before it, no second ICE fetch.
    expect(backend.calls(`GET ${T}/visits/${VISIT}/`)).toHaveLength(0);
    await waitFor(() => fake.userMediaCalls.length === 1, "the camera");
    await settle();
    expect(backend.calls(`POST ${T}/ice-servers/`)).toHaveLength(1);
    const sideRequests = () =>
      backend.requests.filter((r) => r.path === `/api/v1/ehr/patients/42/summary/` || r.path.includes(`/encounters/${encounter.id}/notes/`) || r.path === `${T}/visits/${VISIT}/messages/`);
    expect(sideRequests()).toHaveLength(0);

    visitSocket.open();
    visitSocket.receive({ kind: "welcome", role: "practitioner", participant_id: "practitioner", status: "in-progress" });
    visitSocket.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    await waitFor(() => visitSocket.sent.some((f) => (f as { type?: string }).type === "offer"), "the offer");
    await waitFor(() => document.querySelector('[data-testid="visit-note"] textarea') !== null, "the note editor", 10_000);
    expect(sideRequests().length).toBeGreaterThanOrEqual(3);
    expect(FakePeerConnection.last().config.iceServers).toEqual([]);
    // Refreshed once in the background (the visit stream's join), never twice.
    mounted.socket().open();
    mounted.socket().hello({ "user:7": 0 });
    const visitStream = `group:visit.${VISIT}`;
    await waitFor(() => mounted!.socket().sent.some((f) => JSON.stringify(f) === JSON.stringify({ kind: "subscribe", stream: visitStream })), "subscribe");
    mounted.socket().receive({ kind: "subscribed", stream: visitStream, seq: 0 });
    await waitFor(() => backend.calls(`GET ${T}/visits/${VISIT}/`).length === 1, "the background refresh");
    await settle();
    expect(backend.calls(`GET ${T}/visits/${VISIT}/`)).toHaveLength(1);
  }, 30_000);

  it("admits into the visit page: video beside the chart and the visit's note, then End visit with a summary", async () => {
    const encounter = backend.clinical.addEncounter(42, { modality: "virtual" });
    let status: "waiting" | "in-progress" | "finished" = "waiting";
    const detail = () => makeVisit({ status, role: "practitioner", patient_id: 42, encounter_id: encounter.id, admitted_at: status === "waiting" ? null : new Date().toISOString() });
    backend.on(`POST ${T}/visits/${VISIT}/admit/`, () => {
      status = "in-progress";
      return { status: 200, body: detail() };
    });
    backend.on(`GET ${T}/visits/${VISIT}/`, () => ({ status: 200, body: detail() }));
    backend.on(`GET ${T}/visits/${VISIT}/messages/`, () => ({ status: 200, body: { results: [] } }));
    backend.on(`POST ${T}/visits/${VISIT}/end/`, () => {
      status = "finished";
      queue.mine = [];
      return { status: 200, body: detail() };
    });
    mounted = await mountApp("/clinic/virtual", backend);
    await waitFor(() => entries("my-queue").length === 1, "the queue");

    button("Admit").click();
    await waitFor(() => heading() === "Video visit with Ada Abbott", "the visit page", 15_000);
    expect(mounted.router.currentRoute.value.path).toBe(`/visits/${VISIT}`);
    await waitFor(() => document.querySelector('[data-testid="visit-note"] textarea') !== null, "the note editor", 10_000);
    expect(backend.clinical.notes.filter((n) => n.encounter_id === encounter.id)).toHaveLength(1);
    expect(document.querySelector('[data-testid="connection-panel"] [data-testid="frames-decoded"]')).not.toBeNull();
    expect(document.querySelector('[data-testid="candidate-type"]')).not.toBeNull();

    const visitSocket = fake.sockets[0] as FakeSocket;
    visitSocket.open();
    visitSocket.receive({ kind: "welcome", role: "practitioner", participant_id: "practitioner", status: "in-progress" });
    visitSocket.receive({ kind: "peer-present", participant_id: "patient", role: "patient" });
    await waitFor(() => visitSocket.sent.some((f) => (f as { type?: string }).type === "offer"), "the offer");

    const summary = document.querySelector<HTMLTextAreaElement>("#visit-summary")!;
    summary.value = "Rest and fluids.";
    summary.dispatchEvent(new Event("input"));
    await settle();
    button("End visit").click();
    await waitFor(() => heading() === "Virtual clinic", "back in the clinic", 10_000);
    expect(backend.calls(`POST ${T}/visits/${VISIT}/end/`)[0]?.body).toEqual({ summary: "Rest and fluids.", audio_only: true });
    expect(text(document.querySelector('[data-testid="clinic-notice-banner"]'))).toContain("The visit has ended");
    expect(visitSocket.closedByClient?.code).toBe(1000);
    expect(FakePeerConnection.last().closed).toBe(true);
  }, 30_000);
});
