/** Typed calls to the backend, one function per endpoint the app uses. */
import { ApiError, api, request, type Versioned } from "./client";
import type {
  Allergy,
  AllergyCreateRequest,
  Appointment,
  AppointmentList,
  AppointmentTypeList,
  AuditAction,
  AuditOutcome,
  BreakGlassGrant,
  BreakGlassOutcome,
  BreakGlassReviewStatus,
  CallQualityStats,
  ChartSummary,
  CheckInInfo,
  CheckInLink,
  CheckInRequest,
  ColleagueList,
  ConsumedLink,
  Condition,
  ConditionCreateRequest,
  DeviceCheckResult,
  DocumentList,
  DuplicateCandidate,
  Encounter,
  EncounterCreateRequest,
  EncounterList,
  FreeSlotList,
  Health,
  Hold,
  HoldRequest,
  GuestAdmitted,
  GuestState,
  IceConfig,
  Invitation,
  InvitationList,
  InvitationRequest,
  LoginRequest,
  Me,
  Medication,
  MedicationCreateRequest,
  MessageFailurePage,
  Muted,
  MyWaitlist,
  Note,
  NoteList,
  NoteSections,
  NotificationHealth,
  NotificationPreference,
  NotificationPreferenceUpdateRequest,
  Observation,
  ObservationCreateRequest,
  PaginatedAccessLogRowList,
  PaginatedBreakGlassGrantList,
  PaginatedAuditEventRowList,
  PaginatedUserRowList,
  PatientDetail,
  PatientHistory,
  PatientMergeRequest,
  PatientSearchResult,
  PatientUpdateRequest,
  PatientWriteRequest,
  PresenceStatus,
  QualityList,
  QueueView,
  RecordHistory,
  RescheduleRequest,
  Resent,
  ScheduleList,
  UserRow,
  VisitDetail,
  VisitMessage,
  VisitMessageList,
  WaitingInfo,
  WaitlistEntry,
  WaitlistJoinRequest,
} from "./types";

export const auth = {
  /** Sets the csrftoken cookie; call before the first unsafe request of an anonymous tab. */
  csrf: () => api.get<{ csrfToken: string }>("/api/v1/auth/csrf/"),
  login: (body: LoginRequest) => api.post<Me>("/api/v1/auth/login/", body),
  logout: () => api.post<void>("/api/v1/auth/logout/"),
  me: () => api.get<Me>("/api/v1/auth/me/"),
};

export const health = {
  /** 503 still carries a Health body (status "degraded"), so it is not an error here. */
  get: () => api.get<Health>("/api/v1/health/", { acceptStatuses: [503] }),
};

export const users = {
  list: (params: { search?: string; page?: number }, signal?: AbortSignal) =>
    api.get<PaginatedUserRowList>("/api/v1/ehr/users/", { query: params, signal }),
  deactivate: (id: number) => api.post<UserRow>(`/api/v1/ehr/users/${id}/deactivate/`),
  activate: (id: number) => api.post<UserRow>(`/api/v1/ehr/users/${id}/activate/`),
};

/** Filters of the audit-log search; absent or empty ones are not sent. Times are ISO 8601 with an offset. */
export interface AuditEventQuery {
  patient_id?: number;
  actor?: string;
  action?: AuditAction;
  outcome?: AuditOutcome;
  since?: string;
  until?: string;
  page?: number;
}

export const auditEvents = {
  /** Admin only. Newest first, 50 a page; bad filters → 400 `invalid` with `fields`. */
  list: (params: AuditEventQuery, signal?: AbortSignal) =>
    api.get<PaginatedAuditEventRowList>("/api/v1/ehr/audit-events/", { query: { ...params }, signal }),
};

/** Criteria of the patient search; at least one is needed (else 400 `invalid`), `q` at least 2 characters. */
export interface PatientSearchQuery {
  q?: string;
  /** YYYY-MM-DD */
  birth_date?: string;
  mrn?: string;
  identifier?: string;
  limit?: number;
}

