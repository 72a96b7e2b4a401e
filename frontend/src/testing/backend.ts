import type { FetchLike } from "../api/client";
import type {
  AuditEventRow,
  Me,
  PaginatedAuditEventRowList,
  PaginatedUserRowList,
  StreamEvent,
  UserRow,
} from "../api/types";

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  headers: Record<string, string>;
}

export interface FakeReply {
  status: number;
  body?: unknown;
}

type Handler = (request: FakeRequest) => FakeReply | Promise<FakeReply>;

export function makeMe(overrides: Partial<Me> = {}): Me {
  return {
    id: 7,
    username: "drgrey",
    first_name: "Meredith",
    last_name: "Grey",
    display_name: "Dr Meredith Grey",
    email: "grey@example.test",
    roles: ["practitioner"],
    primary_role: "practitioner",
    organization: { id: 1, name: "Harbour Clinic" },
    locations: [{ id: 3, name: "Harbour Clinic — Main St", timezone: "Europe/Lisbon" }],
    session: "sess-here",
    ...overrides,
  };
}

export function makeUserRow(overrides: Partial<UserRow> = {}): UserRow {
  return {
    id: 11,
    username: "bob",
    display_name: "Bob Builder",
    roles: ["scheduler"],
    is_active: true,
    last_login: "2026-01-02T09:30:00Z",
    ...overrides,
  };
}

export function makeAuditEventRow(overrides: Partial<AuditEventRow> = {}): AuditEventRow {
  return {
    id: 101,
    occurred_at: "2026-03-04T10:20:30Z",
    actor_username: "drgrey",
    actor_name: "Dr Meredith Grey",
    actor_role: "practitioner",
    action: "read",
    entity_type: "Patient",
    entity_id: "42",
    patient_id: 42,
    purpose: "treatment",
    outcome: "success",
    channel: "api",
    source_ip: "10.0.0.5",
    sealed: true,
    ...overrides,
  };
}

const AUDIT_PAGE_SIZE = 50;
const AUDIT_ACTIONS = ["read", "create", "update", "entered_in_error", "export", "break_glass"];
const AUDIT_OUTCOMES = ["success", "denied", "failed"];

/**
 * An in-memory stand-in for the Django API, speaking the agreed JSON contract:
 * auth (csrf/login/logout/me), health, users, audit events, realtime events.
 */
export class FakeBackend {
  /** The user the session cookie belongs to (null: anonymous). */
  me: Me | null = null;
  /** username → password → user. */
  accounts = new Map<string, { password: string; me: Me }>();
  users: UserRow[] = [];
  /** Newest first, as the API orders them. */
  auditEvents: AuditEventRow[] = [];
  events = new Map<string, StreamEvent[]>();
  csrfToken = "token-1";
  readonly requests: FakeRequest[] = [];
  private readonly overrides = new Map<string, Handler>();

  /** Replaces one endpoint, e.g. on("POST /api/v1/auth/login/", () => ({status: 429, body: ...})). */
  on(route: string, handler: Handler): void {
    this.overrides.set(route, handler);
  }

  account(username: string, password: string, me: Me): void {
    this.accounts.set(username, { password, me });
  }

  calls(route: string): FakeRequest[] {
    return this.requests.filter((r) => `${r.method} ${r.path}` === route);
  }

  readonly fetch: FetchLike = async (input, init) => {
    const url = new URL(input, "http://consulta.test");
    const headers = { ...((init?.headers as Record<string, string> | undefined) ?? {}) };
    const request: FakeRequest = {
      method: (init?.method ?? "GET").toUpperCase(),
      path: url.pathname,
      query: url.searchParams,
      body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
      headers,
    };
    this.requests.push(request);
    const route = `${request.method} ${request.path}`;
    const handler = this.overrides.get(route) ?? ((req: FakeRequest) => this.handle(req));
    const reply = await handler(request);
    return new Response(reply.status === 204 || reply.body === undefined ? null : JSON.stringify(reply.body), {
      status: reply.status,
      headers: { "Content-Type": "application/json" },
    });
  };

  private unsafeWithoutCsrf(request: FakeRequest): boolean {
    return request.method !== "GET" && request.headers["X-CSRFToken"] !== this.csrfToken;
  }

