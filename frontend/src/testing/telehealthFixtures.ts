/** Telehealth API rows for unit tests, in the API's shapes (api/types.ts). */
import type { VisitDetail } from "../api/types";

export const TEST_VISIT_ID = "7f3c0000-0000-4000-8000-00000000000a";

export function makeVisit(overrides: Partial<VisitDetail> = {}): VisitDetail {
  return {
    id: TEST_VISIT_ID,
    appointment_id: 100,
    status: "waiting",
    practitioner: { id: 5, name: "Dr Meredith Grey" },
    patient_name: "Ada Abbott",
    checked_in_at: new Date().toISOString(),
    admitted_at: null,
    ended_at: null,
    duration_seconds: null,
    ready: false,
    device_check: {},
    summary: "",
    audio_only: false,
    version: 1,
    role: "patient",
    media_mode: "direct",
    ...overrides,
  };
}