export const patients = {
  /** Staff. Up to `limit` (default 25) summaries, best name match first. */
  search: (params: PatientSearchQuery, signal?: AbortSignal) =>
    api.get<PatientSearchResult>("/api/v1/ehr/patients/", { query: { ...params }, signal }),
  /** 201 + ETag; 400 `invalid` + fields; 409 `duplicate_suspected` (see `duplicateCandidates`). */
  register: (body: PatientWriteRequest): Promise<Versioned<PatientDetail>> =>
    api.versioned.post<PatientDetail>("/api/v1/ehr/patients/", body),
  /** The record (identifiers masked) and its ETag, to send back as If-Match. */
  get: (id: number, signal?: AbortSignal): Promise<Versioned<PatientDetail>> =>
    api.versioned.get<PatientDetail>(`/api/v1/ehr/patients/${id}/`, { signal }),
  /** Only the changed fields and the reason. 412 `version_conflict` (see `conflictVersion`) when `etag` is stale. */
  update: (id: number, etag: string, body: PatientUpdateRequest): Promise<Versioned<PatientDetail>> =>
    api.versioned.patch<PatientDetail>(`/api/v1/ehr/patients/${id}/`, body, { headers: { "If-Match": etag } }),
  /** Every version, oldest first, each with its field-level diff. */
  history: (id: number, signal?: AbortSignal) =>
    api.get<PatientHistory>(`/api/v1/ehr/patients/${id}/history/`, { signal }),
  /**
   * Admins and schedulers: merge record `id` (the duplicate) into `body.into`; answers the surviving record + ETag.
   * 409 `patient_already_merged` / `merge_patient_not_active` / `merge_portal_account_conflict`; 412 `version_conflict`
   * with `record` ("source" or "target") when either changed since it was read.
   */
  merge: (id: number, body: PatientMergeRequest): Promise<Versioned<PatientDetail>> =>
    api.versioned.post<PatientDetail>(`/api/v1/ehr/patients/${id}/merge/`, body),
};

function isCandidate(value: unknown): value is DuplicateCandidate {
  if (typeof value !== "object" || value === null) return false;
  const c = value as Record<string, unknown>;
  return typeof c.id === "number" && typeof c.mrn === "string" && typeof c.name === "string" && typeof c.birth_date === "string";
}

/** The records a 409 `duplicate_suspected` registration may duplicate; null for any other error. */
export function duplicateCandidates(error: unknown): DuplicateCandidate[] | null {
  if (!(error instanceof ApiError) || error.status !== 409 || error.code !== "duplicate_suspected") return null;
  const candidates = error.body.candidates;
  return Array.isArray(candidates) ? candidates.filter(isCandidate) : [];
}

/** The record's current version from a 412 `version_conflict`; null for any other error (or when it is missing). */
export function conflictVersion(error: unknown): number | null {
  if (!(error instanceof ApiError) || error.status !== 412 || error.code !== "version_conflict") return null;
  const current = error.body.current_version;
  return typeof current === "number" ? current : null;
}

export function isVersionConflict(error: unknown): boolean {
  return error instanceof ApiError && error.status === 412;
}

export const myRecord = {
  /** Patient: who opened my record, newest first (paginated). */
  accessLog: (params: { page?: number }, signal?: AbortSignal) =>
    api.get<PaginatedAccessLogRowList>("/api/v1/ehr/me/access-log/", { query: { ...params }, signal }),
};

const EHR = "/api/v1/ehr";

/** True for the 403 that an emergency (break-the-glass) grant would lift. */
export function isBreakGlassRequired(error: unknown): boolean {
  return error instanceof ApiError && error.status === 403 && error.code === "break_glass_required";
}

/** The kinds of chart records that share one API shape (list/create per patient, history per record). */
export type ChartRecordKind = "conditions" | "allergies" | "medications" | "observations";

export const chart = {
  /** Active problems, allergies, active medications and the latest observation per code. */
  summary: (patientId: number, signal?: AbortSignal) =>
    api.get<ChartSummary>(`${EHR}/patients/${patientId}/summary/`, { signal }),
  addCondition: (patientId: number, body: ConditionCreateRequest) =>
    api.post<Condition>(`${EHR}/patients/${patientId}/conditions/`, body),
  addAllergy: (patientId: number, body: AllergyCreateRequest) =>
    api.post<Allergy>(`${EHR}/patients/${patientId}/allergies/`, body),
  addMedication: (patientId: number, body: MedicationCreateRequest) =>
    api.post<Medication>(`${EHR}/patients/${patientId}/medications/`, body),
  addObservation: (patientId: number, body: ObservationCreateRequest) =>
    api.post<Observation>(`${EHR}/patients/${patientId}/observations/`, body),
  /** Every version of one record, oldest first, each with its diff against the previous one. */
  history: (kind: ChartRecordKind | "encounters" | "notes", id: number, signal?: AbortSignal) =>
    api.get<RecordHistory>(`${EHR}/${kind}/${id}/history/`, { signal }),
};

