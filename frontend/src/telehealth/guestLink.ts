/** What a guest is told when their invitation link cannot be used (POST invitations/consume/). */
import { ApiError } from "../api/client";

export function describeInvitationError(failure: unknown): string {
  if (!(failure instanceof ApiError)) return "The link could not be opened. Check your connection and try again.";
  if (failure.status === 0) return failure.detail;
  if (failure.code === "invitation_revoked") {
    return "This invitation was withdrawn by the clinic. Ask them if you should still join.";
  }
  if (failure.status === 410 || failure.code === "invitation_expired") {
    return "This invitation link has expired. Ask the clinic or the person who invited you for a new one.";
  }
  if (failure.status === 409 || failure.code === "invitation_used") {
    return "This invitation link has already been used. Each link works once, in one browser: ask for a new one.";
  }
  if (failure.status === 400 || failure.code === "invalid_token") {
    return "This invitation link is not valid. Check that you opened the whole link, or ask for a new one.";
  }
  if (failure.status === 404) return "You have no invitation to a visit in this browser. Open the link you were sent.";
  return "The invitation could not be opened. Try again in a moment.";
}
