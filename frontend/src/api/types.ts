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
// chat, ICE servers and call quality.
export type VisitStatus = Schemas["VisitStatusEnum"];
export type VisitRole = Schemas["VisitDetailRoleEnum"];
export type DeviceCheckOutcome = Schemas["DeviceCheckResultEnum"];
export type DoctorStatus = Schemas["DoctorStatusEnum"];
/** What a clinician may set (the queue's presence may also say "offline"). */
export type PresenceStatus = Schemas["PresenceBeatStatusEnum"];
/** The device check as the browser sends it. */
export type DeviceCheckResult = Schemas["DeviceCheckRequest"];
/** The device check as a visit or queue entry shows it (absent keys: not run). */
export type DeviceCheckRecord = Schemas["DeviceCheckResult"];
export type IntakeQuestion = Schemas["IntakeQuestion"];
/** `answer` is text, or true/false for a yes/no question. */
export type IntakeAnswer = Schemas["IntakeAnswer"];
export type CheckInInfo = Schemas["CheckInInfo"];
export type CheckInRequest = Schemas["CheckInRequest"];
export type CheckInLink = Schemas["CheckInLink"];
export type ConsumedLink = Schemas["ConsumedLink"];
export type VisitDetail = Schemas["VisitDetail"];
export type WaitingInfo = Schemas["WaitingInfo"];
export type VisitMessage = Schemas["Message"];
export type VisitMessageList = Schemas["MessageList"];
export type QueueEntry = Schemas["QueueEntry"];
export type ClinicianNotice = Schemas["Notice"];
export type QueueView = Schemas["ClinicQueue"];
export type Colleague = Schemas["Person"];
export type ColleagueList = Schemas["ColleagueList"];
export type IceServer = Schemas["IceServer"];
export type IceConfig = Schemas["IceConfig"];
export type CandidateType = Schemas["CandidateTypeEnum"];
/** One call-quality sample as the browser builds it: every member present (null when not measured). */
export type CallQualityStats = Required<Schemas["QualityStatsRequest"]>;
export type QualityReport = Schemas["QualityReport"];
/** A recent visit with the latest report of each participant (GET quality/). */
export type QualityVisitRow = Schemas["VisitQualitySummary"];
export type QualityList = Schemas["QualityOverview"];

// Notifications (issue 6, /api/v1/notifications/): reminder health and failures for admins and schedulers, resend,
// a patient's own contact preferences.
export type MessageChannel = Schemas["MessageChannelEnum"];
export type MessageState = Schemas["MessageStateEnum"];
/** The channels a patient orders (voice is never a patient's choice). */
export type PreferenceChannel = Schemas["PreferenceChannelEnum"];
/** One channel on one day (of the server's zone): the messages created that day, by where they are now. */
export type NotificationHealthDay = Schemas["NotificationHealthDay"];
/** `failed` counts failed and undeliverable; `delivery_rate` is delivered / sent (0–1), null when nothing was sent. */
export type NotificationHealthTotals = Schemas["NotificationHealthTotals"];
export type NotificationHealth = Schemas["NotificationHealth"];
/** A failed or undeliverable message (`GET failures/`); `last_error_code` and `patient_name` may be "". */
export type MessageFailure = Schemas["MessageFailure"];
export type MessageFailurePage = Schemas["MessageFailurePage"];
/** The new message a resend queued (201). */
export type Resent = Schemas["Resent"];
export type NotificationLanguage = Schemas["Language"];
/** `channels` is ordered (the first is tried first); a masked contact is "" when the record has none. */
export type NotificationPreference = Schemas["NotificationPreference"];
export type NotificationPreferenceUpdateRequest = Schemas["NotificationPreferenceUpdateRequest"];

// Guests of multi-party visits (issue 7): invitations, the guest's lobby, the relay's telemetry.
export type GuestRoleName = Schemas["GuestRoleEnum"];
export type MediaModeName = Schemas["MediaModeEnum"];
export type InvitationRequest = Schemas["InvitationCreateRequest"];
/** A new invitation with its absolute join link (`/visit/join/<token>`, shown to the inviter only). */
export type Invitation = Schemas["Invitation"];
export type InvitationRow = Schemas["InvitationSummary"];
export type InvitationList = Schemas["InvitationList"];
/** The guest's grant (from consume or GET guest/) and where their visit stands. */
export type GuestState = Schemas["GuestInfo"];
export type GuestAdmitted = Schemas["GuestAdmitted"];
export type Muted = Schemas["Muted"];
/** The media relay's latest telemetry of one participant: per track forwarded or transcoded. */
export type RelayReport = Schemas["RelayReport"];
export type RelayTrack = Schemas["RelayTrack"];
