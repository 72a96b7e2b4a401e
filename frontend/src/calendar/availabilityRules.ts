/**
 * The weekly-hours editor's model: rows the scheduler edits, checked the way the API checks them (so most
 * mistakes are shown before saving), and the API's own errors put back on the rows they are about.
 */
import type { FieldErrors } from "../api/client";
import type { WeeklyRule } from "./calendarEvents";

/** The API's weekdays: 0 = Monday … 6 = Sunday. */
export const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] as const;

export interface RuleRow {
  /** Stable identity for Vue's list rendering (rows have no id in the API). */
  key: number;
  weekday: number;
  /** "HH:MM", wall clock in the schedule's time zone. */
  start_time: string;
  end_time: string;
  /** "YYYY-MM-DD" */
  effective_from: string;
  /** "YYYY-MM-DD", or "" for open-ended. */
  effective_until: string;
}

let nextKey = 1;

export function newRow(fields: Partial<Omit<RuleRow, "key">> = {}): RuleRow {
  return {
    key: nextKey++,
    weekday: 0,
    start_time: "09:00",
    end_time: "17:00",
    effective_from: "",
    effective_until: "",
    ...fields,
  };
}

/** "09:00:00" or "09:00" → "09:00". */
function minutesPrecision(time: string): string {
  return /^\d{2}:\d{2}/.test(time) ? time.slice(0, 5) : time;
}

/** The API's rules as editor rows, by weekday then start. */
export function rowsFromRules(rules: readonly WeeklyRule[]): RuleRow[] {
  return [...rules]
    .sort((a, b) => a.weekday - b.weekday || a.start_time.localeCompare(b.start_time) || a.effective_from.localeCompare(b.effective_from))
    .map((rule) =>
      newRow({
        weekday: rule.weekday,
        start_time: minutesPrecision(rule.start_time),
        end_time: minutesPrecision(rule.end_time),
        effective_from: rule.effective_from,
        effective_until: rule.effective_until ?? "",
      }),
    );
}

/** The rows as the PUT body's rules. */
export function rulesFromRows(rows: readonly RuleRow[]): WeeklyRule[] {
  return rows.map((row) => ({
    weekday: row.weekday,
    start_time: row.start_time,
    end_time: row.end_time,
    effective_from: row.effective_from,
    effective_until: row.effective_until || null,
  }));
}

const TIME = /^([01]\d|2[0-3]):[0-5]\d$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function validDate(value: string): boolean {
  if (!DATE.test(value)) return false;
  const parsed = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().startsWith(value);
}

function datesOverlap(a: RuleRow, b: RuleRow): boolean {
  return (!b.effective_until || a.effective_from < b.effective_until) && (!a.effective_until || b.effective_from < a.effective_until);
}

/**
 * Problems per row index (no entry: the row is fine). The same rules as the API: a weekday, valid times with the
 * start before the end, a start date, an end date after it, and no two rows of one weekday overlapping in both
 * hours and dates (the later row gets the message).
 */
export function validateRows(rows: readonly RuleRow[]): Map<number, string[]> {
  const errors = new Map<number, string[]>();
  const add = (index: number, message: string) => errors.set(index, [...(errors.get(index) ?? []), message]);
  rows.forEach((row, index) => {
    if (!Number.isInteger(row.weekday) || row.weekday < 0 || row.weekday > 6) add(index, "Choose a weekday.");
    const timesValid = TIME.test(row.start_time) && TIME.test(row.end_time);
    if (!TIME.test(row.start_time)) add(index, "Give a start time (HH:MM).");
    if (!TIME.test(row.end_time)) add(index, "Give an end time (HH:MM).");
    if (timesValid && row.start_time >= row.end_time) add(index, "The start must be before the end.");
    if (!validDate(row.effective_from)) add(index, "Give the date these hours start.");
    if (row.effective_until && !validDate(row.effective_until)) add(index, "The end date is not a date.");
    else if (row.effective_until && validDate(row.effective_from) && row.effective_until <= row.effective_from) {
      add(index, "The end date must be after the start date.");
    }
  });
  rows.forEach((b, j) => {
    if (errors.has(j)) return;
    for (let i = 0; i < j; i++) {
      const a = rows[i];
      if (!a || errors.has(i)) continue;
      if (a.weekday === b.weekday && datesOverlap(a, b) && a.start_time < b.end_time && b.start_time < a.end_time) {
        add(j, `Overlaps row ${i + 1} (${WEEKDAYS[a.weekday] ?? "same day"} ${a.start_time}–${a.end_time}).`);
        break;
      }
    }
  });
  return errors;
}

const ROW_KEY = /^rules\[(\d+)\]$/;

/**
 * The API's field errors on a PUT of the rules, per row: the service names rows as `rules[3]`, the serializer
 * nests them as `rules: [{}, {start_time: [...]}]`. Anything else goes to `other`.
 */
export function rowErrorsFromApi(fields: FieldErrors): { rows: Map<number, string[]>; other: string[] } {
  const rows = new Map<number, string[]>();
  const other: string[] = [];
  const add = (index: number, messages: string[]) => rows.set(index, [...(rows.get(index) ?? []), ...messages]);
  for (const [name, value] of Object.entries(fields as Record<string, unknown>)) {
    const match = ROW_KEY.exec(name);
    if (match) {
      add(Number(match[1]), asMessages(value));
    } else if (name === "rules" && Array.isArray(value) && value.some((v) => typeof v === "object" && v !== null)) {
      value.forEach((entry, index) => {
        if (typeof entry !== "object" || entry === null) return;
        const messages = Object.entries(entry as Record<string, unknown>).map(
          ([field, detail]) => `${FIELD_LABELS[field] ?? field}: ${asMessages(detail).join(" ")}`,
        );
        if (messages.length) add(index, messages);
      });
    } else {
      other.push(asMessages(value).join(" "));
    }
  }
  return { rows, other };
}

const FIELD_LABELS: Record<string, string> = {
  weekday: "Weekday",
  start_time: "From",
  end_time: "To",
  effective_from: "Starting",
  effective_until: "Until",
};

function asMessages(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(asMessages);
  if (typeof value === "string") return [value];
  if (typeof value === "object" && value !== null) return Object.values(value).flatMap(asMessages);
  return [];
}
