import type { FetchLike } from "../api/client";
import type { Me, PaginatedUserRowList, StreamEvent, UserRow } from "../api/types";

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

/**
 * An in-memory stand-in for the Django API, speaking the agreed JSON contract:
 * auth (csrf/login/logout/me), health, users, realtime events.
 */
export class FakeBackend {
  /** The user the session cookie belongs to (null: anonymous). */
  me: Me | null = null;
  /** username → password → user. */
  accounts = new Map<string, { password: string; me: Me }>();
  users: UserRow[] = [];
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
