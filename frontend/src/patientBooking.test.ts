import { describe, expect, it } from "vitest";

import { ApiError } from "./api/client";
import type { Appointment, FreeSlot } from "./api/types";
import {
  addDays,
  bookingProblem,
  bookingWeek,
  changeableOnline,
  countdown,
  groupSlotsByDay,
  localDateKey,
  nextAppointment,
  splitAppointments,
  startOfLocalDay,
  weeksWithinHorizon,
} from "./patientBooking";

function slot(start: string, practitionerId = 5, minutes = 30): FreeSlot {
  return {
    start,
    end: new Date(Date.parse(start) + minutes * 60_000).toISOString(),
    practitioner_id: practitionerId,
    practitioner_display_name: `Dr ${practitionerId}`,
    location_id: 1,
    resources: [],
  };
}

function appointment(overrides: Partial<Appointment> = {}): Appointment {
  return {
    id: 1,
    patient_id: 42,
    patient_display_name: "Ada Abbott",
    patient_mrn: "MRN00000042",
    appointment_type_id: 3,
    appointment_type_name: "Video consultation",
    practitioner_id: 5,
    practitioner_display_name: "Dr Meredith Grey",
    location_id: 1,
    location_name: "Riverside Clinic",
    modality: "video",
    status: "booked",
    start: "2031-03-05T10:00:00Z",
    end: "2031-03-05T10:30:00Z",
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
    created_at: "2031-03-01T09:00:00Z",
    updated_at: "2031-03-01T09:00:00Z",
    ...overrides,
  };
}

const NOW = Date.parse("2031-03-03T08:00:00Z");

describe("calendar days in the viewer's time zone", () => {
  it("names the local date of an instant, which differs from the UTC date near midnight", () => {
    expect(localDateKey("2031-03-03T23:30:00Z", "UTC")).toBe("2031-03-03");
    expect(localDateKey("2031-03-03T23:30:00Z", "Asia/Tokyo")).toBe("2031-03-04");
    expect(localDateKey("2031-03-04T03:30:00Z", "America/New_York")).toBe("2031-03-03");
  });

  it("adds days across month and year ends", () => {
    expect(addDays("2031-02-27", 2)).toBe("2031-03-01");
    expect(addDays("2031-12-30", 7)).toBe("2032-01-06");
  });

  it("finds the instant a local day starts, across daylight-saving changes", () => {
    expect(startOfLocalDay("2031-03-03", "Europe/Lisbon").toISOString()).toBe("2031-03-03T00:00:00.000Z");
    expect(startOfLocalDay("2031-07-01", "Europe/Lisbon").toISOString()).toBe("2031-06-30T23:00:00.000Z");
    expect(startOfLocalDay("2031-03-03", "Asia/Tokyo").toISOString()).toBe("2031-03-02T15:00:00.000Z");
    // New York springs forward at 02:00 on 9 March 2031: that day still starts at midnight EST.
    expect(startOfLocalDay("2031-03-09", "America/New_York").toISOString()).toBe("2031-03-09T05:00:00.000Z");
    expect(startOfLocalDay("2031-03-10", "America/New_York").toISOString()).toBe("2031-03-10T04:00:00.000Z");
    // Santiago skips midnight when it springs forward (7 September 2031): the day starts at 01:00.
    expect(startOfLocalDay("2031-09-07", "America/Santiago").toISOString()).toBe("2031-09-07T04:00:00.000Z");
  });

  it("builds weeks of seven local days from today", () => {
    const first = bookingWeek(new Date(NOW), 0, "America/New_York");
    expect(first.days).toEqual([
      "2031-03-03",
      "2031-03-04",
      "2031-03-05",
      "2031-03-06",
      "2031-03-07",
      "2031-03-08",
      "2031-03-09",
    ]);
    expect(first.start.toISOString()).toBe("2031-03-03T05:00:00.000Z");
    // The week holds the spring-forward day, so it is an hour short of 7 × 24 hours.
    expect(first.end.toISOString()).toBe("2031-03-10T04:00:00.000Z");

    const second = bookingWeek(new Date(NOW), 1, "America/New_York");
    expect(second.days[0]).toBe("2031-03-10");
    expect(second.start.toISOString()).toBe(first.end.toISOString());
  });

  it("offers as many weeks as the booking horizon reaches", () => {
    expect(weeksWithinHorizon(90)).toBe(13);
    expect(weeksWithinHorizon(7)).toBe(1);
    expect(weeksWithinHorizon(0)).toBe(1);
  });
});

describe("groupSlotsByDay", () => {
  const days = ["2031-03-03", "2031-03-04", "2031-03-05"];

  it("puts each slot on the viewer's local day, keeping empty days", () => {
    const slots = [slot("2031-03-03T14:00:00Z"), slot("2031-03-03T23:30:00Z"), slot("2031-03-04T01:00:00Z")];

    const inLisbon = groupSlotsByDay(slots, days, "Europe/Lisbon");
    expect(inLisbon.map((d) => [d.date, d.slots.map((s) => s.start)])).toEqual([
      ["2031-03-03", ["2031-03-03T14:00:00Z", "2031-03-03T23:30:00Z"]],
      ["2031-03-04", ["2031-03-04T01:00:00Z"]],
      ["2031-03-05", []],
    ]);

    const inTokyo = groupSlotsByDay(slots, days, "Asia/Tokyo");
    // 14:00 UTC is 23:00 in Tokyo; 23:30 and 01:00 UTC are the next morning there.
    expect(inTokyo.map((d) => [d.date, d.slots.map((s) => s.start)])).toEqual([
      ["2031-03-03", ["2031-03-03T14:00:00Z"]],
      ["2031-03-04", ["2031-03-03T23:30:00Z", "2031-03-04T01:00:00Z"]],
      ["2031-03-05", []],
    ]);
  });

  it("sorts by time and keeps one slot per start (the first practitioner listed)", () => {
    const slots = [slot("2031-03-03T15:00:00Z", 8), slot("2031-03-03T14:00:00Z", 9), slot("2031-03-03T14:00:00Z", 5)];
    const [monday] = groupSlotsByDay(slots, days, "UTC");
    expect(monday?.slots.map((s) => [s.start, s.practitioner_id])).toEqual([
      ["2031-03-03T14:00:00Z", 9],
      ["2031-03-03T15:00:00Z", 8],
    ]);
  });

  it("leaves out slots outside the week's days", () => {
    const grouped = groupSlotsByDay([slot("2031-03-09T10:00:00Z")], days, "UTC");
    expect(grouped.every((d) => d.slots.length === 0)).toBe(true);
  });
});

