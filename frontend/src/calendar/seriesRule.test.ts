import { describe, expect, it } from "vitest";

import { ApiError } from "../api/client";
import {
  buildRRule,
  checkRepeat,
  defaultRepeat,
  describeRepeat,
  describeSeriesError,
  expandRepeat,
  localTimeProblem,
  ordinal,
  parseRRule,
  refusedOccurrence,
  toWallClock,
  weekdayOf,
  type RepeatForm,
} from "./seriesRule";

const CHICAGO = "America/Chicago";

function form(overrides: Partial<RepeatForm> = {}): RepeatForm {
  return { weekdays: ["TU"], intervalWeeks: 1, ends: "count", count: 3, until: "", ...overrides };
}

describe("the wall clock of the first visit", () => {
  it("reads a selected instant in the clinic's zone, whatever offset it came with", () => {
    expect(toWallClock("2031-03-18T15:00:00Z", CHICAGO)).toBe("2031-03-18T10:00");
    expect(toWallClock("2031-03-18T16:00:00+01:00", CHICAGO)).toBe("2031-03-18T10:00");
    expect(toWallClock("2031-03-18T10:00:00-05:00", "Europe/Lisbon")).toBe("2031-03-18T15:00");
  });

  it("knows the weekday of a date, Monday first", () => {
    expect(weekdayOf("2031-03-17")).toBe("MO");
    expect(weekdayOf("2031-03-23T10:00")).toBe("SU");
    expect(weekdayOf("not a date")).toBeNull();
  });

  it("starts a new form every week on the first visit's weekday", () => {
    expect(defaultRepeat("2031-03-19T10:00")).toEqual({ weekdays: ["WE"], intervalWeeks: 1, ends: "count", count: 4, until: "" });
  });
});

describe("the RRULE sent to the API", () => {
  it("is weekly on the day with a count", () => {
    expect(buildRRule(form())).toBe("FREQ=WEEKLY;BYDAY=TU;COUNT=3");
  });

  it("gives an interval only when it is not every week, and the weekdays in calendar order", () => {
    expect(buildRRule(form({ weekdays: ["TH", "MO"], intervalWeeks: 2, count: 6 }))).toBe(
      "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;COUNT=6",
    );
  });

  it("ends on a date as a DATE UNTIL (the server reads it as the end of that local day)", () => {
    expect(buildRRule(form({ ends: "until", until: "2031-04-15" }))).toBe("FREQ=WEEKLY;BYDAY=TU;UNTIL=20310415");
  });

  it("uses only the parts the series API accepts", () => {
    const rule = buildRRule(form({ weekdays: ["MO", "WE", "FR"], intervalWeeks: 3, ends: "until", until: "2031-06-01" }));
    for (const part of rule.split(";")) {
      expect(["FREQ", "INTERVAL", "BYDAY", "COUNT", "UNTIL"]).toContain(part.split("=")[0]);
    }
  });
});

describe("a stored rule read back", () => {
  it("gives the form that wrote it", () => {
    for (const written of [
      form(),
      form({ weekdays: ["MO", "TH"], intervalWeeks: 2, count: 6 }),
      form({ ends: "until", until: "2031-04-15", count: Number.NaN }),
    ]) {
      expect(parseRRule(buildRRule(written))).toEqual(written);
    }
  });

  it("reads the RRULE: prefix, lower case and WKST=MO, and a date-time UNTIL as its date", () => {
    expect(parseRRule("rrule:freq=weekly;byday=we;until=20310415T235959Z;wkst=mo")).toEqual(
      form({ weekdays: ["WE"], ends: "until", until: "2031-04-15", count: Number.NaN }),
    );
  });

  it("declines rules the form cannot write", () => {
    expect(parseRRule("FREQ=MONTHLY;BYDAY=2TU;COUNT=3")).toBeNull();
    expect(parseRRule("FREQ=WEEKLY;BYDAY=TU;COUNT=3;WKST=SU")).toBeNull();
    expect(parseRRule("FREQ=WEEKLY;BYDAY=XX;COUNT=3")).toBeNull();
    expect(parseRRule("FREQ=WEEKLY;BYDAY=TU")).toBeNull();
  });
});

