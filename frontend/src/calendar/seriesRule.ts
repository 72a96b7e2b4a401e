/**
 * Recurring appointments from the booking dialog's friendly "Repeat" form: weekly on one or more weekdays, every N
 * weeks, ending after K visits or on a date. The form is turned into an RFC 5545 RRULE within the subset the series
 * API accepts (docs/scheduling.md, "Recurring appointments": FREQ=WEEKLY, INTERVAL 1–52, BYDAY weekdays, exactly one
 * of COUNT 1–52 or a date UNTIL), and expanded here the way the server expands it, for the preview.
 *
 * Wall-clock throughout: a series is a local time (e.g. 10:00) on each date in the clinic's zone, so the UTC instant
 * moves across a daylight-saving change while the local time stays put. A visit whose local time the clocks skip or
 * repeat on its date is refused by the server; the preview marks it beforehand.
 */
import { DateTime } from "luxon";

import { ApiError } from "../api/client";
import { conflictingResourceName, describeSchedulingError } from "./calendarApi";

export const WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export const WEEKDAY_NAMES: Record<Weekday, { short: string; long: string }> = {
  MO: { short: "Mon", long: "Monday" },
  TU: { short: "Tue", long: "Tuesday" },
  WE: { short: "Wed", long: "Wednesday" },
  TH: { short: "Thu", long: "Thursday" },
  FR: { short: "Fri", long: "Friday" },
  SA: { short: "Sat", long: "Saturday" },
  SU: { short: "Sun", long: "Sunday" },
};

/** The series API's limits (scheduling/services/series.py). */
export const MAX_OCCURRENCES = 52;
export const MAX_INTERVAL_WEEKS = 52;
/** First to last start; the server allows five years (of 366 days). */
export const MAX_SPAN_DAYS = 5 * 366;

export interface RepeatForm {
  /** The weekdays the visits fall on; always including the first visit's own weekday. */
  weekdays: Weekday[];
  /** Every how many weeks (1 = every week). */
  intervalWeeks: number;
  ends: "count" | "until";
  /** How many visits in all, the first included (when `ends` is "count"). */
  count: number;
  /** The last date a visit may fall on, YYYY-MM-DD in the clinic's zone, inclusive (when `ends` is "until"). */
  until: string;
}

export type RepeatField = "weekdays" | "intervalWeeks" | "count" | "until";
export type RepeatErrors = Partial<Record<RepeatField, string>>;

/** A wall-clock date-time without an offset, as the series API takes `first_start`: "2031-03-17T10:00". */
export type WallClock = string;

