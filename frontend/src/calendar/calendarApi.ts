/**
 * The scheduling calls the staff calendar and the availability editor make beyond the shared `scheduling`
 * endpoints of api/endpoints.ts (types, resources, appointment lists, status, reschedule, cancel): direct booking,
 * weekly hours and exceptions. Errors are ApiErrors with the codes of docs/scheduling.md.
 */
import { ApiError, api, request } from "../api/client";
import type {
  Appointment,
  Availability,
  AvailabilityException,
  AvailabilityExceptionRequest,
  AvailabilityRuleRequest,
  BookingRequest,
  Series,
  SeriesBookRequest,
  SeriesCancelRequest,
} from "../api/types";

const SCHEDULING = "/api/v1/scheduling";

export const calendarApi = {
  /** 201 with the appointment; 409 `slot_unavailable`, 422 `outside_availability`, 400 `missing_resource`/`invalid`. */
  book: (body: BookingRequest) => api.post<Appointment>(`${SCHEDULING}/appointments/`, body),
  /** Weekly hours and the upcoming exceptions of a resource (schedulers and admins). */
  availability: (scheduleId: number, signal?: AbortSignal) =>
    api.get<Availability>(`${SCHEDULING}/schedules/${scheduleId}/availability/`, { signal }),
  /** Replaces the weekly hours; 400 `invalid` with `rules[i]` (or nested `rules`) field errors. */
  setAvailability: (scheduleId: number, rules: AvailabilityRuleRequest[]) =>
    request<Availability>("PUT", `${SCHEDULING}/schedules/${scheduleId}/availability/`, { body: { rules } }),
  /** Block time (`unavailable`) or add an extra session (`available`). */
  addException: (scheduleId: number, body: AvailabilityExceptionRequest) =>
    api.post<AvailabilityException>(`${SCHEDULING}/schedules/${scheduleId}/exceptions/`, body),
  removeException: (exceptionId: number) => request<void>("DELETE", `${SCHEDULING}/exceptions/${exceptionId}/`),
  /**
   * Book a recurring series, all visits or none: 201 with the series; a refused visit answers with its own code
   * (409 `slot_unavailable`, 422 `outside_availability` …) and `occurrence` naming it; 400 `invalid` on `rrule`,
   * `first_start` or `time_zone`.
   */
  bookSeries: (body: SeriesBookRequest) => api.post<Series>(`${SCHEDULING}/series/`, body),
  /** A series with every visit and its status. */
  series: (seriesId: number, signal?: AbortSignal) => api.get<Series>(`${SCHEDULING}/series/${seriesId}/`, { signal }),
  /** Cancel the visits not yet started from `from_start` on (all or none; a refusal names the visit). */
  cancelSeries: (seriesId: number, body: SeriesCancelRequest) =>
    api.post<Series>(`${SCHEDULING}/series/${seriesId}/cancel/`, body),
};

/** The resource a 409 `slot_unavailable` or 422 `outside_availability` names, if any. */
export function conflictingResourceName(error: unknown): string | null {
  if (!(error instanceof ApiError)) return null;
  const resource = error.body.conflicting_resource;
  if (typeof resource !== "object" || resource === null) return null;
  const name = (resource as { name?: unknown }).name;
  return typeof name === "string" && name ? name : null;
}

/** A sentence for the scheduler about a failed booking, move or change (the API's detail, made specific). */
export function describeSchedulingError(error: unknown): string {
  if (!(error instanceof ApiError)) return "Something went wrong. Try again.";
  const resource = conflictingResourceName(error);
  switch (error.code) {
    case "slot_unavailable":
      return resource
        ? `${resource} is already booked at that time. Choose another time, or give a reason to double-book.`
        : error.detail;
    case "outside_availability":
      return resource ? `${resource} is not working at that time (outside its hours or in blocked time).` : error.detail;
    case "missing_resource":
      return `${error.detail} Choose another time or resource.`;
    case "version_conflict":
      return "This appointment was changed by someone else meanwhile. The calendar has been reloaded; try again.";
    case "invalid": {
      const messages = Object.entries(error.fields).map(([field, list]) => `${field}: ${[list].flat().join(" ")}`);
      return messages.length ? messages.join(" ") : error.detail;
    }
    default:
      return error.detail || "Something went wrong. Try again.";
  }
}
