// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { Appointment, Role } from "../api/types";
import { BOARD_STREAM } from "../stores/board";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { button, byRole, choose, heading, link, navigation, queryButton, select, text } from "../testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;
let day: Appointment[];

const minutes = (n: number) => new Date(Date.now() + n * 60_000).toISOString();

function appointment(overrides: Partial<Appointment>): Appointment {
  return {
    id: 1,
    patient_id: 42,
    patient_display_name: "Ada Abbott",
    patient_mrn: "MRN00000042",
    appointment_type_id: 3,
    appointment_type_name: "Follow-up at the clinic",
    practitioner_id: 7,
    practitioner_display_name: "Samuel Lindqvist",
    location_id: 2,
    location_name: "Riverside Clinic",
    modality: "in-person",
    status: "booked",
    start: minutes(1),
    end: minutes(2),
    resources: [],
    encounter_id: null,
    series_id: null,
    comment: "",
    cancel_reason: "",
    override_reason: "",
    arrived_at: null,
    checked_in_at: null,
    visit_started_at: null,
    fulfilled_at: null,
    version: 1,
    created_at: minutes(-60),
    updated_at: minutes(-60),
    ...overrides,
  };
}

function signInAs(role: Role): void {
  backend.me = makeMe({ id: 5, username: role, display_name: "Sam Whitfield", roles: [role], primary_role: role });
}

function card(id: number): HTMLElement | null {
  return document.querySelector<HTMLElement>(`[data-testid="board-card-${id}"]`);
}

function laneIds(lane: string): number[] {
  const section = document.querySelector(`[data-testid="board-lane-${lane}"]`);
  return [...(section?.querySelectorAll<HTMLElement>("[data-testid^=board-card-]") ?? [])].map((el) =>
    Number(el.dataset.testid?.replace("board-card-", "")),
  );
}

/** Opens a page and plays the server: socket hello, then the board subscription confirmed. */
async function open(path: string, title: string): Promise<MountedApp> {
  mounted = await mountApp(path, backend);
  await waitFor(() => heading() === title, `the page "${title}"`);
  mounted.socket().open();
  mounted.socket().hello({ "user:5": 0 });
  await waitFor(
    () => mounted!.socket().sent.some((f) => JSON.stringify(f) === JSON.stringify({ kind: "subscribe", stream: BOARD_STREAM })),
    "the board subscription",
  );
  mounted.socket().receive({ kind: "subscribed", stream: BOARD_STREAM, seq: 0 });
  await settle();
  return mounted;
}

let seq = 0;
function push(change: Appointment): void {
  seq += 1;
  mounted!.socket().push({
    stream: BOARD_STREAM,
    seq,
    type: "appointment.changed",
    data: {
      id: change.id,
      event: "status_changed",
      status: change.status,
      start: change.start,
      end: change.end,
      practitioner_id: change.practitioner_id,
      location_id: change.location_id,
      modality: change.modality,
      appointment_type_id: change.appointment_type_id,
      version: change.version,
      arrived_at: change.arrived_at,
      checked_in_at: change.checked_in_at,
      visit_started_at: change.visit_started_at,
    },
    at: new Date().toISOString(),
  });
}

