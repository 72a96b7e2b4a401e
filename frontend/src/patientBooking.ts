/**
 * The logic of the patient's booking screens, kept out of the components so it can be tested on its own:
 * calendar days and weeks in the viewer's own time zone, free slots grouped by those days, the countdown of a
 * hold, appointment status labels, and what each API error means to a patient (docs/scheduling.md).
 *
 * The API speaks UTC instants; everything here takes an explicit IANA time zone so the tests do not depend on the
 * machine's zone. Pages pass `viewerTimeZone()`.
 */
import { ApiError, NETWORK_ERROR } from "./api/client";
import type { Appointment, AppointmentStatus, FreeSlot, WaitlistOffer } from "./api/types";

/** The browser's IANA time zone ("Europe/Lisbon"); UTC when the browser does not say. */
export function viewerTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

// --- calendar days in a time zone ------------------------------------------------------------------------------

interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const partsFormatters = new Map<string, Intl.DateTimeFormat>();

function localParts(at: Date, timeZone: string): LocalParts {
  let formatter = partsFormatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    partsFormatters.set(timeZone, formatter);
  }
  const values: Record<string, number> = {};
  for (const part of formatter.formatToParts(at)) {
    if (part.type !== "literal") values[part.type] = Number(part.value);
  }
  const hour = values.hour ?? 0;
  return {
    year: values.year ?? NaN,
    month: values.month ?? NaN,
    day: values.day ?? NaN,
    hour: hour === 24 ? 0 : hour,
    minute: values.minute ?? 0,
    second: values.second ?? 0,
  };
}

/** How far the zone's wall clock is ahead of UTC at `at`, in milliseconds. */
function zoneOffsetMs(at: Date, timeZone: string): number {
  const p = localParts(at, timeZone);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return wall - (at.getTime() - at.getUTCMilliseconds());
}

function pad(value: number): string {
  return String(value).padStart(2, "0");
}

/** The calendar date ("2031-03-03") of an instant on the zone's wall clock. */
export function localDateKey(at: Date | string, timeZone: string): string {
  const p = localParts(typeof at === "string" ? new Date(at) : at, timeZone);
  return `${p.year}-${pad(p.month)}-${pad(p.day)}`;
}

/** The parts of a date key ("2031-03-03"). */
function dateParts(dateKey: string): [number, number, number] {
  const [year = NaN, month = NaN, day = NaN] = dateKey.split("-").map(Number);
  return [year, month, day];
}

/** A date key as the UTC midnight Date (for calendar arithmetic and zone-free formatting). */
function dateOf(dateKey: string): Date {
  const [year, month, day] = dateParts(dateKey);
  return new Date(Date.UTC(year, month - 1, day));
}

/** The date `days` after a date key (calendar arithmetic, no time zone involved). */
export function addDays(dateKey: string, days: number): string {
  const [year, month, day] = dateParts(dateKey);
  const shifted = new Date(Date.UTC(year, month - 1, day + days));
  return `${shifted.getUTCFullYear()}-${pad(shifted.getUTCMonth() + 1)}-${pad(shifted.getUTCDate())}`;
}

/**
 * The instant the date begins in the zone (its first wall-clock moment: midnight, or the end of a daylight-saving
 * gap in the few zones that skip midnight).
 */
export function startOfLocalDay(dateKey: string, timeZone: string): Date {
  const [year, month, day] = dateParts(dateKey);
  const wallMidnight = Date.UTC(year, month - 1, day);
  let instant = wallMidnight - zoneOffsetMs(new Date(wallMidnight), timeZone);
  // The offset at the guess can differ from the offset at midnight when a change happens in between.
  instant = wallMidnight - zoneOffsetMs(new Date(instant), timeZone);
  if (localDateKey(new Date(instant), timeZone) !== dateKey) {
    // Midnight does not exist that day: the day starts when the clocks jump.
    instant += 60 * 60 * 1000;
  }
  return new Date(instant);
}

export interface BookingWeek {
  /** 0 is the week starting today. */
  index: number;
  /** The seven dates of the week, first to last. */
  days: string[];
  /** Where the slot search starts and ends (the first day's start, the day after the last day's start). */
  start: Date;
  end: Date;
}

/** Week `index` of the booking calendar: seven days from today (index 0), or from today + 7·index. */
export function bookingWeek(now: Date, index: number, timeZone: string): BookingWeek {
  const first = addDays(localDateKey(now, timeZone), 7 * index);
  const days = Array.from({ length: 7 }, (_, i) => addDays(first, i));
  return {
    index,
    days,
    start: startOfLocalDay(first, timeZone),
    end: startOfLocalDay(addDays(first, 7), timeZone),
  };
}

/** How many weeks the navigator offers: enough to reach the end of the type's booking horizon. */
export function weeksWithinHorizon(horizonDays: number): number {
  return Math.max(1, Math.ceil(horizonDays / 7));
}