export const documents = {
  /** A patient's documents (patients may list their own). */
  list: (patientId: number, signal?: AbortSignal) =>
    api.get<DocumentList>(`${EHR}/patients/${patientId}/documents/`, { signal }),
  /** Where the browser downloads a document's bytes (`Content-Disposition: attachment` with the original name). */
  contentUrl: (documentId: number) => `${EHR}/documents/${documentId}/content/`,
};

export const records = {
  /** Where the browser downloads a patient's whole record as one JSON file (audited as an export). */
  exportUrl: (patientId: number) => `${EHR}/patients/${patientId}/export/`,
};

export const encounters = {
  list: (patientId: number, signal?: AbortSignal) =>
    api.get<EncounterList>(`${EHR}/patients/${patientId}/encounters/`, { signal }),
  start: (patientId: number, body: EncounterCreateRequest) =>
    api.post<Encounter>(`${EHR}/patients/${patientId}/encounters/`, body),
  close: (encounterId: number) => api.post<Encounter>(`${EHR}/encounters/${encounterId}/close/`),
  /**
   * A planned encounter will not happen: If-Match and a reason; 409 `invalid_transition` once it started, 409
   * `cancel_the_appointment` for a visit booked in scheduling (cancel its `appointment_id` with `scheduling.cancel`).
   */
  cancel: (encounterId: number, etag: string, reason: string) =>
    api.post<Encounter>(`${EHR}/encounters/${encounterId}/cancel/`, { reason }, { headers: { "If-Match": etag } }),
  notes: (encounterId: number, signal?: AbortSignal) =>
    api.get<NoteList>(`${EHR}/encounters/${encounterId}/notes/`, { signal }),
  /** A new draft note (201 + ETag). */
  addNote: (encounterId: number, sections: NoteSections = {}): Promise<Versioned<Note>> =>
    api.versioned.post<Note>(`${EHR}/encounters/${encounterId}/notes/`, sections),
};

export const notes = {
  get: (noteId: number, signal?: AbortSignal): Promise<Versioned<Note>> =>
    api.versioned.get<Note>(`${EHR}/notes/${noteId}/`, { signal }),
  /** Draft autosave: only the sections sent change. 412 `version_conflict` with `current_version` and `current`. */
  saveDraft: (noteId: number, etag: string, sections: NoteSections): Promise<Versioned<Note>> =>
    api.versioned.patch<Note>(`${EHR}/notes/${noteId}/`, sections, { headers: { "If-Match": etag } }),
  sign: (noteId: number, etag: string): Promise<Versioned<Note>> =>
    api.versioned.post<Note>(`${EHR}/notes/${noteId}/sign/`, undefined, { headers: { "If-Match": etag } }),
  addAddendum: (noteId: number, text: string): Promise<Versioned<Note>> =>
    api.versioned.post<Note>(`${EHR}/notes/${noteId}/addenda/`, { text }),
};

/** The note as it is now, from a 412 on a draft save; null for any other error. */
export function draftConflict(error: unknown): { version: number; current: NoteSections } | null {
  if (!(error instanceof ApiError) || error.status !== 412) return null;
  const version = error.body.current_version;
  const current = error.body.current;
  if (typeof version !== "number" || typeof current !== "object" || current === null) return null;
  return { version, current: current as NoteSections };
}

export const breakGlass = {
  /** Clinicians (and admins, for reading only): an emergency grant for one patient; reason at least 20 characters. */
  request: (patientId: number, reason: string) =>
    api.post<BreakGlassGrant>(`${EHR}/patients/${patientId}/break-glass/`, { reason }),
  /** Admin: the review queue, newest first. */
  list: (params: { review_status?: BreakGlassReviewStatus; page?: number }, signal?: AbortSignal) =>
    api.get<PaginatedBreakGlassGrantList>(`${EHR}/break-glass/`, { query: { ...params }, signal }),
  review: (grantId: number, outcome: BreakGlassOutcome, note: string) =>
    api.post<BreakGlassGrant>(`${EHR}/break-glass/${grantId}/review/`, { outcome, note }),
};