describe("the preview of the visits", () => {
  it("keeps the local time on each date across a daylight-saving change (the UTC instant moves)", () => {
    // Chicago moves its clocks forward on Sunday 9 March 2031.
    const visits = expandRepeat(form(), "2031-03-04T10:00", CHICAGO);
    expect(visits.map((v) => [v.index, v.local, v.start, v.problem])).toEqual([
      [1, "2031-03-04T10:00", "2031-03-04T16:00:00.000Z", null],
      [2, "2031-03-11T10:00", "2031-03-11T15:00:00.000Z", null],
      [3, "2031-03-18T10:00", "2031-03-18T15:00:00.000Z", null],
    ]);
  });

  it("visits several weekdays every other week, from the first visit's week, never before the first visit", () => {
    const visits = expandRepeat(form({ weekdays: ["MO", "WE", "FR"], intervalWeeks: 2, count: 5 }), "2031-03-05T09:30", CHICAGO);
    expect(visits.map((v) => v.date)).toEqual(["2031-03-05", "2031-03-07", "2031-03-17", "2031-03-19", "2031-03-21"]);
    expect(visits.every((v) => v.local.endsWith("T09:30"))).toBe(true);
  });

  it("includes a visit on the end date itself", () => {
    expect(expandRepeat(form({ ends: "until", until: "2031-03-18" }), "2031-03-04T10:00", CHICAGO)).toHaveLength(3);
    expect(expandRepeat(form({ ends: "until", until: "2031-03-17" }), "2031-03-04T10:00", CHICAGO)).toHaveLength(2);
  });

  it("marks a visit whose local time the clocks skip or repeat on its date", () => {
    expect(localTimeProblem("2031-03-09T02:30", CHICAGO)).toBe("nonexistent");
    expect(localTimeProblem("2031-11-02T01:30", CHICAGO)).toBe("ambiguous");
    expect(localTimeProblem("2031-11-02T03:30", CHICAGO)).toBeNull();
    const visits = expandRepeat(form({ weekdays: ["SU"] }), "2031-03-02T02:30", CHICAGO);
    expect(visits.map((v) => v.problem)).toEqual([null, "nonexistent", null]);
    expect(visits[1]?.start).toBe("");
  });

  it("stops one past the API's limit, so a form asking for too many visits shows it", () => {
    const visits = expandRepeat(form({ weekdays: ["MO", "TU", "WE"], ends: "until", until: "2032-12-31" }), "2031-03-04T10:00", CHICAGO);
    expect(visits).toHaveLength(53);
  });

  it("is empty for a form it cannot read", () => {
    expect(expandRepeat(form({ weekdays: [] }), "2031-03-04T10:00", CHICAGO)).toEqual([]);
    expect(expandRepeat(form({ intervalWeeks: 0 }), "2031-03-04T10:00", CHICAGO)).toEqual([]);
    expect(expandRepeat(form(), "2031-03-04", CHICAGO)).toEqual([]);
  });
});

describe("checking the form before sending", () => {
  const first = "2031-03-04T10:00"; // a Tuesday

  it("accepts a usable form", () => {
    expect(checkRepeat(form(), first)).toEqual({});
    expect(checkRepeat(form({ weekdays: ["TU", "TH"], intervalWeeks: 2, ends: "until", until: "2031-05-01" }), first)).toEqual({});
  });

  it("wants a weekday, and the first visit's own among them", () => {
    expect(checkRepeat(form({ weekdays: [] }), first).weekdays).toBe("Choose at least one weekday.");
    expect(checkRepeat(form({ weekdays: ["WE"] }), first).weekdays).toBe("Include Tuesday, the day of the first visit.");
  });

  it("wants whole numbers within the API's limits", () => {
    expect(checkRepeat(form({ intervalWeeks: 0 }), first).intervalWeeks).toMatch(/1 to 52/);
    expect(checkRepeat(form({ intervalWeeks: 1.5 }), first).intervalWeeks).toMatch(/whole number/);
    expect(checkRepeat(form({ intervalWeeks: 53 }), first).intervalWeeks).toMatch(/1 to 52/);
    expect(checkRepeat(form({ count: 1 }), first).count).toMatch(/2 to 52/);
    expect(checkRepeat(form({ count: 53 }), first).count).toMatch(/2 to 52/);
    expect(checkRepeat(form({ count: Number.NaN }), first).count).toMatch(/2 to 52/);
  });

  it("wants an end date on or after the first visit, giving at least two and at most 52 visits", () => {
    expect(checkRepeat(form({ ends: "until", until: "" }), first).until).toBe("Give the date of the last visit.");
    expect(checkRepeat(form({ ends: "until", until: "2031-03-03" }), first).until).toBe("The end date is before the first visit.");
    expect(checkRepeat(form({ ends: "until", until: "2031-03-10" }), first).until).toMatch(/at least two visits/);
    expect(checkRepeat(form({ ends: "until", until: "2032-06-01" }), first).until).toMatch(/more than 52 visits/);
  });

  it("refuses a series longer than five years", () => {
    expect(checkRepeat(form({ intervalWeeks: 52, count: 7 }), first).count).toBe("A series spans at most five years.");
    expect(checkRepeat(form({ intervalWeeks: 52, count: 5 }), first)).toEqual({});
  });
});

