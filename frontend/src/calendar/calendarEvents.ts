/**
 * What the scheduler calendar draws: appointments as events, a resource's working hours and blocked time as
 * background shading. Pure functions of API data, so they are unit-tested without FullCalendar.
 *
 * Instants stay ISO 8601 strings with an offset all the way to FullCalendar, which places them in whichever zone
 * the calendar shows (the viewer's or the clinic's); wall-clock hours are only ever read in the schedule's zone.
 */
import type { EventInput } from "@fullcalendar/core";
import { DateTime } from "luxon";

import type { Appointment, AppointmentStatus, AppointmentType, ResourceKind, Schedule } from "../api/types";

export interface StatusStyle {
  label: string;
  /** An active appointment is drawn in colour and may be moved (when booked); the others are greyed. */
  active: boolean;
}

/** Every FHIR appointment status the API can return, with its label; the colours live in the page's CSS. */
export const STATUS_STYLES: Record<AppointmentStatus, StatusStyle> = {
  proposed: { label: "Proposed", active: true },
  pending: { label: "Pending", active: true },
  booked: { label: "Booked", active: true },
  arrived: { label: "Arrived", active: true },
  "checked-in": { label: "Checked in", active: true },
  fulfilled: { label: "Fulfilled", active: true },
  cancelled: { label: "Cancelled", active: false },
  noshow: { label: "No-show", active: false },
  "entered-in-error": { label: "Entered in error", active: false },
};

export const RESOURCE_KIND_LABELS: Record<ResourceKind, string> = {
  practitioner: "Practitioners",
  room: "Rooms",
  equipment: "Equipment",
  interpreter: "Interpreters",
};

/** The calendar event's extra data: the appointment as the API sent it. */
export interface AppointmentEventProps {
  kind: "appointment";
  appointment: Appointment;
}

export interface BlockEventProps {
  kind: "block";
  exceptionId: number;
  reason: string;
}

/** How a patient is named on the calendar: the API leaves the name empty for viewers who may not see it. */
export function patientLabel(appointment: Pick<Appointment, "patient_display_name" | "patient_id">): string {
  return appointment.patient_display_name || `Patient #${appointment.patient_id}`;
}

/** Only a booked appointment can be moved (the API refuses the others), so only those are draggable. */
export function isMovable(status: AppointmentStatus): boolean {
  return status === "booked";
}

/**
 * One appointment as a calendar event, or null when it is not to be shown: cancelled, no-show and
 * entered-in-error appointments are hidden unless `showInactive`, and then greyed and fixed in place.
 */
export function appointmentToEvent(appointment: Appointment, showInactive = false): EventInput | null {
  const style = STATUS_STYLES[appointment.status] ?? { label: appointment.status, active: false };
  if (!style.active && !showInactive) return null;
  const extendedProps: AppointmentEventProps = { kind: "appointment", appointment };
  return {
    id: String(appointment.id),
    title: `${patientLabel(appointment)} · ${appointment.appointment_type_name}`,
    start: appointment.start,
    end: appointment.end,
    startEditable: isMovable(appointment.status),
    durationEditable: false,
    classNames: ["calendar-event", `calendar-status--${appointment.status}`, ...(style.active ? [] : ["calendar-event--inactive"])],
    extendedProps,
  };
}

export function appointmentsToEvents(appointments: readonly Appointment[], showInactive = false): EventInput[] {
  return appointments.flatMap((appointment) => {
    const event = appointmentToEvent(appointment, showInactive);
    return event ? [event] : [];
  });
}

// ---------------------------------------------------------------------------------------------------- hours

/** Half-open [start, end) in epoch milliseconds. */
export type Interval = readonly [number, number];

/** A weekly rule as the API sends it: weekday 0 = Monday … 6 = Sunday, wall-clock "HH:MM" in the schedule's zone. */
export interface WeeklyRule {
  weekday: number;
  start_time: string;
  end_time: string;
  effective_from: string;
  effective_until?: string | null;
}

export interface DatedException {
  id: number;
  kind: "unavailable" | "available";
  start: string;
  end: string;
  reason?: string;
}

/** Sorted, with touching or overlapping intervals joined. */
export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = [...intervals].filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = out.at(-1);
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/** The parts of [from, to) that none of `intervals` covers. */
export function complement(intervals: readonly Interval[], from: number, to: number): Interval[] {
  const out: Interval[] = [];
  let cursor = from;
  for (const [start, end] of mergeIntervals(intervals)) {
    if (end <= cursor) continue;
    if (start >= to) break;
    if (start > cursor) out.push([cursor, start]);
    cursor = Math.max(cursor, end);
  }
  if (cursor < to) out.push([cursor, to]);
  return out;
}

