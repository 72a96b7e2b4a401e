// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { Schedule } from "../api/types";
import type { WeeklyRule } from "../calendar/calendarEvents";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { heading, link, navigation, select, text } from "../testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;

/** The first visit loads the page's chunk (and luxon), which takes a while on a busy machine. */
const LOAD_TIMEOUT_MS = 10_000;

const SCHEDULES: Schedule[] = [
  { id: 5, kind: "practitioner", name: "Dr Meredith Grey", category: "", practitioner_id: 7, location_id: 3, location_name: "Riverside Clinic", time_zone: "America/New_York" },
  { id: 6, kind: "room", name: "Exam room 1", category: "exam", practitioner_id: null, location_id: 3, location_name: "Riverside Clinic", time_zone: "America/New_York" },
  { id: 8, kind: "interpreter", name: "Portuguese interpreter", category: "pt", practitioner_id: null, location_id: 4, location_name: "Hilltop Virtual Clinic", time_zone: "America/Chicago" },
];

const HOURS: Record<number, WeeklyRule[]> = {
  5: [{ weekday: 0, start_time: "09:00", end_time: "17:00", effective_from: "2031-01-01", effective_until: null }],
  6: [{ weekday: 2, start_time: "08:00", end_time: "12:00", effective_from: "2031-01-01", effective_until: null }],
  8: [],
};

function scheduler(): void {
  backend.me = makeMe({ id: 30, username: "scheduler", display_name: "Sam Whitfield", roles: ["scheduler"], primary_role: "scheduler" });
}

beforeEach(() => {
  backend = new FakeBackend();
  scheduler();
  backend.on("GET /api/v1/scheduling/schedules/", () => ({ status: 200, body: { results: SCHEDULES } }));
  for (const schedule of SCHEDULES) {
    backend.on(`GET /api/v1/scheduling/schedules/${schedule.id}/availability/`, () => ({
      status: 200,
      body: {
        schedule_id: schedule.id,
        time_zone: schedule.time_zone,
        rules: HOURS[schedule.id],
        exceptions:
          schedule.id === 5
            ? [{ id: 70, kind: "unavailable", start: "2031-03-05T17:00:00Z", end: "2031-03-05T18:00:00Z", reason: "Team meeting" }]
            : [],
      },
    }));
  }
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
});

function fromRow1(): string {
  return document.querySelector<HTMLInputElement>('[aria-label="From, row 1"]')?.value ?? "";
}

describe("the availability page", () => {
  it("is in the scheduler's navigation beside the calendar, and opens on a resource of their clinic", async () => {
    mounted = await mountApp("/schedule", backend);
    const nav = navigation("Main");
    expect(text(link("Calendar", nav))).toBe("Calendar");
    link("Availability", nav).click();
    await waitFor(() => heading() === "Availability" && fromRow1() === "09:00", "the first resource's hours", LOAD_TIMEOUT_MS);
    expect(document.title).toBe("Availability · Consulta");
    expect(select("Clinic").selectedOptions[0]?.textContent?.trim()).toBe("Riverside Clinic");
    expect(select("Resource").selectedOptions[0]?.textContent?.trim()).toBe("Dr Meredith Grey");
    expect(mounted.router.currentRoute.value.query).toEqual({ schedule: "5" });
    expect(text(document.querySelector('[data-testid="block-item"]'))).toContain("Team meeting");
  }, 2 * LOAD_TIMEOUT_MS);

  it("opens the resource named in the URL and follows the choice of another", async () => {
    mounted = await mountApp("/schedule/availability?schedule=6", backend);
    await waitFor(() => fromRow1() === "08:00", "the room's hours", LOAD_TIMEOUT_MS);
    expect(text(document.querySelector("h2"))).toBe("Weekly hours of Exam room 1");

    const clinic = select("Clinic");
    clinic.value = "4";
    clinic.dispatchEvent(new Event("change", { bubbles: true }));
    await waitFor(() => text(document.querySelector("h2")) === "Weekly hours of Portuguese interpreter", "the interpreter");
    await settle();
    expect(mounted.router.currentRoute.value.query).toEqual({ schedule: "8" });
    expect(text(document.querySelector(".empty"))).toContain("No weekly hours");
  }, 2 * LOAD_TIMEOUT_MS);

  it("is not open to clinicians", async () => {
    backend.me = makeMe({ roles: ["practitioner"], primary_role: "practitioner" });
    mounted = await mountApp("/schedule/availability", backend);
    await waitFor(() => heading() === "My clinic", "the clinician's home");
    expect([...navigation("Main").querySelectorAll("a")].map(text)).not.toContain("Availability");
    expect(backend.calls("GET /api/v1/scheduling/schedules/")).toEqual([]);
  });
});
