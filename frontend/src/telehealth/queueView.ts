/** Reading the virtual clinic's queue answer. */
import type { ClinicianNotice, PresenceStatus, QueueView } from "../api/types";

export function noticeTextOf(notice: ClinicianNotice | null | undefined): string {
  return notice?.body ?? "";
}

/** The clinician's chosen status (an "offline" presence means no heartbeat yet: they are about to be available). */
export function presenceOf(presence: QueueView["presence"]): PresenceStatus | null {
  const status = presence?.status;
  return status === "available" || status === "away" ? status : null;
}

/** An intake answer for people: yes/no answers are booleans in the API. */
export function answerText(answer: unknown): string {
  if (answer === true) return "Yes";
  if (answer === false) return "No";
  if (answer === null || answer === undefined || answer === "") return "—";
  return String(answer);
}