const SCHEDULING = "/api/v1/scheduling";

/** The If-Match value of an appointment at `version` (the API's ETag is the quoted version number). */
export function appointmentEtag(version: number): string {
  return `"${version}"`;
}

/** Scheduling (docs/scheduling.md). Times are ISO 8601 instants; errors carry the codes listed there. */
export const scheduling = {
  /** Patients get the types they may book themselves; staff every active type. */
  appointmentTypes: (signal?: AbortSignal) =>
    api.get<AppointmentTypeList>(`${SCHEDULING}/appointment-types/`, { signal }),
  /** Bookable resources; patients see practitioners only. */
  schedules: (params: { kind?: string; location?: number } = {}, signal?: AbortSignal) =>
    api.get<ScheduleList>(`${SCHEDULING}/schedules/`, { query: { ...params }, signal }),
  /** Free starts of a type in [start, end) (at most 62 days), for every practitioner or one. */
  slots: (
    params: { appointment_type: number; start: string; end: string; practitioner?: number; location?: number },
    signal?: AbortSignal,
  ) => api.get<FreeSlotList>(`${SCHEDULING}/slots/`, { query: { ...params }, signal }),
  /** 201 with the hold and its `expires_at`; 409 `slot_unavailable` when the time was taken meanwhile. */
  holdCreate: (body: HoldRequest) => api.post<Hold>(`${SCHEDULING}/holds/`, body),
  /** 201 with the booked appointment; 409 `hold_expired` / `hold_not_active`. */
  holdConfirm: (holdId: string, comment = "") =>
    api.post<Appointment>(`${SCHEDULING}/holds/${encodeURIComponent(holdId)}/confirm/`, comment ? { comment } : {}),
  /** Gives the held time back (idempotent). */
  holdRelease: (holdId: string) => request<void>("DELETE", `${SCHEDULING}/holds/${encodeURIComponent(holdId)}/`),
  /** The signed-in patient's own appointments, newest first. */
  myAppointments: (signal?: AbortSignal) => api.get<AppointmentList>(`${SCHEDULING}/me/appointments/`, { signal }),
  appointment: (id: number, signal?: AbortSignal): Promise<Versioned<Appointment>> =>
    api.versioned.get<Appointment>(`${SCHEDULING}/appointments/${id}/`, { signal }),
  /** Staff: appointments overlapping [start, end) (at most 62 days), oldest first, with the names the viewer may see. */
  appointments: (
    params: { start: string; end: string; location?: number; practitioner?: number; schedule?: number },
    signal?: AbortSignal,
  ) => api.get<AppointmentList>(`${SCHEDULING}/appointments/`, { query: { ...params }, signal }),
  /** Front desk: 409 `invalid_transition` when the table forbids it; 412 `version_conflict` when `etag` is stale. */
  setStatus: (
    id: number,
    etag: string,
    status: "arrived" | "checked-in" | "fulfilled" | "noshow" | "entered-in-error",
    reason = "",
  ): Promise<Versioned<Appointment>> =>
    api.versioned.post<Appointment>(
      `${SCHEDULING}/appointments/${id}/status/`,
      reason ? { status, reason } : { status },
      { headers: { "If-Match": etag } },
    ),
  /** 409 `too_late` inside the type's cancellation window (patients); 412 `version_conflict` when `etag` is stale. */
  cancel: (id: number, etag: string, reason: string) =>
    api.post<Appointment>(`${SCHEDULING}/appointments/${id}/cancel/`, { reason }, { headers: { "If-Match": etag } }),
  reschedule: (id: number, etag: string, body: RescheduleRequest) =>
    api.post<Appointment>(`${SCHEDULING}/appointments/${id}/reschedule/`, body, { headers: { "If-Match": etag } }),
  /** The signed-in patient's waitlist entries and the offers made to them. */
  myWaitlist: (signal?: AbortSignal) => api.get<MyWaitlist>(`${SCHEDULING}/me/waitlist/`, { signal }),
  waitlistJoin: (body: WaitlistJoinRequest) => api.post<WaitlistEntry>(`${SCHEDULING}/waitlist/`, body),
  /** 201 with the booked appointment; 409 `offer_unavailable` when someone else accepted first. */
  offerAccept: (offerId: string) =>
    api.post<Appointment>(`${SCHEDULING}/waitlist/offers/${encodeURIComponent(offerId)}/accept/`),
  offerDecline: (offerId: string) =>
    api.post<void>(`${SCHEDULING}/waitlist/offers/${encodeURIComponent(offerId)}/decline/`),
};

