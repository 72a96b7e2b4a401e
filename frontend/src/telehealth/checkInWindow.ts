/** When the patient's appointments page offers "Check in" for a video visit (the API decides in the end). */
import type { Appointment } from "../api/types";

/** Minutes before the start when online check-in opens (TELEHEALTH_CHECKIN_OPENS_MINUTES on the server). */
export const CHECK_IN_OPENS_MINUTES = 60;

const CHECKABLE = new Set<Appointment["status"]>(["booked", "arrived", "checked-in"]);

/** A video appointment, not cancelled or done, from an hour before its start until its end. */
export function checkInOpen(appointment: Appointment, now: number): boolean {
  if (appointment.modality !== "video" || !CHECKABLE.has(appointment.status)) return false;
  const opens = Date.parse(appointment.start) - CHECK_IN_OPENS_MINUTES * 60_000;
  return now >= opens && now < Date.parse(appointment.end);
}
