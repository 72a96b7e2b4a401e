/**
 * A small typed fetch wrapper for Consulta's JSON API.
 *
 * - same-origin session cookie (credentials: "same-origin");
 * - every unsafe request carries X-CSRFToken, read from the csrftoken cookie at
 *   send time (Django rotates the token at login, so it is never cached);
 * - every non-2xx answer becomes an ApiError with the backend's {code, detail, fields} (and the whole body,
 *   for errors that carry more, e.g. the candidates of a 409 or the current_version of a 412);
 * - `requestVersioned` also returns the response's ETag, for records changed with If-Match.
 */
import type { ApiErrorBody } from "./types";

export type FieldErrors = Record<string, string[]>;

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly fields: FieldErrors;
  /** The whole JSON error body (empty when there was none): members beyond code/detail/fields live here. */
  readonly body: Readonly<Record<string, unknown>>;

  constructor(
    status: number,
    code: string,
    detail: string,
    fields: FieldErrors = {},
    body: Readonly<Record<string, unknown>> = {},
  ) {
    super(detail || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.fields = fields;
    this.body = body;
  }
}

/** Status 0: the request never got an HTTP answer. */
export const NETWORK_ERROR = "network_error";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

export function readCookie(name: string, cookieString: string = globalThis.document?.cookie ?? ""): string | null {
  for (const part of cookieString.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) {
      return decodeURIComponent(part.slice(eq + 1).trim());
    }
  }
  return null;
}

export type QueryValue = string | number | boolean | null | undefined;

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  body?: unknown;
  /** Statuses other than 2xx whose JSON body is a normal answer (e.g. 503 from /health/). */
  acceptStatuses?: readonly number[];
  /** Extra request headers, e.g. If-Match. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A record with the version tag the server sent along (`ETag`), to send back as `If-Match` when changing it. */
export interface Versioned<T> {
  data: T;
  /** The ETag header exactly as received (e.g. `"3"`), or null when the answer had none. */
  etag: string | null;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

let fetchImpl: FetchLike = (input, init) => globalThis.fetch(input, init);

/** For tests: route the client's requests through another fetch. */
export function setFetch(impl: FetchLike): void {
  fetchImpl = impl;
}

export function buildUrl(path: string, query?: Record<string, QueryValue>): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

function isErrorBody(value: unknown): value is Partial<ApiErrorBody> & { code: string } {
  return typeof value === "object" && value !== null && typeof (value as { code?: unknown }).code === "string";
}

function fallbackDetail(status: number): string {
  if (status >= 500) return "The server had a problem. Try again in a moment.";
  if (status === 404) return "Not found.";
  if (status === 403) return "You do not have permission to do that.";
  if (status === 401) return "You are not signed in.";
  return `The request failed (HTTP ${status}).`;
}

async function send(method: string, path: string, options: RequestOptions): Promise<{ payload: unknown; response: Response }> {
  const upper = method.toUpperCase();
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  if (!SAFE_METHODS.has(upper)) {
    const token = readCookie("csrftoken");
    if (token) headers["X-CSRFToken"] = token;
  }

  let response: Response;
  try {
    response = await fetchImpl(buildUrl(path, options.query), {
      method: upper,
      headers,
      body,
      credentials: "same-origin",
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, NETWORK_ERROR, "Could not reach Consulta. Check your connection and try again.");
  }

  if (response.status === 204) return { payload: undefined, response };

  let payload: unknown = undefined;
  const text = await response.text();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = undefined;
    }
  }

  if (response.ok || options.acceptStatuses?.includes(response.status)) {
    return { payload, response };
  }
  if (isErrorBody(payload)) {
    throw new ApiError(
      response.status,
      payload.code,
      typeof payload.detail === "string" ? payload.detail : fallbackDetail(response.status),
      payload.fields ?? {},
      payload as Record<string, unknown>,
    );
  }
  throw new ApiError(response.status, `http_${response.status}`, fallbackDetail(response.status));
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const { payload } = await send(method, path, options);
  return payload as T;
}

/** Like `request`, and also hands back the response's ETag (for reads and writes under If-Match). */
export async function requestVersioned<T>(method: string, path: string, options: RequestOptions = {}): Promise<Versioned<T>> {
  const { payload, response } = await send(method, path, options);
  return { data: payload as T, etag: response.headers.get("ETag") };
}

export const api = {
  get: <T>(path: string, options?: Omit<RequestOptions, "body">) => request<T>("GET", path, options),
  post: <T>(path: string, body?: unknown, options?: Omit<RequestOptions, "body">) =>
    request<T>("POST", path, { ...options, body }),
  patch: <T>(path: string, body?: unknown, options?: Omit<RequestOptions, "body">) =>
    request<T>("PATCH", path, { ...options, body }),
  /** Calls that also return the ETag: `api.versioned.get(…)` → `{data, etag}`. */
  versioned: {
    get: <T>(path: string, options?: Omit<RequestOptions, "body">) => requestVersioned<T>("GET", path, options),
    post: <T>(path: string, body?: unknown, options?: Omit<RequestOptions, "body">) =>
      requestVersioned<T>("POST", path, { ...options, body }),
    patch: <T>(path: string, body?: unknown, options?: Omit<RequestOptions, "body">) =>
      requestVersioned<T>("PATCH", path, { ...options, body }),
  },
};