const WALL_CLOCK = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** The wall-clock date and time (minutes) of an instant in `zone` ("local": the viewer's), e.g. "2031-03-17T10:00". */
export function toWallClock(isoInstant: string, zone: string): WallClock {
  const moment = DateTime.fromISO(isoInstant, { setZone: true }).setZone(zone === "local" ? "local" : zone);
  return moment.isValid ? moment.toFormat("yyyy-MM-dd'T'HH:mm") : "";
}

/** The weekday of a date ("2031-03-17" → "MO"), or null when it is not a date. */
export function weekdayOf(date: string): Weekday | null {
  const day = DateTime.fromISO(date.slice(0, 10), { zone: "UTC" });
  return day.isValid ? (WEEKDAYS[day.weekday - 1] ?? null) : null;
}

/** A fresh form for a series starting at `first`: every week on its weekday, four visits. */
export function defaultRepeat(first: WallClock): RepeatForm {
  const weekday = weekdayOf(first);
  return { weekdays: weekday ? [weekday] : [], intervalWeeks: 1, ends: "count", count: 4, until: "" };
}

/** The weekdays in calendar order (Monday first), each once. */
function ordered(weekdays: readonly Weekday[]): Weekday[] {
  return WEEKDAYS.filter((day) => weekdays.includes(day));
}

/**
 * The RRULE the API is sent, e.g. "FREQ=WEEKLY;BYDAY=TU;COUNT=3" or "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;UNTIL=20310414".
 * UNTIL is a date, which the server reads as the end of that day in the series' zone. Check the form first
 * (`checkRepeat`); this only writes it down.
 */
export function buildRRule(form: RepeatForm): string {
  const parts = ["FREQ=WEEKLY"];
  if (form.intervalWeeks !== 1) parts.push(`INTERVAL=${form.intervalWeeks}`);
  parts.push(`BYDAY=${ordered(form.weekdays).join(",")}`);
  parts.push(form.ends === "count" ? `COUNT=${form.count}` : `UNTIL=${form.until.replaceAll("-", "")}`);
  return parts.join(";");
}

/** One visit of the series, as the preview lists it. */
export interface Occurrence {
  /** 1 for the first visit. */
  index: number;
  /** Its wall-clock start in the series' zone, "2031-03-17T10:00". */
  local: WallClock;
  /** Its date there, "2031-03-17". */
  date: string;
  /** Its instant (UTC ISO), for showing it in another zone; empty when the local time does not exist. */
  start: string;
  /** The clocks skip this local time on this date (spring gap) or show it twice (autumn fold): the server refuses. */
  problem: "nonexistent" | "ambiguous" | null;
}

/** Whether a wall-clock time exists once, never, or twice in `zone` (daylight-saving changes). */
export function localTimeProblem(local: WallClock, zone: string): Occurrence["problem"] {
  const moment = DateTime.fromISO(local, { zone });
  if (!moment.isValid) return "nonexistent";
  if (moment.toFormat("yyyy-MM-dd'T'HH:mm") !== local) return "nonexistent"; // luxon moved it out of the gap
  // Another instant up to two hours away that reads the same on the clock: the time is repeated.
  for (const minutes of [-120, -60, -30, 30, 60, 120]) {
    if (moment.plus({ minutes }).toFormat("yyyy-MM-dd'T'HH:mm") === local) return "ambiguous";
  }
  return null;
}

/**
 * The visits of a weekly series starting at `first` (wall clock in `zone`), as the server expands the rule: weeks
 * start on Monday (WKST=MO); from the first visit's week, every `intervalWeeks`-th week, on each chosen weekday, at
 * the first visit's local time; no visit before the first; until `count` visits or the end of the `until` day.
 * Returns at most `MAX_OCCURRENCES + 1` (one more than allowed shows that the form asks for too many). The form must
 * be checked first; an unusable form gives an empty list.
 */
export function expandRepeat(form: RepeatForm, first: WallClock, zone: string): Occurrence[] {
  const match = WALL_CLOCK.exec(first);
  const weekdays = ordered(form.weekdays);
  const interval = form.intervalWeeks;
  if (!match || !weekdays.length || !Number.isInteger(interval) || interval < 1) return [];
  const [, firstDate = "", hours = "", minutes = ""] = match;
  const start = DateTime.fromISO(firstDate, { zone: "UTC" });
  if (!start.isValid) return [];
  const limit = form.ends === "count" ? Math.min(form.count, MAX_OCCURRENCES + 1) : MAX_OCCURRENCES + 1;
  if (form.ends === "until" && !ISO_DATE.test(form.until)) return [];
  const out: Occurrence[] = [];
  let week = start.startOf("week"); // luxon weeks start on Monday, as WKST=MO
  // Far enough for 53 visits at the longest interval, so a form whose dates never come ends too.
  const stop = start.plus({ weeks: interval * (MAX_OCCURRENCES + 1) });
  while (out.length < limit && week <= stop) {
    for (const day of weekdays) {
      const date = week.plus({ days: WEEKDAYS.indexOf(day) }).toISODate() ?? "";
      if (date < firstDate) continue;
      if (form.ends === "until" && date > form.until) return out;
      const local = `${date}T${hours}:${minutes}`;
      const problem = localTimeProblem(local, zone);
      const instant = problem === "nonexistent" ? "" : (DateTime.fromISO(local, { zone }).toUTC().toISO() ?? "");
      out.push({ index: out.length + 1, local, date, start: instant, problem });
      if (out.length >= limit) break;
    }
    week = week.plus({ weeks: interval });
  }
  return out;
}

/**
 * What is wrong with the form for a series starting at `first`, per field (empty when it can be sent): a weekday
 * chosen and the first visit's own among them (the server wants the first start to be the rule's first visit),
 * whole numbers within the API's limits, an end date not before the first visit, at most 52 visits over at most
 * five years.
 */
export function checkRepeat(form: RepeatForm, first: WallClock): RepeatErrors {
  const errors: RepeatErrors = {};
  const own = weekdayOf(first);
  if (!form.weekdays.length) errors.weekdays = "Choose at least one weekday.";
  else if (own && !form.weekdays.includes(own)) {
    errors.weekdays = `Include ${WEEKDAY_NAMES[own].long}, the day of the first visit.`;
  }
  if (!Number.isInteger(form.intervalWeeks) || form.intervalWeeks < 1 || form.intervalWeeks > MAX_INTERVAL_WEEKS) {
    errors.intervalWeeks = `Give a whole number of weeks from 1 to ${MAX_INTERVAL_WEEKS}.`;
  }
  if (form.ends === "count") {
    if (!Number.isInteger(form.count) || form.count < 2 || form.count > MAX_OCCURRENCES) {
      errors.count = `Give a number of visits from 2 to ${MAX_OCCURRENCES}.`;
    }
  } else if (!ISO_DATE.test(form.until) || !DateTime.fromISO(form.until).isValid) {
    errors.until = "Give the date of the last visit.";
  } else if (form.until < first.slice(0, 10)) {
    errors.until = "The end date is before the first visit.";
  }
  if (Object.keys(errors).length) return errors;
  const visits = expandRepeat(form, first, "UTC");
  if (visits.length > MAX_OCCURRENCES) {
    errors.until = `That makes more than ${MAX_OCCURRENCES} visits; choose an earlier end date or fewer weekdays.`;
  } else if (visits.length < 2) {
    errors[form.ends === "until" ? "until" : "count"] = "A series has at least two visits; end it later.";
  } else {
    const last = visits.at(-1);
    const span = last ? DateTime.fromISO(last.date).diff(DateTime.fromISO(first.slice(0, 10)), "days").days : 0;
    if (span > MAX_SPAN_DAYS) errors[form.ends === "until" ? "until" : "count"] = "A series spans at most five years.";
  }
  return errors;
}

/** "1st", "2nd", "3rd", "4th", "11th", "22nd" … */
export function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n}${suffix}`;
}

/** A calendar date as the viewer's locale writes it short, e.g. "Tue, Mar 17" (with the year when asked). */
export function formatLocalDate(date: string, options: { year?: boolean; locale?: string } = {}): string {
  const [y, m, d] = date.slice(0, 10).split("-").map(Number);
  if (!y || !m || !d) return date;
  return new Date(Date.UTC(y, m - 1, d, 12)).toLocaleDateString(options.locale, {
    weekday: "short",
    day: "numeric",
    month: "short",
    ...(options.year ? { year: "numeric" } : {}),
    timeZone: "UTC",
  });
}

/** The local time of a wall clock as the viewer's locale writes times, e.g. "10:00 AM". */
export function formatWallTime(local: WallClock, locale?: string): string {
  const match = WALL_CLOCK.exec(local);
  if (!match) return local;
  return new Date(Date.UTC(2000, 0, 1, Number(match[2]), Number(match[3]))).toLocaleTimeString(locale, {
    timeStyle: "short",
    timeZone: "UTC",
  });
}

function listWords(words: readonly string[]): string {
  if (words.length <= 1) return words.join("");
  return `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

