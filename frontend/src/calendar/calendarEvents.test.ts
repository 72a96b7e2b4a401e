import { describe, expect, it } from "vitest";

import type { Appointment, AppointmentType, Schedule } from "../api/types";
import {
  actionsFor,
  appointmentToEvent,
  appointmentsToEvents,
  availabilityToEvents,
  blocksIn,
  changeConcernsView,
  clinicsOf,
  complement,
  expandWeeklyRules,
  formatSpan,
  mergeIntervals,
  resourceGroups,
  typesForResource,
  type AppointmentEventProps,
} from "./calendarEvents";

function appointment(overrides: Partial<Appointment> = {}): Appointment {
  return {
    id: 31,
    patient_id: 42,
    patient_display_name: "Ada Abbott",
    patient_mrn: "MRN00000042",
    appointment_type_id: 2,
    appointment_type_name: "Follow-up at the clinic",
    practitioner_id: 7,
    practitioner_display_name: "Dr Meredith Grey",
    location_id: 3,
    location_name: "Riverside Clinic",
    modality: "in-person",
    status: "booked",
    start: "2031-03-05T15:00:00Z",
    end: "2031-03-05T15:30:00Z",
    resources: [{ schedule_id: 5, kind: "practitioner", name: "Dr Meredith Grey" }],
    encounter_id: 900,
    series_id: null,
    comment: "",
    cancel_reason: "",
    override_reason: "",
    arrived_at: null,
    checked_in_at: null,
    visit_started_at: null,
    fulfilled_at: null,
    version: 3,
    created_at: "2031-03-01T10:00:00Z",
    updated_at: "2031-03-01T10:00:00Z",
    ...overrides,
  } as Appointment;
}

function schedule(overrides: Partial<Schedule> = {}): Schedule {
  return {
    id: 5,
    kind: "practitioner",
    name: "Dr Meredith Grey",
    category: "",
    practitioner_id: 7,
    location_id: 3,
    location_name: "Riverside Clinic",
    time_zone: "America/New_York",
    ...overrides,
  };
}

function type(overrides: Partial<AppointmentType> = {}): AppointmentType {
  return {
    id: 1,
    code: "video-consult",
    name: "Video consultation",
    modality: "video",
    duration_minutes: 30,
    buffer_before_minutes: 0,
    buffer_after_minutes: 0,
    slot_interval_minutes: 15,
    min_notice_minutes: 30,
    horizon_days: 90,
    cancellation_window_minutes: 720,
    patient_bookable: true,
    requirements: [{ kind: "practitioner", category: "", optional: "false" }],
    ...overrides,
  };
}

const ms = (iso: string) => Date.parse(iso);
const isoPairs = (intervals: readonly (readonly [number, number])[]) =>
  intervals.map(([s, e]) => [new Date(s).toISOString(), new Date(e).toISOString()]);

describe("appointments as calendar events", () => {
  it("names the patient and the type, keeps the instants, and carries the appointment", () => {
    const booked = appointment();
    const event = appointmentToEvent(booked);
    expect(event).toMatchObject({
      id: "31",
      title: "Ada Abbott · Follow-up at the clinic",
      start: "2031-03-05T15:00:00Z",
      end: "2031-03-05T15:30:00Z",
      startEditable: true,
      durationEditable: false,
      classNames: ["calendar-event", "calendar-status--booked"],
    });
    expect((event?.extendedProps as AppointmentEventProps).appointment).toBe(booked);
  });

  it("colours by status and lets only booked appointments be dragged", () => {
    const arrived = appointmentToEvent(appointment({ status: "arrived" }));
    expect(arrived?.classNames).toEqual(["calendar-event", "calendar-status--arrived"]);
    expect(arrived?.startEditable).toBe(false);
    expect(appointmentToEvent(appointment({ status: "checked-in" }))?.startEditable).toBe(false);
  });

  it("hides cancelled, no-show and entered-in-error appointments unless asked, then greys them", () => {
    const list = [
      appointment({ id: 1, status: "booked" }),
      appointment({ id: 2, status: "cancelled" }),
      appointment({ id: 3, status: "noshow" }),
      appointment({ id: 4, status: "entered-in-error" }),
      appointment({ id: 5, status: "fulfilled" }),
    ];
    expect(appointmentsToEvents(list).map((e) => e.id)).toEqual(["1", "5"]);
    const all = appointmentsToEvents(list, true);
    expect(all.map((e) => e.id)).toEqual(["1", "2", "3", "4", "5"]);
    const cancelled = all.find((e) => e.id === "2");
    expect(cancelled?.classNames).toContain("calendar-event--inactive");
    expect(cancelled?.startEditable).toBe(false);
  });

  it("says whose appointment it is when the viewer may not see the name", () => {
    expect(appointmentToEvent(appointment({ patient_display_name: "" }))?.title).toBe("Patient #42 · Follow-up at the clinic");
  });
});

