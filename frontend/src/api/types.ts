/**
 * The one place that knows the generated schema's component names.
 *
 * The backend's drf-spectacular schema may name things differently; when it lands,
 * fix the names here and nothing else in the app has to change.
 */
import type { components } from "./schema";

type Schemas = components["schemas"];

export type Me = Schemas["Me"];
export type Health = Schemas["Health"];
export type UserRow = Schemas["UserRow"];
export type PaginatedUserRowList = Schemas["PaginatedUserRowList"];
export type AuditEventRow = Schemas["AuditEventRow"];
export type PaginatedAuditEventRowList = Schemas["PaginatedAuditEventRowList"];
export type StreamEventPage = Schemas["StreamEventPage"];
export type StreamEvent = Schemas["StreamEvent"];
export type ApiErrorBody = Schemas["ApiError"];
export type LoginRequest = Schemas["LoginRequest"];

// Derived from the objects above so that enum and nested schema names do not matter.
export type Role = Me["primary_role"];
export type Organization = NonNullable<Me["organization"]>;
export type Location = Me["locations"][number];
export type ServiceCheck = Health["checks"]["database"];
export type CeleryCheck = Health["checks"]["celery"];
export type AuditAction = AuditEventRow["action"];
export type AuditOutcome = AuditEventRow["outcome"];

// Patients (ehr): search, registration (409 duplicate warning), record with ETag, If-Match changes (412), history.
export type PatientSummary = Schemas["PatientSummary"];
export type PatientSearchResult = Schemas["PatientSearchResult"];
export type PatientDetail = Schemas["PatientDetail"];
export type PatientWriteRequest = Schemas["PatientWriteRequest"];
/** PATCH body: the changed fields and the reason (required by the API, though the "Patched" schema marks all optional). */
export type PatientUpdateRequest = Schemas["PatchedPatientUpdateRequest"] & { reason: string };
export type PatientHistory = Schemas["PatientHistory"];
export type PatientHistoryEntry = Schemas["PatientHistoryEntry"];
export type FieldChange = Schemas["FieldChange"];
export type DuplicateCandidate = Schemas["DuplicateCandidate"];
/** Merge a duplicate into the surviving record (`POST /api/v1/ehr/patients/{id}/merge/`). */
export type PatientMergeRequest = Schemas["PatientMergeRequest"];
export type DuplicateSuspectedError = Schemas["DuplicateSuspectedError"];
export type VersionConflictError = Schemas["VersionConflictError"];
export type AdministrativeGender = PatientDetail["sex"];
export type PatientStatus = PatientDetail["status"];

/** One line of the patient's own "who opened my record" log, in plain language (`GET /api/v1/ehr/me/access-log/`). */
export type AccessLogRow = Schemas["AccessLogEntry"];
export type PaginatedAccessLogRowList = Schemas["PaginatedAccessLogEntryList"];

// Clinical record (ehr): chart summary, encounters, SOAP notes (draft autosave with If-Match), problems, allergies,
// medications, observations, each with its version history.
export type ChartSummary = Schemas["ChartSummary"];
export type Condition = Schemas["Condition"];
export type ConditionCreateRequest = Schemas["ConditionCreateRequest"];
export type Allergy = Schemas["Allergy"];
export type AllergyCreateRequest = Schemas["AllergyCreateRequest"];
export type Criticality = Schemas["CriticalityEnum"];
export type Medication = Schemas["Medication"];
export type MedicationCreateRequest = Schemas["MedicationCreateRequest"];
export type Observation = Schemas["Observation"];
export type ObservationCreateRequest = Schemas["ObservationCreateRequest"];
export type Encounter = Schemas["Encounter"];
export type EncounterCreateRequest = Schemas["EncounterCreateRequest"];
export type EncounterList = Schemas["EncounterList"];
export type Modality = Encounter["modality"];
export type Note = Schemas["Note"];
export type NoteList = Schemas["NoteList"];
export type NoteSections = Schemas["NoteSections"];
export type Addendum = Schemas["Addendum"];
export type DraftConflictError = Schemas["DraftConflictError"];
export type RecordHistory = Schemas["RecordHistory"];
export type RecordHistoryEntry = Schemas["RecordHistoryEntry"];

// Documents (ehr): a patient's uploaded files; the bytes come from the content URL.
export type Document = Schemas["Document"];
export type DocumentList = Schemas["DocumentList"];
export type DocumentType = Document["type"];

// Break-the-glass (emergency access) and its admin review.
export type BreakGlassGrant = Schemas["BreakGlassGrant"];
export type PaginatedBreakGlassGrantList = Schemas["PaginatedBreakGlassGrantList"];
export type BreakGlassReviewStatus = Schemas["BreakGlassReviewStatusEnum"];
export type BreakGlassOutcome = Schemas["BreakGlassOutcomeEnum"];

// Scheduling: appointment types, bookable resources, free slots, holds, appointments, the waitlist.
export type AppointmentType = Schemas["AppointmentType"];
export type AppointmentTypeList = Schemas["AppointmentTypeList"];
export type Schedule = Schemas["Schedule"];
export type ScheduleList = Schemas["ScheduleList"];
export type ResourceKind = Schemas["ResourceKindEnum"];
export type FreeSlot = Schemas["FreeSlot"];
export type FreeSlotList = Schemas["FreeSlotList"];
export type Hold = Schemas["Hold"];
export type HoldRequest = Schemas["HoldRequestRequest"];
export type Appointment = Schemas["Appointment"];
export type AppointmentList = Schemas["AppointmentList"];
export type AppointmentStatus = Schemas["AppointmentStatusEnum"];
export type AppointmentModality = Schemas["AppointmentModalityEnum"];
export type RescheduleRequest = Schemas["RescheduleRequest"];
export type WaitlistJoinRequest = Schemas["WaitlistJoinRequest"];
export type WaitlistEntry = Schemas["WaitlistEntry"];
export type WaitlistOffer = Schemas["WaitlistOffer"];
export type MyWaitlist = Schemas["MyWaitlist"];

