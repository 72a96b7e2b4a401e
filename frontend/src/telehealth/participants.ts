/** Words for the participants of a multi-party visit (tiles, the roster, the invite dialog). */
import type { GuestRoleName } from "../api/types";

export const ROLE_LABELS: Record<string, string> = {
  practitioner: "Doctor",
  patient: "Patient",
  interpreter: "Interpreter",
  family: "Family member",
  clinician: "Clinician",
};

export const GUEST_ROLES: { value: GuestRoleName; label: string }[] = [
  { value: "interpreter", label: "Interpreter" },
  { value: "family", label: "Family member" },
  { value: "clinician", label: "Clinician" },
];

export function roleLabel(role: string): string {
  return ROLE_LABELS[role] ?? role;
}

export function isGuestId(participantId: string): boolean {
  return /^guest-[0-9a-f]{32}$/.test(participantId);
}