describe("words for the scheduler", () => {
  it("writes ordinals", () => {
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 52].map(ordinal)).toEqual([
      "1st",
      "2nd",
      "3rd",
      "4th",
      "11th",
      "12th",
      "13th",
      "21st",
      "22nd",
      "23rd",
      "52nd",
    ]);
  });

  it("describes the repeat", () => {
    expect(describeRepeat(form())).toBe("Every week on Tue, 3 visits");
    expect(describeRepeat(form({ weekdays: ["TH", "MO", "WE"], intervalWeeks: 2, ends: "until", until: "2031-04-14" }), "en-US")).toBe(
      "Every 2 weeks on Mon, Wed and Thu, until Mon, Apr 14, 2031",
    );
  });

  it("names the refused visit and why: a busy resource", () => {
    const error = new ApiError(409, "slot_unavailable", "Occurrence 3 on 2031-03-17 at 10:00 (Europe/Lisbon): Exam room 1 is already booked then.", {}, {
      code: "slot_unavailable",
      conflicting_resource: { schedule_id: 4, name: "Exam room 1" },
      occurrence: { index: 3, date: "2031-03-17", local_start: "2031-03-17T10:00", time_zone: "Europe/Lisbon" },
    });
    expect(refusedOccurrence(error)).toEqual({ index: 3, date: "2031-03-17", localStart: "2031-03-17T10:00", timeZone: "Europe/Lisbon" });
    expect(describeSeriesError(error, "booked", "en-US")).toBe(
      "3rd visit, Mon, Mar 17, 10:00 AM: Exam room 1 is already booked. Nothing was booked. Choose another time or fewer visits.",
    );
  });

  it("names the refused visit and why: the cause the API gives in its detail", () => {
    const error = new ApiError(400, "beyond_booking_horizon", "Occurrence 12 on 2031-06-02 at 09:00 (America/Chicago): bookings open 90 days ahead.", {}, {
      occurrence: { index: 12, date: "2031-06-02", local_start: "2031-06-02T09:00", time_zone: "America/Chicago" },
    });
    expect(describeSeriesError(error, "booked", "en-US")).toBe(
      "12th visit, Mon, Jun 2, 9:00 AM: bookings open 90 days ahead. Nothing was booked.",
    );
    const late = new ApiError(409, "too_late", "Occurrence 2 on 2031-03-11 at 10:00 (America/Chicago): too close to the start.", {}, {
      occurrence: { index: 2, date: "2031-03-11", local_start: "2031-03-11T10:00", time_zone: "America/Chicago" },
    });
    expect(describeSeriesError(late, "cancelled", "en-US")).toBe("2nd visit, Tue, Mar 11, 10:00 AM: too close to the start. Nothing was cancelled.");
  });

  it("describes an error without a refused visit as any scheduling error", () => {
    const invalid = new ApiError(400, "invalid", "Some fields are not valid.", { rrule: ["COUNT must be a whole number."] });
    expect(describeSeriesError(invalid)).toBe("rrule: COUNT must be a whole number.");
    expect(describeSeriesError(new Error("boom"))).toBe("Something went wrong. Try again.");
  });
});