  /** The audit search: the same filters, validation (400 `invalid` with `fields`) and paging as the API. */
  private auditEventList(query: URLSearchParams): FakeReply {
    const fields: Record<string, string[]> = {};
    const patient = query.get("patient_id");
    if (patient !== null && !(/^\d+$/.test(patient) && Number(patient) >= 1)) fields.patient_id = ["A valid integer is required."];
    const action = query.get("action");
    if (action !== null && !AUDIT_ACTIONS.includes(action)) fields.action = [`"${action}" is not a valid choice.`];
    const outcome = query.get("outcome");
    if (outcome !== null && !AUDIT_OUTCOMES.includes(outcome)) fields.outcome = [`"${outcome}" is not a valid choice.`];
    const times: Record<"since" | "until", number | null> = { since: null, until: null };
    for (const name of ["since", "until"] as const) {
      const value = query.get(name);
      if (value === null) continue;
      const time = Date.parse(value);
      if (Number.isNaN(time)) fields[name] = ["Datetime has wrong format."];
      else times[name] = time;
    }
    if (times.since !== null && times.until !== null && times.since > times.until) {
      fields.until = ["Must not be before 'since'."];
    }
    if (Object.keys(fields).length) {
      return { status: 400, body: { code: "invalid", detail: "Some fields are not valid.", fields } };
    }

    const actor = query.get("actor");
    const matching = this.auditEvents.filter((row) => {
      const at = Date.parse(row.occurred_at);
      return (
        (patient === null || row.patient_id === Number(patient)) &&
        (actor === null || row.actor_username === actor) &&
        (action === null || row.action === action) &&
        (outcome === null || row.outcome === outcome) &&
        (times.since === null || at >= times.since) &&
        (times.until === null || at <= times.until)
      );
    });
    const pageNumber = Number(query.get("page") ?? 1);
    const pages = Math.max(1, Math.ceil(matching.length / AUDIT_PAGE_SIZE));
    if (!Number.isInteger(pageNumber) || pageNumber < 1 || pageNumber > pages) {
      return { status: 404, body: { code: "not_found", detail: "Invalid page." } };
    }
    const link = (n: number) => {
      const params = new URLSearchParams(query);
      params.set("page", String(n));
      return `http://consulta.test/api/v1/ehr/audit-events/?${params.toString()}`;
    };
    const body: PaginatedAuditEventRowList = {
      count: matching.length,
      next: pageNumber < pages ? link(pageNumber + 1) : null,
      previous: pageNumber > 1 ? link(pageNumber - 1) : null,
      results: matching.slice((pageNumber - 1) * AUDIT_PAGE_SIZE, pageNumber * AUDIT_PAGE_SIZE),
    };
    return { status: 200, body };
  }

  private handle(request: FakeRequest): FakeReply {
    const notSignedIn = { status: 401, body: { code: "not_authenticated", detail: "Sign in first." } };
    if (this.unsafeWithoutCsrf(request)) {
      return { status: 403, body: { code: "csrf_failed", detail: "CSRF verification failed." } };
    }
    const route = `${request.method} ${request.path}`;
    switch (route) {
      case "GET /api/v1/auth/csrf/":
        document.cookie = `csrftoken=${this.csrfToken}; path=/`;
        return { status: 200, body: { csrfToken: this.csrfToken } };
      case "GET /api/v1/auth/me/":
        return this.me ? { status: 200, body: this.me } : notSignedIn;
      case "POST /api/v1/auth/login/": {
        const { username, password } = request.body as { username?: string; password?: string };
        if (!username || !password) {
          return { status: 400, body: { code: "invalid", detail: "Check the highlighted fields.", fields: {} } };
        }
        const account = this.accounts.get(username);
        if (!account || account.password !== password) {
          return { status: 400, body: { code: "invalid_credentials", detail: "Wrong username or password." } };
        }
        this.me = account.me;
        this.csrfToken = `${this.csrfToken}-rotated`;
        document.cookie = `csrftoken=${this.csrfToken}; path=/`;
        return { status: 200, body: this.me };
      }
      case "POST /api/v1/auth/logout/":
        this.me = null;
        return { status: 204 };
      case "GET /api/v1/ehr/users/": {
        if (!this.me) return notSignedIn;
        const search = (request.query.get("search") ?? "").toLowerCase();
        const results = this.users.filter(
          (u) => u.username.toLowerCase().includes(search) || u.display_name.toLowerCase().includes(search),
        );
        const page: PaginatedUserRowList = { count: results.length, next: null, previous: null, results };
        return { status: 200, body: page };
      }
      case "GET /api/v1/ehr/audit-events/":
        if (!this.me) return notSignedIn;
        if (!this.me.roles.includes("admin")) {
          return { status: 403, body: { code: "permission_denied", detail: "You do not have permission to do that." } };
        }
        return this.auditEventList(request.query);
      case "GET /api/v1/realtime/events/": {
        const stream = request.query.get("stream") ?? "";
        const after = Number(request.query.get("after") ?? 0);
        const all = this.events.get(stream) ?? [];
        return {
          status: 200,
          body: { stream, last_seq: all.at(-1)?.seq ?? 0, events: all.filter((e) => e.seq > after).slice(0, 500) },
        };
      }
    }
    const userAction = /^POST \/api\/v1\/ehr\/users\/(\d+)\/(activate|deactivate)\/$/.exec(route);
    if (userAction) {
      const id = Number(userAction[1]);
      if (userAction[2] === "deactivate" && id === this.me?.id) {
        return { status: 400, body: { code: "cannot_deactivate_self", detail: "You cannot deactivate yourself." } };
      }
      const user = this.users.find((u) => u.id === id);
      if (!user) return { status: 404, body: { code: "not_found", detail: "Not found." } };
      const index = this.users.indexOf(user);
      const updated: UserRow = { ...user, is_active: userAction[2] === "activate" };
      this.users[index] = updated;
      return { status: 200, body: { ...updated } };
    }
    return { status: 404, body: { code: "not_found", detail: `No fake for ${route}` } };
  }
}