beforeEach(() => {
  // Mid-morning, local time: the test's appointments are all today whenever it runs. The clock still moves.
  vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
  vi.setSystemTime(new Date(2031, 2, 3, 10, 0, 0));
  seq = 0;
  localStorage.clear();
  backend = new FakeBackend();
  signInAs("scheduler");
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
  day = [
    appointment({ id: 1, start: minutes(20), end: minutes(50) }),
    appointment({
      id: 2,
      patient_display_name: "Ben Baird",
      status: "checked-in",
      arrived_at: minutes(-30),
      checked_in_at: minutes(-25),
      version: 3,
      modality: "video",
      location_id: 4,
      location_name: "Hilltop Virtual Clinic",
    }),
    appointment({ id: 3, patient_display_name: "", status: "fulfilled", visit_started_at: minutes(-50), version: 5 }),
  ];
  backend.on("GET /api/v1/scheduling/appointments/", () => ({ status: 200, body: { results: day } }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  vi.useRealTimers();
});

describe("live board page", () => {
  it("is in the main navigation and shows today's cards in their lanes", async () => {
    await open("/schedule/board", "Live board");
    expect(link("Live board", navigation("Main")).getAttribute("href")).toBe("/schedule/board");
    expect(laneIds("booked")).toEqual([1]);
    expect(laneIds("checked-in")).toEqual([2]);
    expect(laneIds("done")).toEqual([3]);
    expect(text(card(3))).toContain("Name not shown");
    expect(text(document.querySelector('[data-testid="connection-status"]'))).toBe("Live");
    expect(document.querySelector('[data-testid="board-offline"]')).toBeNull();
    expect(text(document.querySelector(".page-lead"))).toContain(`Times in ${Intl.DateTimeFormat().resolvedOptions().timeZone}`);
  });

  it("flags a wait over the threshold on the card and in the header, and follows a new threshold", async () => {
    await open("/schedule/board", "Live board");
    expect(card(2)?.classList.contains("board-card--alert")).toBe(true);
    expect(text(card(2)?.querySelector('[data-testid="board-wait"]'))).toMatch(/^Waiting 30:0\d — over 15 min$/);
    expect(text(document.querySelector('[data-testid="board-alert-count"]'))).toBe("1 waiting over 15 min");

    const threshold = document.querySelector<HTMLInputElement>("#board-threshold")!;
    threshold.value = "45";
    threshold.dispatchEvent(new Event("input", { bubbles: true }));
    threshold.dispatchEvent(new Event("change", { bubbles: true }));
    await settle();
    expect(text(document.querySelector('[data-testid="board-alert-count"]'))).toBe("0 waiting over 45 min");
    expect(card(2)?.classList.contains("board-card--alert")).toBe(false);
    expect(localStorage.getItem("consulta.board.waitThresholdMinutes")).toBe("45");
  });

  it("moves a card when a push says so, and fetches an appointment it did not know", async () => {
    await open("/schedule/board", "Live board");
    push({ ...day[0]!, status: "arrived", arrived_at: minutes(0), version: 2 });
    await settle();
    expect(laneIds("arrived")).toEqual([1]);
    expect(text(card(1)?.querySelector('[data-testid="board-wait"]'))).toMatch(/^Waiting 0:0\d$/);

    const fresh = appointment({ id: 9, patient_display_name: "Cleo Cruz", start: minutes(40), end: minutes(70) });
    backend.on("GET /api/v1/scheduling/appointments/9/", () => ({ status: 200, body: fresh, headers: { ETag: '"1"' } }));
    push(fresh);
    await waitFor(() => laneIds("booked").includes(9), "the new card");
    expect(text(card(9))).toContain("Cleo Cruz");
  });

  it("marks a patient arrived with the card's version, and explains a refusal", async () => {
    await open("/schedule/board", "Live board");
    backend.on("POST /api/v1/scheduling/appointments/1/status/", () => ({
      status: 200,
      body: { ...day[0], status: "arrived", arrived_at: minutes(0), version: 2 },
      headers: { ETag: '"2"' },
    }));
    button("Mark arrived", card(1)!).click();
    await waitFor(() => laneIds("arrived").includes(1), "the card in Arrived");
    const [call] = backend.calls("POST /api/v1/scheduling/appointments/1/status/");
    expect(call?.headers["If-Match"]).toBe('"1"');
    expect(call?.body).toEqual({ status: "arrived" });

    backend.on("POST /api/v1/scheduling/appointments/1/status/", () => ({
      status: 412,
      body: { code: "version_conflict", detail: "The appointment changed since you read it; reload and try again.", current_version: 3 },
    }));
    backend.on("GET /api/v1/scheduling/appointments/1/", () => ({
      status: 200,
      body: { ...day[0], status: "checked-in", arrived_at: minutes(0), checked_in_at: minutes(0), version: 3 },
      headers: { ETag: '"3"' },
    }));
    button("Check in", card(1)!).click();
    await waitFor(() => laneIds("checked-in").includes(1), "the re-read card");
    expect(byRole("status", card(1)!).map(text)).toEqual([
      "Someone changed this appointment just before you. It is now Checked in. Check it and try again if still needed. Dismiss",
    ]);
    button("Dismiss", card(1)!).click();
    await settle();
    expect(byRole("status", card(1)!)).toEqual([]);
    expect(queryButton("Check in", card(1)!)).toBeUndefined();
  });

  it("filters by clinic and modality", async () => {
    await open("/schedule/board", "Live board");
    choose(select("Clinic"), "Hilltop Virtual Clinic");
    await settle();
    expect([...laneIds("booked"), ...laneIds("checked-in"), ...laneIds("done")]).toEqual([2]);
    choose(select("Clinic"), "All clinics");
    choose(select("Modality"), "In person");
    await settle();
    expect([...laneIds("booked"), ...laneIds("checked-in"), ...laneIds("done")]).toEqual([1, 3]);
  });

  it("reloads the day when the subscription is confirmed again after a reconnect", async () => {
    await open("/schedule/board", "Live board");
    const loads = backend.calls("GET /api/v1/scheduling/appointments/").length;
    mounted!.socket().serverClose(1006);
    await waitFor(() => mounted!.sockets.length === 2, "the reconnect");
    expect(text(document.querySelector('[data-testid="board-offline"]'))).toContain("Not live at the moment");
    day[0] = { ...day[0]!, status: "noshow", version: 2 };
    mounted!.socket().open();
    mounted!.socket().hello({ "user:5": 0 });
    mounted!.socket().receive({ kind: "subscribed", stream: BOARD_STREAM, seq: 0 });
    await waitFor(() => laneIds("noshow").includes(1), "the reloaded day");
    expect(backend.calls("GET /api/v1/scheduling/appointments/").length).toBe(loads + 1);
  });

  it("shows the scheduler's hub with today's counts and the way to the board", async () => {
    await open("/schedule", "Scheduling");
    const count = (lane: string) => {
      const entry = document.querySelector(`[data-testid="board-counts"] [data-lane="${lane}"]`);
      return `${text(entry?.querySelector("dt"))}: ${text(entry?.querySelector("dd"))}`;
    };
    expect(count("booked")).toBe("Booked: 1");
    expect(count("checked-in")).toBe("Checked in: 1");
    expect(count("done")).toBe("Done: 1");
    expect(count("arrived")).toBe("Arrived: 0");
    expect(text(document.querySelector('[data-testid="scheduling-wait-alerts"]'))).toBe("1 patient has waited over 15 minutes.");
    push({ ...day[0]!, status: "arrived", arrived_at: minutes(0), version: 2 });
    await settle();
    expect(count("arrived")).toBe("Arrived: 1");
    expect(link("Open the live board").getAttribute("href")).toBe("/schedule/board");
    expect(link("Calendar").getAttribute("href")).toBe("/schedule/calendar");
  });
});
