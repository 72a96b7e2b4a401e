// @vitest-environment happy-dom
/**
 * Recurring appointments on the scheduler calendar: the booking dialog's "Repeat" (preview, the request sent,
 * a refused visit named with the form kept) and the side panel of a visit in a series ("Cancel this and later
 * visits").
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApp, type App } from "vue";

import { setFetch } from "../api/client";
import type { Appointment, AppointmentType, Schedule, Series } from "../api/types";
import { settle } from "../testing/app";
import { button, choose, field, fill, select, text } from "../testing/dom";
import CalendarAppointmentPanel from "./CalendarAppointmentPanel.vue";
import CalendarBookingDialog from "./CalendarBookingDialog.vue";

interface Sent {
  method: string;
  url: string;
  body: unknown;
}

type Reply = { status: number; body: unknown };

let app: App | null = null;
let root: HTMLElement;
let sent: Sent[];
let replies: Map<string, (body: unknown) => Reply>;
let emitted: { event: string; value: unknown }[];

const PRACTITIONER: Schedule = {
  id: 12,
  kind: "practitioner",
  name: "Dr Cristina Yang",
  category: "",
  practitioner_id: 7,
  location_id: 4,
  location_name: "Hilltop Virtual Clinic",
  time_zone: "America/Chicago",
};

const VIDEO = {
  id: 1,
  code: "video-consult",
  name: "Video consultation",
  modality: "video",
  duration_minutes: 30,
  requirements: [],
} as unknown as AppointmentType;

const PATIENT = { id: 42, mrn: "MRN00000042", display_name: "Ada Abbott", birth_date: "1980-02-01", sex: "female", status: "active" };

function appointment(overrides: Partial<Appointment> = {}): Appointment {
  return {
    id: 31,
    patient_id: 42,
    patient_display_name: "Ada Abbott",
    patient_mrn: "MRN00000042",
    appointment_type_id: 1,
    appointment_type_name: "Video consultation",
    practitioner_id: 7,
    practitioner_display_name: "Dr Cristina Yang",
    location_id: 4,
    location_name: "Hilltop Virtual Clinic",
    modality: "video",
    status: "booked",
    start: "2031-03-11T15:00:00Z",
    end: "2031-03-11T15:30:00Z",
    resources: [{ schedule_id: 12, kind: "practitioner", name: "Dr Cristina Yang" }],
    encounter_id: 900,
    series_id: 8,
    comment: "",
    cancel_reason: "",
    override_reason: "",
    arrived_at: null,
    checked_in_at: null,
    visit_started_at: null,
    fulfilled_at: null,
    version: 1,
    created_at: "2031-03-01T10:00:00Z",
    updated_at: "2031-03-01T10:00:00Z",
    ...overrides,
  } as Appointment;
}

function series(occurrences: Appointment[]): Series {
  return {
    id: 8,
    patient_id: 42,
    appointment_type_id: 1,
    rrule: "FREQ=WEEKLY;BYDAY=TU;COUNT=3",
    time_zone: "America/Chicago",
    first_start: "2031-03-04T16:00:00Z",
    first_start_local: "2031-03-04T10:00",
    created_at: "2031-03-01T10:00:00Z",
    occurrences,
  };
}

const VISITS = [
  appointment({ id: 30, start: "2031-03-04T16:00:00Z", end: "2031-03-04T16:30:00Z" }),
  appointment({ id: 31 }),
  appointment({ id: 32, start: "2031-03-18T15:00:00Z", end: "2031-03-18T15:30:00Z" }),
];

beforeEach(() => {
  sent = [];
  emitted = [];
  replies = new Map();
  setFetch(async (url, init) => {
    const method = init?.method ?? "GET";
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    sent.push({ method, url, body });
    const key = `${method} ${url.split("?")[0]}`;
    const answer = replies.get(key)?.(body) ?? { status: 404, body: { code: "not_found", detail: "Not found." } };
    return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { "Content-Type": "application/json" } });
  });
});

afterEach(() => {
  app?.unmount();
  app = null;
  root.remove();
});

function mount(component: object, props: Record<string, unknown>): void {
  root = document.createElement("div");
  document.body.append(root);
  app = createApp(component, props);
  app.mount(root);
}

describe("booking a weekly series from the calendar", () => {
  function mountDialog(): void {
    replies.set("GET /api/v1/ehr/patients/", () => ({ status: 200, body: { count: 1, results: [PATIENT] } }));
    mount(CalendarBookingDialog, {
      // Tuesday 4 March 2031, 10:00 in Chicago, selected on a calendar shown in the viewer's zone.
      start: "2031-03-04T17:00:00+01:00",
      timeZone: "Europe/Lisbon",
      zoneLabel: "Europe/Lisbon, your time",
      resource: PRACTITIONER,
      practitioners: [PRACTITIONER],
      types: [VIDEO],
      onBooked: (value: unknown) => emitted.push({ event: "booked", value }),
      onBookedSeries: (value: unknown) => emitted.push({ event: "bookedSeries", value }),
      onClose: () => emitted.push({ event: "close", value: null }),
    });
  }

  async function fillBooking(): Promise<void> {
    const search = field("Find the patient", root);
    fill(search, "Abbott");
    search.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    await settle();
    const radio = root.querySelector<HTMLInputElement>('input[name="booking-patient"]');
    radio?.click();
    choose(select("Appointment type", root), "Video consultation (30 min)");
    await settle();
  }

  function repeatBox(): HTMLInputElement {
    const box = root.querySelector<HTMLInputElement>("#booking-repeat");
    if (!box) throw new Error("no Repeat checkbox");
    return box;
  }

  function weekday(name: string): HTMLInputElement {
    const box = root.querySelector<HTMLInputElement>(`input[aria-label="${name}"]`);
    if (!box) throw new Error(`no weekday ${name}`);
    return box;
  }

  it("previews the visits at the same local time in the clinic's zone and books them as one series", async () => {
    replies.set("POST /api/v1/scheduling/series/", () => ({ status: 201, body: series(VISITS) }));
    mountDialog();
    await settle();
    await fillBooking();
    repeatBox().click();
    await settle();

    // The first visit's weekday (Tuesday in Chicago) is chosen and cannot be unticked.
    expect(weekday("Tuesday").checked).toBe(true);
    expect(weekday("Tuesday").disabled).toBe(true);
    expect(weekday("Wednesday").checked).toBe(false);
    fill(root.querySelector<HTMLInputElement>('input[aria-label="Number of visits"]') as HTMLInputElement, "3");
    await settle();

    const preview = root.querySelector('[data-testid="series-preview"]');
    expect(text(preview?.querySelector("h3"))).toBe("3 visits · Every week on Tue, 3 visits");
    expect(text(preview)).toContain("Times in America/Chicago (clinic time).");
    expect([...(preview?.querySelectorAll("li") ?? [])].map((li) => text(li))).toEqual([
      "Tue, Mar 4, 2031, 10:00 AM",
      "Tue, Mar 11, 2031, 10:00 AM",
      "Tue, Mar 18, 2031, 10:00 AM",
    ]);
    // A reason to double-book is not for a series.
    expect(field("Reason to double-book (optional)", root).disabled).toBe(true);

    button("Book 3 visits", root).click();
    await settle();
    expect(sent.at(-1)).toEqual({
      method: "POST",
      url: "/api/v1/scheduling/series/",
      body: {
        appointment_type_id: 1,
        patient_id: 42,
        practitioner_id: 7,
        first_start: "2031-03-04T10:00",
        time_zone: "America/Chicago",
        rrule: "FREQ=WEEKLY;BYDAY=TU;COUNT=3",
      },
    });
    expect(emitted.map((e) => e.event)).toEqual(["bookedSeries"]);
  });

  it("sends every other week on several days, ending on a date", async () => {
    replies.set("POST /api/v1/scheduling/series/", () => ({ status: 201, body: series(VISITS) }));
    mountDialog();
    await settle();
    await fillBooking();
    repeatBox().click();
    await settle();
    weekday("Thursday").click();
    fill(field("Every how many weeks", root), "2");
    root.querySelector<HTMLInputElement>('input[name="booking-repeat-ends"][value="until"]')?.click();
    await settle();
    fill(root.querySelector<HTMLInputElement>('input[aria-label="Date of the last visit"]') as HTMLInputElement, "2031-03-20");
    await settle();
    expect([...root.querySelectorAll('[data-testid="series-preview"] li')].map((li) => text(li))).toEqual([
      "Tue, Mar 4, 2031, 10:00 AM",
      "Thu, Mar 6, 2031, 10:00 AM",
      "Tue, Mar 18, 2031, 10:00 AM",
      "Thu, Mar 20, 2031, 10:00 AM",
    ]);
    button("Book 4 visits", root).click();
    await settle();
    expect((sent.at(-1)?.body as { rrule: string }).rrule).toBe("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;UNTIL=20310320");
  });

  it("checks the repeat before sending anything", async () => {
    mountDialog();
    await settle();
    await fillBooking();
    repeatBox().click();
    await settle();
    root.querySelector<HTMLInputElement>('input[name="booking-repeat-ends"][value="until"]')?.click();
    await settle();
    button("Book", root).click();
    await settle();
    expect(sent.filter((s) => s.method === "POST")).toEqual([]);
    expect(text(root.querySelector('[data-testid="booking-error"]'))).toBe("Fix the repeat settings marked below.");
    expect(text(root)).toContain("Give the date of the last visit.");
  });

  it("names the refused visit and why, marks it in the preview and keeps everything typed", async () => {
    replies.set("POST /api/v1/scheduling/series/", () => ({
      status: 409,
      body: {
        code: "slot_unavailable",
        detail: "Occurrence 3 on 2031-03-18 at 10:00 (America/Chicago): Dr Cristina Yang is already booked then.",
        conflicting_resource: { schedule_id: 12, name: "Dr Cristina Yang" },
        occurrence: { index: 3, date: "2031-03-18", local_start: "2031-03-18T10:00", time_zone: "America/Chicago" },
      },
    }));
    mountDialog();
    await settle();
    await fillBooking();
    const comment = root.querySelector<HTMLTextAreaElement>("#booking-comment");
    if (!comment) throw new Error("no comment field");
    comment.value = "Weekly review";
    comment.dispatchEvent(new Event("input", { bubbles: true }));
    repeatBox().click();
    await settle();
    fill(root.querySelector<HTMLInputElement>('input[aria-label="Number of visits"]') as HTMLInputElement, "3");
    await settle();
    button("Book 3 visits", root).click();
    await settle();

    expect(text(root.querySelector('[data-testid="booking-error"]'))).toBe(
      "3rd visit, Tue, Mar 18, 10:00 AM: Dr Cristina Yang is already booked. Nothing was booked. Choose another time or fewer visits.",
    );
    expect(text(root.querySelector('[data-testid="series-visit-3"]'))).toContain("refused");
    expect(text(root.querySelector('[data-testid="booking-patient"]'))).toContain("Ada Abbott");
    expect((root.querySelector("#booking-comment") as HTMLTextAreaElement).value).toBe("Weekly review");
    expect(repeatBox().checked).toBe(true);
    expect(emitted).toEqual([]);
  });
});

describe("a visit of a series in the side panel", () => {
  function mountPanel(): void {
    replies.set("GET /api/v1/scheduling/series/8/", () => ({ status: 200, body: series(VISITS) }));
    mount(CalendarAppointmentPanel, {
      appointment: VISITS[1],
      timeZone: "America/Chicago",
      zoneLabel: "America/Chicago, clinic time",
      onChanged: (value: unknown) => emitted.push({ event: "changed", value }),
      onStale: () => emitted.push({ event: "stale", value: null }),
    });
  }

  it("says it is part of a series, which visit it is, and how the series repeats", async () => {
    mountPanel();
    await settle();
    expect(text(root.querySelector('[data-testid="appointment-series"]'))).toBe(
      "Part of a series · visit 2 of 3 · Every week on Tue, 3 visits",
    );
    expect(button("Cancel this visit only", root)).toBeTruthy();
  });

  it("cancels this and the later visits from this visit's start, with a reason", async () => {
    replies.set("POST /api/v1/scheduling/series/8/cancel/", () => ({
      status: 200,
      body: series([VISITS[0], { ...VISITS[1], status: "cancelled" }, { ...VISITS[2], status: "cancelled" }] as Appointment[]),
    }));
    mountPanel();
    await settle();
    button("Cancel this and later visits", root).click();
    await settle();
    expect(text(root.querySelector('[data-testid="series-cancel-visits"]'))).toBe(
      "Cancels these 2 visits; earlier visits stay as they are:",
    );
    button("Cancel these visits", root).click();
    await settle();
    expect(text(root)).toContain("Give a reason for cancelling.");
    expect(sent.filter((s) => s.method === "POST")).toEqual([]);

    fill(field("Reason for cancelling these visits", root), "Treatment finished early");
    button("Cancel these visits", root).click();
    await settle();
    expect(sent.at(-1)).toEqual({
      method: "POST",
      url: "/api/v1/scheduling/series/8/cancel/",
      body: { reason: "Treatment finished early", from_start: "2031-03-11T15:00:00Z" },
    });
    expect(text(root)).toContain("Cancelled 2 visits of the series.");
    expect(emitted.map((e) => [e.event, (e.value as Appointment).status])).toEqual([["changed", "cancelled"]]);
  });

  it("names the visit that could not be cancelled", async () => {
    replies.set("POST /api/v1/scheduling/series/8/cancel/", () => ({
      status: 409,
      body: {
        code: "too_late",
        detail: "Occurrence 2 on 2031-03-11 at 10:00 (America/Chicago): too close to the start to change online.",
        occurrence: { index: 2, date: "2031-03-11", local_start: "2031-03-11T10:00", time_zone: "America/Chicago" },
      },
    }));
    mountPanel();
    await settle();
    button("Cancel this and later visits", root).click();
    await settle();
    fill(field("Reason for cancelling these visits", root), "Moving away");
    button("Cancel these visits", root).click();
    await settle();
    expect(text(root.querySelector('[data-testid="appointment-panel-error"]'))).toBe(
      "2nd visit, Tue, Mar 11, 10:00 AM: too close to the start to change online. Nothing was cancelled.",
    );
    expect(field("Reason for cancelling these visits", root).value).toBe("Moving away");
    expect(emitted).toEqual([]);
  });
});