const TELEHEALTH = "/api/v1/telehealth";

/** A visit id (uuid) in a path: visit ids come from the API, but never trust them into a URL unescaped. */
function visitPath(visitId: string, rest = ""): string {
  return `${TELEHEALTH}/visits/${encodeURIComponent(visitId)}/${rest}`;
}

/**
 * Telehealth (docs/telehealth.md): check-in, the waiting room, the clinician's virtual clinic, video visits.
 * Errors carry {code, detail, fields?}; URLs hold ids only (never names or answers).
 */
export const telehealth = {
  /** Patient: what the check-in of an appointment needs (consent text, intake questions, window, visit if any). */
  checkInInfo: (appointmentId: number, signal?: AbortSignal) =>
    api.get<CheckInInfo>(`${TELEHEALTH}/appointments/${appointmentId}/check-in/`, { signal }),
  /** Patient: 201 (new) / 200 (already waiting: answers updated); 409 outside the window; 400 without consent. */
  checkIn: (appointmentId: number, body: CheckInRequest) =>
    api.post<VisitDetail>(`${TELEHEALTH}/appointments/${appointmentId}/check-in/`, body),
  /** Public: trades a signed single-use link for a session of the appointment's patient. */
  consumeLink: (token: string) =>
    api.post<ConsumedLink>(`${TELEHEALTH}/check-in-links/consume/`, { token }),
  /** Staff: a check-in link for an appointment (e.g. to send by SMS). */
  createLink: (appointmentId: number) =>
    api.post<CheckInLink>(`${TELEHEALTH}/appointments/${appointmentId}/check-in-link/`),
  /** Short-lived STUN/TURN configuration for a visit (or for the device check). */
  iceServers: (visitId: string | null) =>
    api.post<IceConfig>(`${TELEHEALTH}/ice-servers/`, visitId ? { visit_id: visitId } : {}),
  visit: (visitId: string, signal?: AbortSignal) => api.get<VisitDetail>(visitPath(visitId), { signal }),
  deviceCheck: (visitId: string, result: DeviceCheckResult) =>
    api.post<VisitDetail>(visitPath(visitId, "device-check/"), result),
  waiting: (visitId: string, signal?: AbortSignal) => api.get<WaitingInfo>(visitPath(visitId, "waiting/"), { signal }),
  leave: (visitId: string) => api.post<unknown>(visitPath(visitId, "leave/")),
  admit: (visitId: string) => api.post<VisitDetail>(visitPath(visitId, "admit/")),
  transfer: (visitId: string, practitionerId: number) =>
    api.post<VisitDetail>(visitPath(visitId, "transfer/"), { practitioner_id: practitionerId }),
  end: (visitId: string, body: { summary?: string; audio_only?: boolean }) =>
    api.post<VisitDetail>(visitPath(visitId, "end/"), body),
  messages: (visitId: string, signal?: AbortSignal) =>
    api.get<VisitMessageList>(visitPath(visitId, "messages/"), { signal }),
  sendMessage: (visitId: string, body: string) => api.post<VisitMessage>(visitPath(visitId, "messages/"), { body }),
  /** At most one accepted per user per 5 s (429 otherwise). */
  reportQuality: (visitId: string, stats: CallQualityStats) =>
    api.post<unknown>(visitPath(visitId, "quality/"), { stats }),
  /** Practitioner/nurse: my queue, the clinic pool, my notice and presence, my visit in progress. */
  queue: (signal?: AbortSignal) => api.get<QueueView>(`${TELEHEALTH}/queue/`, { signal }),
  presence: (status: PresenceStatus) => api.post<unknown>(`${TELEHEALTH}/presence/`, { status }),
  setNotice: (body: string) => api.post<unknown>(`${TELEHEALTH}/notice/`, { body }),
  clearNotice: () => request<void>("DELETE", `${TELEHEALTH}/notice/`),
  colleagues: (signal?: AbortSignal) => api.get<ColleagueList>(`${TELEHEALTH}/colleagues/`, { signal }),
  /** Admin: recent visits with the latest quality summary of each participant. */
  qualityList: (signal?: AbortSignal) => api.get<QualityList>(`${TELEHEALTH}/quality/`, { signal }),

  // Guests of multi-party visits (issue 7). The link's token travels in a POST body, never in an API URL.
  /** Practitioner of the visit (or a scheduler/admin at its location): 201 with the join link. */
  inviteToVisit: (visitId: string, body: InvitationRequest) =>
    api.post<Invitation>(visitPath(visitId, "invitations/"), body),
  /** Scheduler, ahead of time: the invitation binds to the appointment and resolves to its visit later. */
  inviteToAppointment: (appointmentId: number, body: InvitationRequest) =>
    api.post<Invitation>(`${TELEHEALTH}/appointments/${appointmentId}/invitations/`, body),
  invitations: (visitId: string, signal?: AbortSignal) =>
    api.get<InvitationList>(visitPath(visitId, "invitations/"), { signal }),
  /** Public: 200 with the grant (kept in the session); 400 invalid_token, 409 invitation_used, 410 invitation_expired. */
  consumeInvitation: (token: string) => api.post<GuestState>(`${TELEHEALTH}/invitations/consume/`, { token }),
  /** The session's guest grant and where its visit stands (404 without one). */
  guest: (signal?: AbortSignal) => api.get<GuestState>(`${TELEHEALTH}/guest/`, { signal }),
  guestDeviceCheck: (result: DeviceCheckResult) => api.post<GuestState>(`${TELEHEALTH}/guest/device-check/`, result),
  admitGuest: (visitId: string, participantId: string) =>
    api.post<GuestAdmitted>(visitPath(visitId, `guests/${encodeURIComponent(participantId)}/admit/`)),
  /** `audio: false` mutes (the relay stops forwarding the microphone), `true` allows it again. */
  muteParticipant: (visitId: string, participantId: string, audio: boolean) =>
    api.post<Muted>(visitPath(visitId, `guests/${encodeURIComponent(participantId)}/mute/`), { audio }),
  removeGuest: (visitId: string, participantId: string) =>
    api.post<unknown>(visitPath(visitId, `guests/${encodeURIComponent(participantId)}/remove/`)),
  /** Practitioner: every participant goes through the media relay from now on (for the rest of the visit). */
  forceRelay: (visitId: string) => api.post<unknown>(visitPath(visitId, "relay/")),
};