/**
 * The weekly rules as instants overlapping [from, to): each rule's wall-clock hours are read on its own date in
 * `timeZone`, so 09:00–17:00 stays 09:00–17:00 local across a daylight-saving change (a time inside a DST gap
 * moves forward, as the server does). Effective dates are inclusive from, exclusive until.
 */
export function expandWeeklyRules(rules: readonly WeeklyRule[], timeZone: string, from: number, to: number): Interval[] {
  const out: Interval[] = [];
  let day = DateTime.fromMillis(from, { zone: timeZone }).startOf("day").minus({ days: 1 });
  const last = DateTime.fromMillis(to, { zone: timeZone }).startOf("day").plus({ days: 1 });
  if (!day.isValid || !last.isValid) return out;
  while (day <= last) {
    const date = day.toISODate() ?? "";
    const weekday = day.weekday - 1; // luxon: 1 = Monday … 7 = Sunday
    for (const rule of rules) {
      if (rule.weekday !== weekday) continue;
      if (date < rule.effective_from || (rule.effective_until && date >= rule.effective_until)) continue;
      const start = DateTime.fromISO(`${date}T${rule.start_time}`, { zone: timeZone }).toMillis();
      const end = DateTime.fromISO(`${date}T${rule.end_time}`, { zone: timeZone }).toMillis();
      if (Number.isFinite(start) && Number.isFinite(end) && start < end && start < to && end > from) out.push([start, end]);
    }
    day = day.plus({ days: 1 });
  }
  return mergeIntervals(out);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Background events for one resource in [from, to): the time outside its working hours (weekly rules plus extra
 * sessions) shaded as closed, and each blocked period (an `unavailable` exception) as a labelled block.
 */
export function availabilityToEvents(
  availability: { time_zone: string; rules: readonly WeeklyRule[]; exceptions: readonly DatedException[] },
  from: number,
  to: number,
): EventInput[] {
  const extra = availability.exceptions
    .filter((e) => e.kind === "available")
    .map((e): Interval => [Date.parse(e.start), Date.parse(e.end)]);
  const working = mergeIntervals([...expandWeeklyRules(availability.rules, availability.time_zone, from, to), ...extra]);
  const closed: EventInput[] = complement(working, from, to).map(([start, end]) => ({
    start: iso(start),
    end: iso(end),
    display: "background",
    classNames: ["calendar-closed"],
  }));
  const blocks: EventInput[] = blocksIn(availability.exceptions, from, to).map((block) => {
    const extendedProps: BlockEventProps = { kind: "block", exceptionId: block.id, reason: block.reason ?? "" };
    return {
      id: `block-${block.id}`,
      title: block.reason ? `Blocked: ${block.reason}` : "Blocked",
      start: block.start,
      end: block.end,
      display: "background",
      classNames: ["calendar-block"],
      extendedProps,
    };
  });
  return [...closed, ...blocks];
}

/** The blocked periods (`unavailable` exceptions) overlapping [from, to), earliest first. */
export function blocksIn(exceptions: readonly DatedException[], from: number, to: number): DatedException[] {
  return exceptions
    .filter((e) => e.kind === "unavailable" && Date.parse(e.start) < to && Date.parse(e.end) > from)
    .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
}

// ---------------------------------------------------------------------------------------------------- choices

export interface Clinic {
  id: number;
  name: string;
  timeZone: string;
}

/** The clinics (locations) that have bookable resources, by name. */
export function clinicsOf(schedules: readonly Schedule[]): Clinic[] {
  const byId = new Map<number, Clinic>();
  for (const schedule of schedules) {
    if (!byId.has(schedule.location_id)) {
      byId.set(schedule.location_id, { id: schedule.location_id, name: schedule.location_name, timeZone: schedule.time_zone });
    }
  }
  return [...byId.values()].sort((a, b) => a.name.localeCompare(b.name));
}

const KIND_ORDER: readonly ResourceKind[] = ["practitioner", "room", "equipment", "interpreter"];

/** A clinic's resources grouped by kind (practitioners first), each group by name; empty groups left out. */
export function resourceGroups(
  schedules: readonly Schedule[],
  locationId: number | null,
): { kind: ResourceKind; label: string; schedules: Schedule[] }[] {
  return KIND_ORDER.map((kind) => ({
    kind,
    label: RESOURCE_KIND_LABELS[kind],
    schedules: schedules
      .filter((s) => s.kind === kind && (locationId === null || s.location_id === locationId))
      .sort((a, b) => a.name.localeCompare(b.name)),
  })).filter((group) => group.schedules.length > 0);
}

/**
 * The appointment types that can be booked on a resource: every type for a practitioner; for a room, equipment
 * or an interpreter only the types that need (or may use) that kind and category.
 */
export function typesForResource(types: readonly AppointmentType[], resource: Schedule | null): AppointmentType[] {
  if (!resource || resource.kind === "practitioner") return [...types];
  return types.filter((type) =>
    type.requirements.some((r) => r.kind === resource.kind && (!r.category || r.category === resource.category)),
  );
}

export type StatusAction = "arrived" | "checked-in" | "noshow";

export const STATUS_ACTION_LABELS: Record<StatusAction, string> = {
  arrived: "Mark arrived",
  "checked-in": "Mark checked in",
  noshow: "Mark no-show",
};

/**
 * What the side panel offers for an appointment, following the API's transition table; a no-show only once the
 * start has passed (before it the patient cannot have failed to come).
 */
export function actionsFor(
  appointment: Pick<Appointment, "status" | "start">,
  now: number = Date.now(),
): { statuses: StatusAction[]; cancel: boolean; move: boolean } {
  switch (appointment.status) {
    case "booked":
      return {
        statuses: Date.parse(appointment.start) <= now ? ["arrived", "checked-in", "noshow"] : ["arrived", "checked-in"],
        cancel: true,
        move: true,
      };
    case "arrived":
      return { statuses: ["checked-in"], cancel: true, move: false };
    case "proposed":
    case "pending":
    case "checked-in":
      return { statuses: [], cancel: true, move: false };
    default:
      return { statuses: [], cancel: false, move: false };
  }
}

// ---------------------------------------------------------------------------------------------------- display

/** The viewer's own IANA time zone (the browser's). */
export function viewerTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** "Wed, Mar 5, 2031, 10:30 AM" of an instant, read in `timeZone` ("local": the viewer's). */
export function formatInZone(isoInstant: string, timeZone: string, locale?: string): string {
  const date = new Date(isoInstant);
  if (Number.isNaN(date.getTime())) return isoInstant;
  const zone = timeZone === "local" ? {} : { timeZone };
  const day = date.toLocaleDateString(locale, { weekday: "short", day: "numeric", month: "short", year: "numeric", ...zone });
  return `${day}, ${formatTimeInZone(isoInstant, timeZone, locale)}`;
}

/** "10:30 AM" (or "10:30", as the locale writes times) of an instant in `timeZone`. */
export function formatTimeInZone(isoInstant: string, timeZone: string, locale?: string): string {
  const date = new Date(isoInstant);
  if (Number.isNaN(date.getTime())) return isoInstant;
  return date.toLocaleTimeString(locale, { timeStyle: "short", ...(timeZone === "local" ? {} : { timeZone }) });
}

/** "Wed, Mar 5, 2031, 10:30 AM – 11:00 AM": the end's date is left out when it is the same day. */
export function formatSpan(startIso: string, endIso: string, timeZone: string, locale?: string): string {
  const sameDay =
    DateTime.fromISO(startIso, { zone: timeZone === "local" ? "local" : timeZone }).toISODate() ===
    DateTime.fromISO(endIso, { zone: timeZone === "local" ? "local" : timeZone }).toISODate();
  return `${formatInZone(startIso, timeZone, locale)} – ${
    sameDay ? formatTimeInZone(endIso, timeZone, locale) : formatInZone(endIso, timeZone, locale)
  }`;
}

// ---------------------------------------------------------------------------------------------------- live

/** What the calendar shows now, to decide whether a pushed change concerns it. */
export interface VisibleWindow {
  from: number;
  to: number;
  /** Ids of the appointments on screen (a move away from the window concerns the view too). */
  appointmentIds: ReadonlySet<number>;
  locationId: number | null;
  /** Set when the view is one practitioner's schedule. */
  practitionerId: number | null;
}

/**
 * Whether an `appointment.changed` push (ids, times, status — no names) may change what is on screen: it is
 * about an appointment shown, or it now lies in the window at the clinic (and practitioner) shown. Rooms and
 * other resources are not in the push, so for those views any change in the window counts.
 */
export function changeConcernsView(data: Record<string, unknown>, view: VisibleWindow): boolean {
  if (typeof data.id === "number" && view.appointmentIds.has(data.id)) return true;
  const start = typeof data.start === "string" ? Date.parse(data.start) : Number.NaN;
  const end = typeof data.end === "string" ? Date.parse(data.end) : Number.NaN;
  if (Number.isFinite(start) && Number.isFinite(end) && (end <= view.from || start >= view.to)) return false;
  if (view.locationId !== null && typeof data.location_id === "number" && data.location_id !== view.locationId) return false;
  if (view.practitionerId !== null && typeof data.practitioner_id === "number" && data.practitioner_id !== view.practitionerId) {
    return false;
  }
  return true;
}
