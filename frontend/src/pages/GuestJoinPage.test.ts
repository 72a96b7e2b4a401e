// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { GuestState } from "../api/types";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend } from "../testing/backend";
import { button, text } from "../testing/dom";
import { FakePeerConnection, fakeMediaEnv, type FakeEnvHandle } from "../testing/fakeRtc";
import { FakeSocket } from "../testing/FakeSocket";
import { resetMediaEnv, setMediaEnv } from "../telehealth/env";

const T = "/api/v1/telehealth";
const VISIT = "7f3c0000-0000-4000-8000-00000000000b";
const GUEST = `guest-${"d".repeat(32)}`;

let mounted: MountedApp | null = null;
let backend: FakeBackend;
let fake: FakeEnvHandle;

const byTestId = (id: string) => text(document.querySelector(`[data-testid="${id}"]`));

function guestInfo(overrides: Partial<GuestState> = {}): GuestState {
  return {
    invitation_id: "d".repeat(32),
    participant_id: GUEST,
    appointment_id: 100,
    visit_id: VISIT,
    visit_status: "in-progress",
    role: "interpreter",
    name: "Ana Ruiz",
    state: "waiting",
    media_mode: "direct",
    practitioner_name: "Dr Meredith Grey",
    appointment_start: new Date().toISOString(),
    device_check: {},
    ready: false,
    ...overrides,
  };
}

function roster(admitted: boolean) {
  return [
    { participant_id: "practitioner", role: "practitioner", name: "Dr Meredith Grey", admitted: true, muted: false, connected: true },
    { participant_id: "patient", role: "patient", name: "Ada Abbott", admitted: true, muted: false, connected: true },
    { participant_id: GUEST, role: "interpreter", name: "Ana Ruiz", admitted, muted: false, connected: true },
  ];
}

beforeEach(() => {
  backend = new FakeBackend();
  fake = fakeMediaEnv((url) => new FakeSocket(url));
  setMediaEnv(fake.env);
  FakePeerConnection.reset();
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
  backend.on(`POST ${T}/invitations/consume/`, () => ({ status: 200, body: guestInfo() }));
  backend.on(`GET ${T}/guest/`, () => ({ status: 200, body: guestInfo() }));
  backend.on(`POST ${T}/guest/device-check/`, () => ({ status: 200, body: guestInfo() }));
  backend.on(`POST ${T}/ice-servers/`, () => ({
    status: 200,
    body: { iceServers: [], iceTransportPolicy: "all", expiresAt: new Date(Date.now() + 600_000).toISOString(), ttlSeconds: 600 },
  }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  resetMediaEnv();
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
});

describe("GuestJoinPage", () => {
  it("consumes the link with the token in the body, takes it out of the address, waits, then joins the relay", async () => {
    mounted = await mountApp("/visit/join/signed-token-1", backend);
    await waitFor(() => byTestId("guest-info") !== "", "the invitation", 10_000);
    const consume = backend.calls(`POST ${T}/invitations/consume/`);
    expect(consume).toHaveLength(1);
    expect(consume[0]?.body).toEqual({ token: "signed-token-1" });
    expect(globalThis.location.pathname).toBe("/visit/guest");
    expect(byTestId("guest-info")).toContain("Interpreter");
    expect(byTestId("guest-info")).toContain("Dr Meredith Grey");

    button("Continue").click();
    await waitFor(() => fake.sockets.length === 1, "the visit socket");
    const socket = fake.sockets[0] as FakeSocket;
    expect(socket.url).toBe(`ws://consulta.test/ws/v1/visits/${VISIT}/`);
    socket.open();
    socket.receive({ kind: "welcome", role: "interpreter", participant_id: GUEST, status: "in-progress", mode: "direct" });
    socket.receive({ kind: "roster", participants: roster(false) });
    await waitFor(() => byTestId("guest-lobby-status") === "Waiting for the doctor to let you in…", "the lobby");
    expect(FakePeerConnection.created).toHaveLength(0);

    socket.receive({ kind: "visit-mode", mode: "relay" });
    socket.receive({ kind: "roster", participants: roster(true) });
    await waitFor(() => document.querySelector('[data-testid="participant-grid"]') !== null, "the grid");
    await settle();
    const offers = (socket.sent as Record<string, unknown>[]).filter((f) => f.to === "relay" && f.type === "offer");
    expect(offers.map((f) => f.pc).sort()).toEqual(["pub", "sub:patient", "sub:practitioner"]);
    expect(document.querySelectorAll('[data-testid="participant-tile"]')).toHaveLength(3);
  }, 20_000);

  it("says a link used in another browser was already used, and shows nothing of the visit", async () => {
    backend.on(`POST ${T}/invitations/consume/`, () => ({
      status: 409,
      body: { code: "invitation_used", detail: "This invitation was already used." },
    }));
    mounted = await mountApp("/visit/join/signed-token-2", backend);
    await waitFor(() => byTestId("guest-error") !== "", "the error", 10_000);
    expect(byTestId("guest-error")).toContain("already been used");
    expect(document.querySelector('[data-testid="guest-info"]')).toBeNull();
  });

  it("tells a removed guest who comes back that they were removed", async () => {
    backend.on(`GET ${T}/guest/`, () => ({ status: 200, body: guestInfo({ state: "removed" }) }));
    mounted = await mountApp("/visit/guest", backend);
    await waitFor(() => byTestId("guest-removed") !== "", "the removal", 10_000);
    expect(backend.calls(`POST ${T}/invitations/consume/`)).toHaveLength(0);
  });
});