// --- slots --------------------------------------------------------------------------------------------------------

export interface SlotDay {
  /** "2031-03-03" on the viewer's wall clock. */
  date: string;
  /** Free starts that day, one per start time (the first practitioner listed free then), in time order. */
  slots: FreeSlot[];
}

/**
 * Free slots grouped by the viewer's calendar day, for every day of `days` (empty days included, so the week shows
 * whole). When several practitioners are free at the same instant, the first one listed is kept: a patient chooses
 * a time, and narrows to one practitioner with the filter when that matters to them.
 */
export function groupSlotsByDay(slots: readonly FreeSlot[], days: readonly string[], timeZone: string): SlotDay[] {
  const byDay = new Map<string, FreeSlot[]>(days.map((day) => [day, []]));
  const seen = new Set<number>();
  const ordered = [...slots].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  for (const slot of ordered) {
    const at = Date.parse(slot.start);
    if (seen.has(at)) continue;
    seen.add(at);
    const day = byDay.get(localDateKey(new Date(at), timeZone));
    day?.push(slot);
  }
  return days.map((date) => ({ date, slots: byDay.get(date) ?? [] }));
}

/** "09:30" on the viewer's clock. */
export function formatClockTime(iso: string, timeZone: string, locale?: string): string {
  return new Date(iso).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit", timeZone });
}

/** "Monday 3 March" (the locale's order). */
export function formatDayLabel(dateKey: string, locale?: string): string {
  return dateOf(dateKey).toLocaleDateString(locale, {
    weekday: "long",
    day: "numeric",
    month: "long",
    timeZone: "UTC",
  });
}

/** "Mon 3" for the day tabs. */
export function formatShortDay(dateKey: string, locale?: string): string {
  return dateOf(dateKey).toLocaleDateString(locale, {
    weekday: "short",
    day: "numeric",
    timeZone: "UTC",
  });
}

/** "3 Mar – 9 Mar 2031" for the week navigator. */
export function formatWeekRange(week: BookingWeek, locale?: string): string {
  const first = dateOf(week.days[0] ?? "").toLocaleDateString(locale, {
    day: "numeric",
    month: "short",
    timeZone: "UTC",
  });
  const last = dateOf(week.days[week.days.length - 1] ?? "").toLocaleDateString(locale, {
    day: "numeric",
    month: "short",
    year: "numeric",
    timeZone: "UTC",
  });
  return `${first} – ${last}`;
}

/** "Tuesday 4 March 2031, 15:00" on the viewer's clock. */
export function formatWhen(iso: string, timeZone: string, locale?: string): string {
  return new Date(iso).toLocaleString(locale, {
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZone,
  });
}

// --- the hold's countdown ----------------------------------------------------------------------------------------

export interface Countdown {
  /** Whole seconds left, never negative. */
  seconds: number;
  /** "4:05" */
  label: string;
  expired: boolean;
}

/** Time left until `expiresAt`, rounded down to the second (so "0:00" means it is over). */
export function countdown(expiresAt: string, nowMs: number): Countdown {
  const left = Date.parse(expiresAt) - nowMs;
  const seconds = Number.isNaN(left) ? 0 : Math.max(0, Math.floor(left / 1000));
  return {
    seconds,
    label: `${Math.floor(seconds / 60)}:${pad(seconds % 60)}`,
    expired: seconds <= 0,
  };
}

// --- appointments ---------------------------------------------------------------------------------------------

export const STATUS_LABELS: Record<AppointmentStatus, string> = {
  proposed: "Proposed",
  pending: "Pending",
  booked: "Booked",
  arrived: "Arrived",
  "checked-in": "Checked in",
  fulfilled: "Attended",
  cancelled: "Cancelled",
  noshow: "Missed",
  "entered-in-error": "Removed",
};

/** The badge modifier of a status: green for what is on, red for what did not happen, plain for the rest. */
export function statusBadgeClass(status: AppointmentStatus): string {
  if (status === "booked" || status === "arrived" || status === "checked-in") return "badge--ok";
  if (status === "cancelled" || status === "noshow") return "badge--error";
  if (status === "pending" || status === "proposed") return "badge--warning";
  return "";
}

export interface SplitAppointments {
  /** Not over yet, soonest first (cancelled ones stay here, marked, until their time has passed). */
  upcoming: Appointment[];
  /** Over, most recent first. */
  past: Appointment[];
}

/** Upcoming and past appointments; ones entered in error are not the patient's appointments at all. */
export function splitAppointments(appointments: readonly Appointment[], nowMs: number): SplitAppointments {
  const shown = appointments.filter((a) => a.status !== "entered-in-error");
  const upcoming = shown
    .filter((a) => Date.parse(a.end) > nowMs && a.status !== "fulfilled" && a.status !== "noshow")
    .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  const upcomingIds = new Set(upcoming.map((a) => a.id));
  const past = shown.filter((a) => !upcomingIds.has(a.id)).sort((a, b) => Date.parse(b.start) - Date.parse(a.start));
  return { upcoming, past };
}

