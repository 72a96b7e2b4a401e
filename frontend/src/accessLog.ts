/**
 * Display of the patient's access log. The API already words each row for patients (role "Front desk", what
 * "viewed your record", purpose "Your care"); this only fills the gaps.
 */
import type { AccessLogRow } from "./api/types";

export const EMERGENCY_LABEL = "Emergency access";

/** Why the record was opened; the badge already says "Emergency access", so that purpose is not repeated. */
export function purposeText(row: AccessLogRow): string {
  const value = row.purpose.trim();
  if (row.emergency && value.toLowerCase() === EMERGENCY_LABEL.toLowerCase()) return "";
  return value || "Not recorded";
}

export function roleText(row: AccessLogRow): string {
  return row.role.trim() || "—";
}

export function whoText(row: AccessLogRow): string {
  return row.who.trim() || "Someone at your clinic";
}

export function whatText(row: AccessLogRow): string {
  return row.what.trim() || "opened your record";
}