const NOTIFICATIONS = "/api/v1/notifications";

/** The periods the reminder-health screen offers (the API takes 1–90 days). */
export const HEALTH_PERIODS = [7, 14, 30] as const;

/**
 * Notifications (docs/notifications.md): reminder health for admins and schedulers, resend, a patient's own contact
 * preferences. Errors carry {code, detail, fields?}.
 */
export const notifications = {
  /** Admins, schedulers: per channel and day (of the server's zone) for the last `days` days, and the totals. */
  health: (days: number, signal?: AbortSignal) =>
    api.get<NotificationHealth>(`${NOTIFICATIONS}/health/`, { query: { days }, signal }),
  /** Admins, schedulers: failed and undeliverable messages, newest first, 25 a page (404 past the last page). */
  failures: (params: { page?: number }, signal?: AbortSignal) =>
    api.get<MessageFailurePage>(`${NOTIFICATIONS}/failures/`, { query: { ...params }, signal }),
  /** Admins, schedulers: 201 with the new message; 409 `not_resendable` when it was resent already. */
  resend: (messageId: string) =>
    api.post<Resent>(`${NOTIFICATIONS}/messages/${encodeURIComponent(messageId)}/resend/`),
  /** Patient: my preferences (created with defaults on first read); 404 `no_patient_record`. */
  preferences: (signal?: AbortSignal) => api.get<NotificationPreference>(`${NOTIFICATIONS}/preferences/`, { signal }),
  /** Patient: 200 with the saved preferences; 400 `invalid` with `fields` and nothing saved. */
  updatePreferences: (body: NotificationPreferenceUpdateRequest) =>
    request<NotificationPreference>("PUT", `${NOTIFICATIONS}/preferences/`, { body }),
};
