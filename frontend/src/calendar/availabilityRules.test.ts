import { describe, expect, it } from "vitest";

import { newRow, rowErrorsFromApi, rowsFromRules, rulesFromRows, validateRows } from "./availabilityRules";

const weekday = (day: number, start = "09:00", end = "17:00", from = "2031-01-01", until = "") =>
  newRow({ weekday: day, start_time: start, end_time: end, effective_from: from, effective_until: until });

describe("weekly hours rows", () => {
  it("come from the API's rules by weekday and start, at minute precision, and go back unchanged", () => {
    const rows = rowsFromRules([
      { weekday: 2, start_time: "13:00:00", end_time: "17:00:00", effective_from: "2031-01-01", effective_until: null },
      { weekday: 0, start_time: "09:00", end_time: "12:00", effective_from: "2031-01-01", effective_until: "2031-06-01" },
      { weekday: 2, start_time: "08:00", end_time: "12:00", effective_from: "2031-01-01" },
    ]);
    expect(rows.map((r) => [r.weekday, r.start_time, r.end_time, r.effective_until])).toEqual([
      [0, "09:00", "12:00", "2031-06-01"],
      [2, "08:00", "12:00", ""],
      [2, "13:00", "17:00", ""],
    ]);
    expect(new Set(rows.map((r) => r.key)).size).toBe(3);
    expect(rulesFromRows(rows)).toEqual([
      { weekday: 0, start_time: "09:00", end_time: "12:00", effective_from: "2031-01-01", effective_until: "2031-06-01" },
      { weekday: 2, start_time: "08:00", end_time: "12:00", effective_from: "2031-01-01", effective_until: null },
      { weekday: 2, start_time: "13:00", end_time: "17:00", effective_from: "2031-01-01", effective_until: null },
    ]);
  });
});

describe("validating weekly hours", () => {
  it("accepts separate hours on one day and the same hours on different days", () => {
    expect(validateRows([weekday(0, "08:00", "12:00"), weekday(0, "12:00", "16:00"), weekday(1, "08:00", "12:00")]).size).toBe(0);
  });

  it("requires the start before the end", () => {
    const errors = validateRows([weekday(0), weekday(1, "17:00", "09:00"), weekday(2, "10:00", "10:00")]);
    expect([...errors.keys()]).toEqual([1, 2]);
    expect(errors.get(1)).toEqual(["The start must be before the end."]);
  });

  it("requires times and a start date", () => {
    const errors = validateRows([weekday(0, "", "17:00", "")]);
    expect(errors.get(0)).toEqual(["Give a start time (HH:MM).", "Give the date these hours start."]);
  });

  it("requires an end date after the start date, and real dates", () => {
    expect(validateRows([weekday(0, "09:00", "17:00", "2031-05-01", "2031-05-01")]).get(0)).toEqual([
      "The end date must be after the start date.",
    ]);
    expect(validateRows([weekday(0, "09:00", "17:00", "2031-02-30")]).get(0)).toEqual(["Give the date these hours start."]);
  });

  it("flags the later of two rows that overlap on the same weekday", () => {
    const errors = validateRows([weekday(3, "09:00", "13:00"), weekday(4), weekday(3, "12:00", "18:00")]);
    expect([...errors.keys()]).toEqual([2]);
    expect(errors.get(2)).toEqual(["Overlaps row 1 (Thursday 09:00–13:00)."]);
  });

  it("allows the same hours in periods that do not overlap", () => {
    const rows = [weekday(0, "09:00", "17:00", "2031-01-01", "2031-04-01"), weekday(0, "09:00", "17:00", "2031-04-01")];
    expect(validateRows(rows).size).toBe(0);
    expect(validateRows([rows[0]!, weekday(0, "09:00", "17:00", "2031-03-31")]).size).toBe(1);
  });
});

describe("the API's errors on rows", () => {
  it("puts the service's rules[i] messages on row i", () => {
    const { rows, other } = rowErrorsFromApi({ "rules[2]": ["Overlaps rules[0] on the same weekday."] });
    expect([...rows.entries()]).toEqual([[2, ["Overlaps rules[0] on the same weekday."]]]);
    expect(other).toEqual([]);
  });

  it("puts the serializer's nested messages on their rows with the column's name", () => {
    const fields = { rules: [{}, { start_time: ["Time has wrong format."] }] } as unknown as Record<string, string[]>;
    const { rows } = rowErrorsFromApi(fields);
    expect([...rows.entries()]).toEqual([[1, ["From: Time has wrong format."]]]);
  });

  it("keeps messages about anything else for the form", () => {
    expect(rowErrorsFromApi({ non_field_errors: ["Send a JSON object."] }).other).toEqual(["Send a JSON object."]);
  });
});
