/** Wording of the telehealth screens: durations, doctor status, waits, device-check outcomes. */
import type { DeviceCheckOutcome, DoctorStatus } from "../api/types";

/** 75 → "1:15", 3725 → "1:02:05". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

/** 1500 → "25 min", 40 → "less than a minute". */
export function formatWaiting(seconds: number): string {
  const minutes = Math.floor(Math.max(0, seconds) / 60);
  if (minutes < 1) return "less than a minute";
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function doctorStatusText(status: DoctorStatus, name: string): string {
  switch (status) {
    case "in-visit":
      return `${name} is with another patient.`;
    case "available":
      return `${name} is online.`;
    case "away":
      return `${name} is away for a moment.`;
    default:
      return `${name} is not online yet.`;
  }
}

export function queueText(position: number | null): string {
  if (position === null) return "You are not in the queue.";
  if (position === 1) return "You are number 1 in the queue: you are next.";
  return `You are number ${position} in the queue`;
}

export function waitText(minutes: number | null): string {
  if (minutes === null) return "";
  if (minutes <= 0) return "Estimated wait: about 0 minutes";
  return `Estimated wait: about ${minutes} ${minutes === 1 ? "minute" : "minutes"}`;
}

export const OUTCOME_LABELS: Record<DeviceCheckOutcome | "idle" | "checking", string> = {
  pass: "Working",
  fail: "Not working",
  skipped: "Not checked",
  idle: "Not checked yet",
  checking: "Checking…",
};