// Scheduling for staff (the calendar): weekly hours and dated exceptions of a resource, direct booking.
export type Availability = Schemas["Availability"];
export type AvailabilityRuleRequest = Schemas["AvailabilityRuleRequest"];
export type AvailabilityException = Schemas["AvailabilityException"];
export type AvailabilityExceptionRequest = Schemas["AvailabilityExceptionRequest"];
export type BookingRequest = Schemas["BookingRequest"];
/** A recurring series (`series/`): the rule, its zone and every occurrence with its own status. */
export type Series = Schemas["Series"];
export type SeriesBookRequest = Schemas["SeriesBookRequest"];
export type SeriesCancelRequest = Schemas["SeriesCancelRequest"];

// Telehealth (issue 5, /api/v1/telehealth/): check-in, device check, the waiting room, the clinician's queue, visits,
// chat, ICE servers and call quality. Written by hand from the telehealth contract until the generated schema has
// these paths; then each becomes `Schemas["…"]` like the rest, and nothing else in the app changes.
export type VisitStatus = "waiting" | "in-progress" | "finished" | "left";
export type VisitRole = "patient" | "practitioner" | "staff";
export type DeviceCheckOutcome = "pass" | "fail" | "skipped";
export type DoctorStatus = "in-visit" | "available" | "away" | "offline";
export type PresenceStatus = "available" | "away";

export interface DeviceCheckResult {
  camera: DeviceCheckOutcome;
  microphone: DeviceCheckOutcome;
  speaker: DeviceCheckOutcome;
  turn: DeviceCheckOutcome;
}

export interface IntakeQuestion {
  id: string;
  text: string;
  kind: "text" | "yesno";
  required: boolean;
}

export interface IntakeAnswer {
  question: string;
  answer: string;
}

export interface CheckInInfo {
  appointment: { id: number; start: string; end: string; practitioner_name: string; type_name: string };
  consent_text: string;
  questions: IntakeQuestion[];
  visit_id: string | null;
  opens_at: string;
  closes_at: string;
  can_check_in: boolean;
}

export interface CheckInRequest {
  consent: boolean;
  answers: Record<string, string>;
}

export interface VisitDetail {
  id: string;
  appointment_id: number;
  status: VisitStatus;
  practitioner: { id: number; name: string };
  patient_name: string;
  checked_in_at: string | null;
  admitted_at: string | null;
  ended_at: string | null;
  duration_seconds: number | null;
  ready: boolean;
  device_check: Partial<DeviceCheckResult>;
  summary: string;
  version: number;
  role: VisitRole;
  /** Staff only. */
  encounter_id?: number | null;
  /** Staff only. */
  patient_id?: number | null;
  /** Staff only. */
  intake?: IntakeAnswer[];
}

export interface WaitingInfo {
  visit_id: string;
  status: VisitStatus;
  position: number | null;
  ahead: number | null;
  estimated_wait_minutes: number | null;
  doctor_name: string;
  doctor_status: DoctorStatus;
  notice: string | null;
  ready: boolean;
}

export interface VisitMessage {
  id: number;
  kind: "chat" | "notice";
  body: string;
  sender_name: string;
  sender_role: string;
  created_at: string;
}

export interface VisitMessageList {
  results: VisitMessage[];
}

export interface QueueEntry {
  visit_id: string;
  appointment_id: number;
  patient_name: string;
  appointment_start: string;
  checked_in_at: string;
  waiting_seconds: number;
  ready: boolean;
  device_check: Partial<DeviceCheckResult>;
  intake: IntakeAnswer[];
  connected: boolean;
  position: number;
  practitioner_name: string;
}

export interface ClinicianNotice {
  body: string;
  created_at: string;
}

export interface QueueView {
  mine: QueueEntry[];
  pool: QueueEntry[];
  notice: ClinicianNotice | string | null;
  presence: PresenceStatus | { status: PresenceStatus; last_seen_at?: string | null } | null;
  current_visit: { visit_id: string; patient_name?: string } | string | null;
}

export interface Colleague {
  id: number;
  name: string;
}

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface IceConfig {
  iceServers: IceServer[];
  iceTransportPolicy: "all" | "relay";
  expiresAt: string;
  ttlSeconds: number;
}

/** One call-quality sample, as the browsers report it every 5 s (POST visits/{id}/quality/). */
export interface CallQualityStats {
  rtt_ms: number | null;
  jitter_ms: number | null;
  packet_loss_pct: number | null;
  bitrate_in_kbps: number | null;
  bitrate_out_kbps: number | null;
  frames_decoded: number;
  frames_per_second: number | null;
  frame_width: number | null;
  frame_height: number | null;
  local_candidate_type: string | null;
  remote_candidate_type: string | null;
  relay: boolean;
  audio_only: boolean;
}

export interface QualityParticipant {
  role: string;
  user_name?: string;
  created_at: string;
  stats: Partial<CallQualityStats>;
}

export interface QualityVisitRow {
  visit_id: string;
  status?: VisitStatus;
  practitioner_name?: string;
  admitted_at?: string | null;
  ended_at?: string | null;
  duration_seconds?: number | null;
  participants: QualityParticipant[];
}

export interface QualityList {
  results: QualityVisitRow[];
}
