/** Typed calls to the backend, one function per endpoint the app uses. */
import { ApiError, api, type Versioned } from "./client";
import type {
  AuditAction,
  AuditOutcome,
  DuplicateCandidate,
  Health,
  LoginRequest,
  Me,
  PaginatedAccessLogRowList,
  PaginatedAuditEventRowList,
  PaginatedUserRowList,
  PatientDetail,
  PatientHistory,
  PatientSearchResult,
  PatientUpdateRequest,
  PatientWriteRequest,
  UserRow,
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
