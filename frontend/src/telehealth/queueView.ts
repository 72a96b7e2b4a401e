/** Reading the virtual clinic's queue answer: its notice, presence and current visit come in a few shapes. */
import type { ClinicianNotice, PresenceStatus, QueueView } from "../api/types";

export function noticeTextOf(notice: ClinicianNotice | string | null): string {
  if (!notice) return "";
  return typeof notice === "string" ? notice : notice.body;
}

export function presenceOf(presence: QueueView["presence"]): PresenceStatus | null {
  if (!presence) return null;
  const status = typeof presence === "string" ? presence : presence.status;
  return status === "available" || status === "away" ? status : null;
}

export function currentVisitOf(current: QueueView["current_visit"]): { visit_id: string; patient_name?: string } | null {
  if (!current) return null;
  return typeof current === "string" ? { visit_id: current } : current;
}
