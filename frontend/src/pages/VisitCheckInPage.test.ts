// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { CheckInInfo, IceConfig } from "../api/types";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { FakeBooking, makeAppointment } from "../testing/bookingBackend";
import { button, byRole, heading, text } from "../testing/dom";
import { FakePeerConnection, fakeMediaEnv, type FakeEnvHandle } from "../testing/fakeRtc";
import { FakeSocket } from "../testing/FakeSocket";
import { makeVisit } from "../testing/telehealthFixtures";
import { resetMediaEnv, setMediaEnv } from "../telehealth/env";

const T = "/api/v1/telehealth";
const VISIT = "7f3c0000-0000-4000-8000-00000000000a";

let mounted: MountedApp | null = null;
let backend: FakeBackend;
let fake: FakeEnvHandle;

function makeInfo(overrides: Partial<CheckInInfo> = {}): CheckInInfo {
  const start = new Date(Date.now() + 10 * 60_000).toISOString();
  return {
    appointment: { id: 100, start, end: new Date(Date.parse(start) + 30 * 60_000).toISOString(), practitioner_name: "Dr Meredith Grey", type_name: "Video consultation" },
    consent_text: "I agree to be seen by video.",
    questions: [
      { id: "reason", text: "What is the reason for your visit?", kind: "text", required: true },
      { id: "private", text: "Are you somewhere private?", kind: "yesno", required: true },
      { id: "medications_changed", text: "Have your current medications changed?", kind: "yesno", required: false },
    ],
    visit_id: null,
    visit_status: null,
    opens_at: new Date(Date.now() - 50 * 60_000).toISOString(),
    closes_at: start,
    can_check_in: true,
    ...overrides,
  };
}

const ICE: IceConfig = {
  iceServers: [{ urls: ["turn:turn.test:3478"], username: "u", credential: "c" }],
  iceTransportPolicy: "all",
  expiresAt: new Date(Date.now() + 600_000).toISOString(),
  ttlSeconds: 600,
};

function check(label: string): HTMLInputElement {
  const input = [...document.querySelectorAll("label")].find((l) => text(l) === label);
  const control = input ? document.getElementById(input.htmlFor) : null;
  if (!(control instanceof HTMLInputElement)) throw new Error(`no checkbox ${label}`);
  return control;
}

function radio(legend: string, value: "yes" | "no"): HTMLInputElement {
  const fieldset = [...document.querySelectorAll("fieldset")].find((f) => text(f.querySelector("legend")).startsWith(legend));
  const found = fieldset?.querySelector<HTMLInputElement>(`input[value="${value}"]`);
  if (!found) throw new Error(`no radio ${legend} ${value}`);
  return found;
}