describe("countdown", () => {
  it("counts down minutes and seconds to the expiry, rounding down", () => {
    expect(countdown("2031-03-03T08:05:00Z", NOW)).toEqual({ seconds: 300, label: "5:00", expired: false });
    expect(countdown("2031-03-03T08:05:00Z", NOW + 500)).toEqual({ seconds: 299, label: "4:59", expired: false });
    expect(countdown("2031-03-03T08:00:09Z", NOW)).toEqual({ seconds: 9, label: "0:09", expired: false });
  });

  it("is expired at and after the expiry, never negative", () => {
    expect(countdown("2031-03-03T08:00:00Z", NOW)).toEqual({ seconds: 0, label: "0:00", expired: true });
    expect(countdown("2031-03-03T07:59:00Z", NOW)).toEqual({ seconds: 0, label: "0:00", expired: true });
    expect(countdown("not a time", NOW).expired).toBe(true);
  });
});

describe("appointments", () => {
  it("splits upcoming (soonest first, cancelled kept) from past (latest first), hiding entered-in-error", () => {
    const list = [
      appointment({ id: 1, start: "2031-03-05T10:00:00Z", end: "2031-03-05T10:30:00Z" }),
      appointment({ id: 2, start: "2031-03-04T10:00:00Z", end: "2031-03-04T10:30:00Z", status: "cancelled" }),
      appointment({ id: 3, start: "2031-02-01T10:00:00Z", end: "2031-02-01T10:30:00Z", status: "fulfilled" }),
      appointment({ id: 4, start: "2031-02-20T10:00:00Z", end: "2031-02-20T10:30:00Z", status: "noshow" }),
      appointment({ id: 5, start: "2031-03-06T10:00:00Z", end: "2031-03-06T10:30:00Z", status: "entered-in-error" }),
    ];
    const { upcoming, past } = splitAppointments(list, NOW);
    expect(upcoming.map((a) => a.id)).toEqual([2, 1]);
    expect(past.map((a) => a.id)).toEqual([4, 3]);
    expect(nextAppointment(list, NOW)?.id).toBe(1);
  });

  it("allows online changes of booked appointments only outside the cancellation window", () => {
    const booked = appointment({ start: "2031-03-03T20:00:00Z" });
    expect(changeableOnline(booked, 12 * 60, NOW)).toBe(true);
    expect(changeableOnline(booked, 12 * 60 + 1, NOW)).toBe(false);
    expect(changeableOnline({ ...booked, status: "cancelled" }, 0, NOW)).toBe(false);
    expect(changeableOnline(booked, null, NOW)).toBe(true);
  });
});

describe("bookingProblem", () => {
  const error = (status: number, code: string, detail = "", fields = {}) => new ApiError(status, code, detail, fields);

  it("refreshes the free times when the chosen one was taken meanwhile", () => {
    const problem = bookingProblem(error(409, "slot_unavailable", "Dr Grey is already booked then."), "hold");
    expect(problem.recovery).toBe("refresh-slots");
    expect(problem.message).toContain("just been taken");
  });

  it("sends the patient back to choosing when the hold ran out or is gone", () => {
    expect(bookingProblem(error(409, "hold_expired"), "confirm")).toMatchObject({
      recovery: "choose-again",
      message: expect.stringContaining("ran out") as string,
    });
    expect(bookingProblem(error(409, "hold_not_active"), "confirm").recovery).toBe("choose-again");
  });

  it("tells the patient to call the clinic when it is too late to change online", () => {
    for (const step of ["cancel", "reschedule"] as const) {
      const problem = bookingProblem(error(400, "too_late", "too close to the start"), step);
      expect(problem.message).toContain("call the clinic");
      expect(problem.recovery).toBe("reload");
    }
    expect(bookingProblem(error(400, "too_late"), "hold").recovery).toBe("refresh-slots");
  });

  it("says someone else took a waitlist offer", () => {
    expect(bookingProblem(error(409, "offer_unavailable"), "offer")).toMatchObject({
      recovery: "reload",
      message: expect.stringContaining("someone else took that time") as string,
    });
  });

  it("reloads after a version conflict and shows the first field error of an invalid request", () => {
    expect(bookingProblem(error(412, "version_conflict"), "cancel").recovery).toBe("reload");
    expect(bookingProblem(error(400, "invalid", "Check.", { latest: ["The window is over."] }), "waitlist")).toEqual({
      message: "The window is over.",
      recovery: "none",
    });
  });

  it("does not show server internals for 5xx answers or unknown failures", () => {
    expect(bookingProblem(error(500, "http_500", "Traceback…"), "hold").message).toBe(
      "The clinic's system had a problem. Please try again in a moment.",
    );
    expect(bookingProblem(new Error("boom"), "hold").message).toBe("Something went wrong. Please try again.");
  });
});