/** The form in words, e.g. "Every week on Tue, 3 visits" or "Every 2 weeks on Mon and Thu, until Tue, Apr 14, 2031". */
export function describeRepeat(form: RepeatForm, locale?: string): string {
  const every = form.intervalWeeks === 1 ? "Every week" : `Every ${form.intervalWeeks} weeks`;
  const days = listWords(ordered(form.weekdays).map((day) => WEEKDAY_NAMES[day].short));
  const end =
    form.ends === "count" ? `${form.count} visits` : `until ${formatLocalDate(form.until, { year: true, locale })}`;
  return `${every} on ${days}, ${end}`;
}

/**
 * A stored weekly rule read back into the form (for saying what a series is), or null for a rule this form cannot
 * write (daily, monthly, ordinals …). The server stores rules upper case without the "RRULE:" prefix.
 */
export function parseRRule(rrule: string): RepeatForm | null {
  const parts = new Map<string, string>();
  for (const item of rrule.trim().toUpperCase().replace(/^RRULE:/, "").split(";")) {
    const [key, value] = item.split("=");
    if (!key || value === undefined || parts.has(key)) return null;
    parts.set(key, value);
  }
  if (parts.get("FREQ") !== "WEEKLY" || (parts.has("WKST") && parts.get("WKST") !== "MO")) return null;
  if ([...parts.keys()].some((key) => !["FREQ", "INTERVAL", "BYDAY", "COUNT", "UNTIL", "WKST"].includes(key))) return null;
  const weekdays = (parts.get("BYDAY") ?? "").split(",");
  if (!weekdays.every((day): day is Weekday => (WEEKDAYS as readonly string[]).includes(day))) return null;
  const intervalWeeks = Number(parts.get("INTERVAL") ?? "1");
  const until = /^(\d{4})(\d{2})(\d{2})/.exec(parts.get("UNTIL") ?? "");
  const count = parts.has("COUNT") ? Number(parts.get("COUNT")) : Number.NaN;
  if (!Number.isInteger(intervalWeeks) || (!until && !Number.isInteger(count))) return null;
  return {
    weekdays: ordered(weekdays),
    intervalWeeks,
    ends: until ? "until" : "count",
    count: until ? Number.NaN : count,
    until: until ? `${until[1]}-${until[2]}-${until[3]}` : "",
  };
}