describe("working hours and blocked time", () => {
  it("reads weekly hours on their own dates in the schedule's zone, across a DST change", () => {
    // US clocks go forward on Sunday 9 March 2031: 09:00 New York is 14:00 UTC before and 13:00 UTC after.
    const rules = [
      { weekday: 4, start_time: "09:00", end_time: "17:00", effective_from: "2030-01-01" }, // Fridays
      { weekday: 0, start_time: "09:00", end_time: "12:00", effective_from: "2030-01-01" }, // Mondays
    ];
    const got = expandWeeklyRules(rules, "America/New_York", ms("2031-03-07T00:00:00Z"), ms("2031-03-11T00:00:00Z"));
    expect(isoPairs(got)).toEqual([
      ["2031-03-07T14:00:00.000Z", "2031-03-07T22:00:00.000Z"],
      ["2031-03-10T13:00:00.000Z", "2031-03-10T16:00:00.000Z"],
    ]);
  });

  it("respects effective dates: from inclusive, until exclusive", () => {
    const rules = [{ weekday: 2, start_time: "08:00", end_time: "10:00", effective_from: "2031-03-12", effective_until: "2031-03-19" }];
    const got = expandWeeklyRules(rules, "UTC", ms("2031-03-01T00:00:00Z"), ms("2031-03-31T00:00:00Z"));
    expect(isoPairs(got)).toEqual([["2031-03-12T08:00:00.000Z", "2031-03-12T10:00:00.000Z"]]);
  });

  it("merges and complements intervals", () => {
    expect(mergeIntervals([[5, 7], [1, 3], [3, 4], [6, 9]])).toEqual([[1, 4], [5, 9]]);
    expect(complement([[2, 4], [6, 8]], 0, 10)).toEqual([[0, 2], [4, 6], [8, 10]]);
    expect(complement([], 0, 10)).toEqual([[0, 10]]);
    expect(complement([[0, 10]], 2, 5)).toEqual([]);
  });

  it("shades the time outside hours and extra sessions, and draws each block with its reason", () => {
    const events = availabilityToEvents(
      {
        time_zone: "UTC",
        rules: [{ weekday: 2, start_time: "09:00", end_time: "17:00", effective_from: "2031-01-01" }],
        exceptions: [
          { id: 8, kind: "unavailable", start: "2031-03-05T12:00:00Z", end: "2031-03-05T13:00:00Z", reason: "Team meeting" },
          { id: 9, kind: "available", start: "2031-03-05T17:00:00Z", end: "2031-03-05T19:00:00Z", reason: "" },
        ],
      },
      ms("2031-03-05T00:00:00Z"),
      ms("2031-03-06T00:00:00Z"),
    );
    const closed = events.filter((e) => (e.classNames as string[]).includes("calendar-closed"));
    expect(closed.map((e) => [e.start, e.end])).toEqual([
      ["2031-03-05T00:00:00.000Z", "2031-03-05T09:00:00.000Z"],
      ["2031-03-05T19:00:00.000Z", "2031-03-06T00:00:00.000Z"],
    ]);
    expect(closed.every((e) => e.display === "background")).toBe(true);
    const blocks = events.filter((e) => (e.classNames as string[]).includes("calendar-block"));
    expect(blocks).toEqual([
      expect.objectContaining({
        id: "block-8",
        title: "Blocked: Team meeting",
        start: "2031-03-05T12:00:00Z",
        display: "background",
        extendedProps: { kind: "block", exceptionId: 8, reason: "Team meeting" },
      }),
    ]);
  });

  it("lists the blocks overlapping the window, earliest first", () => {
    const exceptions = [
      { id: 2, kind: "unavailable" as const, start: "2031-03-06T10:00:00Z", end: "2031-03-06T11:00:00Z" },
      { id: 1, kind: "unavailable" as const, start: "2031-03-05T10:00:00Z", end: "2031-03-05T11:00:00Z" },
      { id: 3, kind: "available" as const, start: "2031-03-05T10:00:00Z", end: "2031-03-05T11:00:00Z" },
      { id: 4, kind: "unavailable" as const, start: "2031-03-09T10:00:00Z", end: "2031-03-09T11:00:00Z" },
    ];
    expect(blocksIn(exceptions, ms("2031-03-05T00:00:00Z"), ms("2031-03-07T00:00:00Z")).map((b) => b.id)).toEqual([1, 2]);
  });
});