beforeEach(() => {
  backend = new FakeBackend();
  backend.me = makeMe({ id: 20, roles: ["patient"], primary_role: "patient", patient_id: 42, display_name: "Ada Abbott" });
  fake = fakeMediaEnv((url) => new FakeSocket(url));
  setMediaEnv(fake.env);
  FakePeerConnection.reset();
  backend.on(`POST ${T}/ice-servers/`, () => ({ status: 200, body: ICE }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  resetMediaEnv();
});

describe("Check in on the appointments page", () => {
  it("offers Check in for a video appointment whose window is open, and opens its check-in", async () => {
    const booking = new FakeBooking(backend);
    const soon = new Date(Date.now() + 20 * 60_000).toISOString();
    booking.addAppointment(makeAppointment({ id: 100, start: soon, modality: "video" }));
    booking.addAppointment(makeAppointment({ id: 101, start: new Date(Date.now() + 3 * 3600_000).toISOString(), modality: "video" }));
    booking.addAppointment(makeAppointment({ id: 102, start: soon, modality: "in-person" }));
    backend.on(`GET ${T}/appointments/100/check-in/`, () => ({ status: 200, body: makeInfo() }));
    mounted = await mountApp("/patient/appointments", backend);
    await waitFor(() => document.querySelector('[data-testid="upcoming-appointments"]') !== null, "the list");

    const offered = [...document.querySelectorAll<HTMLElement>('[data-testid="check-in"]')].map((el) => el.dataset.appointmentId);
    expect(offered).toEqual(["100"]);
    button("Check in").click();
    await waitFor(() => heading() === "Check in for your video visit", "the check-in page");
    expect(mounted.router.currentRoute.value.path).toBe("/visits/check-in/100");
  });
});

describe("VisitCheckInPage", () => {
  it("needs consent and the required answers, then checks in with yes/no as booleans and runs the device check", async () => {
    backend.on(`GET ${T}/appointments/100/check-in/`, () => ({ status: 200, body: makeInfo() }));
    backend.on(`POST ${T}/appointments/100/check-in/`, () => ({ status: 201, body: makeVisit() }));
    backend.on(`POST ${T}/visits/${VISIT}/device-check/`, () => ({ status: 200, body: makeVisit({ ready: true }) }));
    backend.on(`GET ${T}/visits/${VISIT}/waiting/`, () => ({
      status: 200,
      body: { visit_id: VISIT, status: "waiting", position: 2, ahead: 1, estimated_wait_minutes: 12, doctor_name: "Dr Meredith Grey", doctor_status: "in-visit", notice: null, ready: true },
    }));
    backend.on(`GET ${T}/visits/${VISIT}/`, () => ({ status: 200, body: makeVisit() }));
    backend.on(`GET ${T}/visits/${VISIT}/messages/`, () => ({ status: 200, body: { results: [] } }));
    mounted = await mountApp("/visits/check-in/100", backend);
    await waitFor(() => text(document.querySelector('[data-testid="consent-text"]')) !== "", "the form");
    expect(text(document.querySelector('[data-testid="check-in-appointment"]'))).toContain("Video consultation with Dr Meredith Grey");

    button("Check in").click();
    await settle();
    expect(byRole("alert").map(text).join(" ")).toContain("Some answers are missing.");
    expect(backend.calls(`POST ${T}/appointments/100/check-in/`)).toHaveLength(0);

    check("I consent to this video visit").click();
    const reason = document.querySelector<HTMLTextAreaElement>("#intake-reason")!;
    reason.value = "  Sore throat ";
    reason.dispatchEvent(new Event("input"));
    radio("Are you somewhere private?", "yes").click();
    await settle();
    button("Check in").click();
    await waitFor(() => document.querySelector('[data-testid="device-check"]') !== null, "the device check");
    expect(backend.calls(`POST ${T}/appointments/100/check-in/`)[0]?.body).toEqual({
      consent: true,
      answers: { reason: "Sore throat", private: true },
    });

    button("Run device check").click();
    await waitFor(() => FakePeerConnection.created.length === 1, "the relay probe");
    const probe = FakePeerConnection.last();
    expect(probe.config).toEqual({ iceServers: ICE.iceServers, iceTransportPolicy: "relay" });
    probe.gather("candidate:1 1 udp 41885439 203.0.113.5 50000 typ relay raddr 0.0.0.0 rport 0");
    await waitFor(() => document.querySelector('[data-testid="device-turn"]')?.getAttribute("data-state") === "pass", "turn pass");
    expect(probe.closed).toBe(true);
    expect(document.querySelector('[data-testid="device-camera"]')?.getAttribute("data-state")).toBe("pass");
    expect(document.querySelector('[data-testid="device-microphone"]')?.getAttribute("data-state")).toBe("pass");
    expect(byRole("status").map(text).join(" ")).toContain("Your camera and microphone work.");

    button("Continue to waiting room").click();
    await waitFor(() => heading() === "Waiting room", "the waiting room");
    expect(backend.calls(`POST ${T}/visits/${VISIT}/device-check/`)[0]?.body).toEqual({ camera: "pass", microphone: "pass", speaker: "skipped", turn: "pass" });
    await waitFor(() => text(document.querySelector('[data-testid="queue-position"]')) !== "", "the position");
    expect(text(document.querySelector('[data-testid="queue-position"]'))).toBe("You are number 2 in the queue");
    expect(text(document.querySelector('[data-testid="estimated-wait"]'))).toBe("Estimated wait: about 12 minutes");
    // The check's camera stream is handed on (no second getUserMedia for the preview).
    expect(fake.userMediaCalls).toHaveLength(1);
  }, 15_000);

  it("says when check-in opens before the window", async () => {
    backend.on(`GET ${T}/appointments/100/check-in/`, () => ({
      status: 200,
      body: makeInfo({ can_check_in: false, opens_at: new Date(Date.now() + 3600_000).toISOString() }),
    }));
    mounted = await mountApp("/visits/check-in/100", backend);
    await waitFor(() => document.querySelector('[data-testid="check-in-closed"]') !== null, "the closed notice");
    expect(text(document.querySelector('[data-testid="check-in-closed"]'))).toContain("Check-in opens at");
  });

  it("offers to join a visit that already started", async () => {
    backend.on(`GET ${T}/appointments/100/check-in/`, () => ({ status: 200, body: makeInfo({ visit_id: VISIT, visit_status: "in-progress" }) }));
    mounted = await mountApp("/visits/check-in/100", backend);
    await waitFor(() => document.querySelector('[data-testid="visit-in-progress"]') !== null, "the join link");
    expect(document.querySelector('[data-testid="visit-in-progress"] a')?.getAttribute("href")).toBe(`/visits/${VISIT}`);
  });
});

describe("CheckInLinkPage", () => {
  it("consumes the link, signs the patient in and replaces the URL with the check-in page", async () => {
    backend.me = null;
    backend.on(`POST ${T}/check-in-links/consume/`, (request) => {
      if ((request.body as { token?: string }).token !== "signed-token") return { status: 400, body: { code: "invalid_link", detail: "Bad." } };
      backend.me = makeMe({ id: 20, roles: ["patient"], primary_role: "patient", patient_id: 42 });
      return { status: 200, body: { appointment_id: 100 } };
    });
    backend.on(`GET ${T}/appointments/100/check-in/`, () => ({ status: 200, body: makeInfo() }));
    mounted = await mountApp("/check-in/link/signed-token", backend);
    await waitFor(() => heading() === "Check in for your video visit", "the check-in page");
    expect(mounted.router.currentRoute.value.path).toBe("/visits/check-in/100");
  });

  it("explains an expired or used link", async () => {
    backend.me = null;
    backend.on(`POST ${T}/check-in-links/consume/`, () => ({ status: 410, body: { code: "link_expired", detail: "Expired." } }));
    mounted = await mountApp("/check-in/link/old-token", backend);
    await waitFor(() => document.querySelector('[data-testid="check-in-link-error"]') !== null, "the error");
    expect(text(document.querySelector('[data-testid="check-in-link-error"]'))).toContain("expired or was already used");
  });
});