/** The next appointment that is still on (booked or under way), or null. */
export function nextAppointment(appointments: readonly Appointment[], nowMs: number): Appointment | null {
  const on = new Set<AppointmentStatus>(["booked", "arrived", "checked-in", "pending", "proposed"]);
  return splitAppointments(appointments, nowMs).upcoming.find((a) => on.has(a.status)) ?? null;
}

/**
 * Whether the patient may still cancel or move the appointment online: it is booked and starts later than the
 * type's cancellation window (the API refuses with `too_late` otherwise). `windowMinutes` null: not known, allow.
 */
export function changeableOnline(appointment: Appointment, windowMinutes: number | null, nowMs: number): boolean {
  if (appointment.status !== "booked") return false;
  if (windowMinutes === null) return Date.parse(appointment.start) > nowMs;
  return Date.parse(appointment.start) - nowMs >= windowMinutes * 60_000;
}

/** An offer the patient can still accept: open and not past its expiry. */
export function offerOpen(offer: WaitlistOffer, nowMs: number): boolean {
  return offer.status === "open" && Date.parse(offer.expires_at) > nowMs;
}

// --- errors ---------------------------------------------------------------------------------------------------

/** What the screen does after an error, besides saying it. */
export type Recovery =
  /** Fetch the free slots again (the chosen time is gone). */
  | "refresh-slots"
  /** The hold is gone: back to choosing a time, with fresh slots. */
  | "choose-again"
  /** Fetch the appointments or offers again (they changed elsewhere). */
  | "reload"
  /** Nothing to do but read the message. */
  | "none";

export interface BookingProblem {
  message: string;
  recovery: Recovery;
}

/** What the patient was doing when the error came back. */
export type BookingStep = "slots" | "hold" | "confirm" | "cancel" | "reschedule" | "waitlist" | "offer" | "load";

const CALL_THE_CLINIC = "It is too close to the appointment to change it online. Please call the clinic.";

/** A patient's wording of an API error in the step where it happened, and what the screen does next. */
export function bookingProblem(error: unknown, step: BookingStep): BookingProblem {
  if (!(error instanceof ApiError)) {
    return { message: "Something went wrong. Please try again.", recovery: "none" };
  }
  switch (error.code) {
    case "slot_unavailable":
      return {
        message: "Sorry, that time has just been taken by someone else. The free times below are up to date.",
        recovery: "refresh-slots",
      };
    case "hold_expired":
      return {
        message: "We could only keep that time for you for a few minutes, and it ran out. Please choose a time again.",
        recovery: "choose-again",
      };
    case "hold_not_active":
      return { message: "That time is no longer held for you. Please choose a time again.", recovery: "choose-again" };
    case "too_late":
      if (step === "cancel" || step === "reschedule") return { message: CALL_THE_CLINIC, recovery: "reload" };
      return {
        message: "That time is too soon to book online. Please choose a later time, or call the clinic.",
        recovery: "refresh-slots",
      };
    case "booking_in_past":
      return { message: "That time has already passed. Please choose another time.", recovery: "refresh-slots" };
    case "beyond_booking_horizon":
      return { message: "That time is too far ahead to book yet. Please choose an earlier time.", recovery: "none" };
    case "outside_availability":
    case "missing_resource":
      return {
        message: "That time is no longer available. The free times below are up to date.",
        recovery: "refresh-slots",
      };
    case "offer_unavailable":
      return {
        message: "Sorry, someone else took that time first, or the offer has ended.",
        recovery: "reload",
      };
    case "version_conflict":
      return {
        message: "This appointment was changed by the clinic while you were looking at it. Please check it and try again.",
        recovery: "reload",
      };
    case "invalid_transition":
      return { message: "This appointment can no longer be changed online. Please call the clinic.", recovery: "reload" };
    case "not_found":
      return step === "offer"
        ? { message: "That offer is no longer available.", recovery: "reload" }
        : { message: "We could not find that appointment. It may have been removed.", recovery: "reload" };
    case "no_patient_record":
    case "permission_denied":
      return {
        message: error.detail || "You cannot do this online. Please call the clinic.",
        recovery: "none",
      };
    case "invalid": {
      const first = Object.values(error.fields).flat()[0];
      return { message: first ?? (error.detail || "Please check what you entered."), recovery: "none" };
    }
    case NETWORK_ERROR:
      return { message: error.detail, recovery: "none" };
    default:
      return {
        message:
          error.status >= 500 || error.status === 0
            ? "The clinic's system had a problem. Please try again in a moment."
            : error.detail || "Something went wrong. Please try again.",
        recovery: "none",
      };
  }
}