/** The refused visit an API error names (`occurrence` in the body of a series refusal), if any. */
export interface RefusedOccurrence {
  index: number;
  date: string;
  localStart: string;
  timeZone: string;
}

export function refusedOccurrence(error: unknown): RefusedOccurrence | null {
  if (!(error instanceof ApiError)) return null;
  const value = error.body.occurrence;
  if (typeof value !== "object" || value === null) return null;
  const { index, date, local_start: localStart, time_zone: timeZone } = value as Record<string, unknown>;
  if (typeof index !== "number" || typeof date !== "string") return null;
  return {
    index,
    date,
    localStart: typeof localStart === "string" ? localStart : "",
    timeZone: typeof timeZone === "string" ? timeZone : "",
  };
}

/** Why one visit was refused, in words, from the cause's code (the API's detail when the code says too little). */
function occurrenceReason(error: ApiError): string {
  const resource = conflictingResourceName(error);
  switch (error.code) {
    case "slot_unavailable":
      return resource ? `${resource} is already booked` : "that time is already booked";
    case "outside_availability":
      return resource ? `${resource} is not working then (outside its hours or in blocked time)` : "outside working hours";
    case "nonexistent_local_time":
      return "the clocks skip that time (daylight-saving change)";
    case "ambiguous_local_time":
      return "that time happens twice (daylight-saving change)";
    case "booking_in_past":
      return "that time has passed";
    case "too_late":
    case "beyond_booking_horizon":
    case "missing_resource":
    default: {
      // The detail names the visit, then its cause: "Occurrence 3 on 2031-03-24 at 09:00 (Europe/Lisbon): …".
      const cause = /^Occurrence \d+ on [^:]+:\d{2} \([^)]*\): (.*)$/s.exec(error.detail)?.[1];
      const text = (cause ?? error.detail).replace(/\.$/, "");
      return text || "it could not be booked";
    }
  }
}

/**
 * A sentence for the scheduler about a refused series or series cancellation. When one visit was refused it is
 * named first — "3rd visit, Tue, Mar 17, 10:00 AM: Exam room 1 is already booked. Nothing was booked." — otherwise
 * the error is described as for a single booking or change.
 */
export function describeSeriesError(
  error: unknown,
  action: "booked" | "cancelled" = "booked",
  locale?: string,
): string {
  const refused = refusedOccurrence(error);
  if (!refused || !(error instanceof ApiError)) return describeSchedulingError(error);
  const time = refused.localStart ? `, ${formatWallTime(refused.localStart, locale)}` : "";
  const advice = error.code === "slot_unavailable" ? " Choose another time or fewer visits." : "";
  return `${ordinal(refused.index)} visit, ${formatLocalDate(refused.date, { locale })}${time}: ${occurrenceReason(error)}. Nothing was ${action}.${advice}`;
}
