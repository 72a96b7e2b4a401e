/** Words for the participants of a multi-party visit (tiles, the roster, the invite dialog). */
import type { GuestRoleName } from "../api/types";
import type { RelayPhase } from "../composables/useRelayCall";

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

/** What a relay call's phase means to the person on the call. */
export function relayPhaseText(phase: RelayPhase): string {
  switch (phase) {
    case "starting":
      return "Starting your camera…";
    case "waiting":
      return "Waiting for the visit to continue…";
    case "connecting":
      return "Connecting to the video relay…";
    case "connected":
      return "Connected through the video relay";
    case "reconnecting":
      return "Connection to the video relay lost. Reconnecting…";
    case "ended":
      return "The visit has ended.";
    default:
      return "Stopped";
  }
}