describe("choosing what to show", () => {
  const schedules = [
    schedule(),
    schedule({ id: 6, name: "Exam room 1", kind: "room", category: "exam", practitioner_id: null }),
    schedule({ id: 7, name: "Dr Alan Bay", practitioner_id: 9 }),
    schedule({ id: 8, name: "Portuguese interpreter", kind: "interpreter", category: "pt", practitioner_id: null, location_id: 4, location_name: "Hilltop Virtual Clinic", time_zone: "America/Chicago" }),
  ];

  it("derives the clinics from the resources, by name, with their zones", () => {
    expect(clinicsOf(schedules)).toEqual([
      { id: 4, name: "Hilltop Virtual Clinic", timeZone: "America/Chicago" },
      { id: 3, name: "Riverside Clinic", timeZone: "America/New_York" },
    ]);
  });

  it("groups a clinic's resources by kind, practitioners first, by name", () => {
    expect(resourceGroups(schedules, 3).map((g) => [g.label, g.schedules.map((s) => s.name)])).toEqual([
      ["Practitioners", ["Dr Alan Bay", "Dr Meredith Grey"]],
      ["Rooms", ["Exam room 1"]],
    ]);
  });

  it("offers only the types that use a room, equipment or interpreter on their calendars", () => {
    const video = type({ id: 1, requirements: [{ kind: "interpreter", category: "pt", optional: "true" }] });
    const followUp = type({ id: 2, requirements: [{ kind: "room", category: "exam", optional: "false" }] });
    const all = [video, followUp];
    expect(typesForResource(all, schedule())).toEqual(all);
    expect(typesForResource(all, null)).toEqual(all);
    expect(typesForResource(all, schedules[1] ?? null).map((t) => t.id)).toEqual([2]);
    expect(typesForResource(all, schedules[3] ?? null).map((t) => t.id)).toEqual([1]);
  });

  it("offers the front-desk actions the transition table allows, a no-show only after the start", () => {
    const start = "2031-03-05T15:00:00Z";
    const before = ms("2031-03-05T14:59:00Z");
    const after = ms("2031-03-05T15:01:00Z");
    expect(actionsFor({ status: "booked", start }, before)).toEqual({ statuses: ["arrived", "checked-in"], cancel: true, move: true });
    expect(actionsFor({ status: "booked", start }, after)).toEqual({
      statuses: ["arrived", "checked-in", "noshow"],
      cancel: true,
      move: true,
    });
    expect(actionsFor({ status: "arrived", start }, after)).toEqual({ statuses: ["checked-in"], cancel: true, move: false });
    expect(actionsFor({ status: "checked-in", start }, after)).toEqual({ statuses: [], cancel: true, move: false });
    expect(actionsFor({ status: "cancelled", start }, after)).toEqual({ statuses: [], cancel: false, move: false });
    expect(actionsFor({ status: "fulfilled", start }, after)).toEqual({ statuses: [], cancel: false, move: false });
  });
});

describe("times for people", () => {
  it("reads a span in the calendar's zone and leaves out the end's date on the same day", () => {
    expect(formatSpan("2031-03-05T15:00:00Z", "2031-03-05T15:30:00Z", "America/New_York", "en-US")).toMatch(
      /^Wed, Mar 5, 2031, 10:00\sAM – 10:30\sAM$/,
    );
    expect(formatSpan("2031-03-05T23:00:00Z", "2031-03-06T01:00:00Z", "UTC", "en-GB")).toMatch(
      /^Wed,? 5 Mar 2031,? 23:00 – Thu,? 6 Mar 2031,? 01:00$/,
    );
  });
});

describe("live changes", () => {
  const view = {
    from: ms("2031-03-05T00:00:00Z"),
    to: ms("2031-03-06T00:00:00Z"),
    appointmentIds: new Set([31]),
    locationId: 3,
    practitionerId: 7,
  };

  it("refetches for an appointment on screen, even when it moved away", () => {
    expect(changeConcernsView({ id: 31, start: "2031-04-01T10:00:00Z", end: "2031-04-01T10:30:00Z" }, view)).toBe(true);
  });

  it("refetches for a new appointment of the practitioner in the window", () => {
    expect(
      changeConcernsView({ id: 40, start: "2031-03-05T10:00:00Z", end: "2031-03-05T10:30:00Z", location_id: 3, practitioner_id: 7 }, view),
    ).toBe(true);
  });

  it("ignores changes outside the window, at another clinic or of another practitioner", () => {
    const base = { id: 40, start: "2031-03-05T10:00:00Z", end: "2031-03-05T10:30:00Z", location_id: 3, practitioner_id: 7 };
    expect(changeConcernsView({ ...base, start: "2031-03-07T10:00:00Z", end: "2031-03-07T10:30:00Z" }, view)).toBe(false);
    expect(changeConcernsView({ ...base, location_id: 4 }, view)).toBe(false);
    expect(changeConcernsView({ ...base, practitioner_id: 8 }, view)).toBe(false);
    expect(changeConcernsView({ ...base, practitioner_id: 8 }, { ...view, practitionerId: null })).toBe(true);
  });
});
