/** Typed calls to the backend, one function per endpoint the app uses. */
import { api } from "./client";
import type {
  AuditAction,
  AuditOutcome,
  Health,
  LoginRequest,
  Me,
  PaginatedAuditEventRowList,
  PaginatedUserRowList,
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
