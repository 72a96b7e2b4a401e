/**
 * The notifications API (docs/notifications.md) as an in-memory fake, installed on a FakeBackend: reminder health
 * per day and channel (admins, schedulers), failed messages paged 25 at a time, resend once (409 `not_resendable`
 * after), and the signed-in patient's preferences with the API's validation (400 `invalid` + `fields`, nothing saved).
 */
import type {
  MessageFailure,
  NotificationHealthDay,
  NotificationPreference,
  PreferenceChannel,
} from "../api/types";
import type { FakeBackend, FakeReply, FakeRequest } from "./backend";

const N = "/api/v1/notifications";
export const FAILURE_PAGE_SIZE = 25;

export function makeHealthDay(overrides: Partial<NotificationHealthDay> = {}): NotificationHealthDay {
  return {
    date: "2026-03-04",
    channel: "sms",
    queued: 0,
    sent: 10,
    delivered: 9,
    failed: 1,
    undeliverable: 0,
    fell_back: 1,
    ...overrides,
  };
}

export function makeFailure(overrides: Partial<MessageFailure> = {}): MessageFailure {
  return {
    id: "6f1c2a52-0000-4000-8000-000000000001",
    kind: "reminder",
    channel: "sms",
    state: "failed",
    attempts: 3,
    last_error_code: "30003",
    recipient_masked: "•••••••0042",
    patient_name: "Ada Abbott",
    created_at: "2026-03-04T09:15:00Z",
    fell_back_to: "email",
    resendable: true,
    ...overrides,
  };
}

export function makePreference(overrides: Partial<NotificationPreference> = {}): NotificationPreference {
  return {
    channels: ["sms", "email"],
    language: "en",
    languages: [
      { code: "en", name: "English" },
      { code: "es", name: "Español" },
      { code: "pt", name: "Português" },
    ],
    sms_opt_out: false,
    email_opt_out: false,
    phone_masked: "•••••••0042",
    email_masked: "a•••@example.test",
    ...overrides,
  };
}

const forbidden: FakeReply = {
  status: 403,
  body: { code: "permission_denied", detail: "Only administrators and schedulers see reminder health." },
};

export class FakeNotifications {
  days: NotificationHealthDay[] = [];
  /** Newest first, as the API orders them. */
  failures: MessageFailure[] = [];
  preference: NotificationPreference = makePreference();
  /** Answers the next preferences read / save instead of the fake (once), e.g. a 400 or a 503. */
  nextRead: FakeReply | null = null;
  nextUpdate: FakeReply | null = null;
  /** Original message id → the message its resend queued. */
  readonly resent = new Map<string, string>();
  private nextResend = 1;

  constructor(private readonly backend: FakeBackend) {
    backend.on(`GET ${N}/health/`, (request) => this.health(request));
    backend.on(`GET ${N}/failures/`, (request) => this.failurePage(request));
    backend.on(`GET ${N}/preferences/`, () => this.once("nextRead") ?? this.patientOnly() ?? { status: 200, body: this.preference });
    backend.on(
      `PUT ${N}/preferences/`,
      (request) => this.csrf(request) ?? this.once("nextUpdate") ?? this.patientOnly() ?? this.update(request),
    );
  }

  /** Lists a failed message and answers its resend route. */
  addFailure(failure: MessageFailure): MessageFailure {
    this.failures.push(failure);
    this.backend.on(`POST ${N}/messages/${failure.id}/resend/`, (request) => this.csrf(request) ?? this.resend(failure.id));
    return failure;
  }

  healthCalls(): URLSearchParams[] {
    return this.backend.calls(`GET ${N}/health/`).map((call) => call.query);
  }

  failureCalls(): URLSearchParams[] {
    return this.backend.calls(`GET ${N}/failures/`).map((call) => call.query);
  }

  updateCalls(): unknown[] {
    return this.backend.calls(`PUT ${N}/preferences/`).map((call) => call.body);
  }

  private once(slot: "nextRead" | "nextUpdate"): FakeReply | null {
    const reply = this[slot];
    this[slot] = null;
    return reply;
  }

  /** Unsafe requests without the session's CSRF token are refused, as Django does. */
  private csrf(request: FakeRequest): FakeReply | null {
    if (request.headers["X-CSRFToken"] === this.backend.csrfToken) return null;
    return { status: 403, body: { code: "csrf_failed", detail: "CSRF verification failed." } };
  }

  private staffOnly(): FakeReply | null {
    const me = this.backend.me;
    if (!me) return { status: 401, body: { code: "not_authenticated", detail: "Sign in first." } };
    return me.roles.some((role) => role === "admin" || role === "scheduler") ? null : forbidden;
  }

  private patientOnly(): FakeReply | null {
    const me = this.backend.me;
    if (!me) return { status: 401, body: { code: "not_authenticated", detail: "Sign in first." } };
    if (!me.roles.includes("patient")) {
      return { status: 403, body: { code: "permission_denied", detail: "Only patients have notification preferences here." } };
    }
    return null;
  }

  private health(request: FakeRequest): FakeReply {
    const denied = this.staffOnly();
    if (denied) return denied;
    const raw = request.query.get("days") ?? "14";
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 90) {
      return { status: 400, body: { code: "invalid", detail: "Some fields are not valid.", fields: { days: ["A whole number from 1 to 90."] } } };
    }
    // The fake's "today" is the newest listed day; older days fall out of a shorter period.
    const newest = this.days.map((d) => d.date).sort().at(-1);
    const first = newest ? new Date(Date.parse(`${newest}T00:00:00Z`) - (Number(raw) - 1) * 86_400_000) : null;
    const days = this.days
      .filter((d) => !first || Date.parse(`${d.date}T00:00:00Z`) >= first.getTime())
      .sort((a, b) => (a.date === b.date ? a.channel.localeCompare(b.channel) : a.date.localeCompare(b.date)));
    const sent = days.reduce((n, d) => n + d.sent, 0);
    const delivered = days.reduce((n, d) => n + d.delivered, 0);
    return {
      status: 200,
      body: {
        days,
        totals: {
          sent,
          delivered,
          failed: days.reduce((n, d) => n + d.failed + d.undeliverable, 0),
          fell_back: days.reduce((n, d) => n + d.fell_back, 0),
          delivery_rate: sent ? Math.round((delivered / sent) * 10_000) / 10_000 : null,
        },
      },
    };
  }

  private failurePage(request: FakeRequest): FakeReply {
    const denied = this.staffOnly();
    if (denied) return denied;
    const pageNumber = Number(request.query.get("page") ?? 1);
    const pages = Math.max(1, Math.ceil(this.failures.length / FAILURE_PAGE_SIZE));
    if (!Number.isInteger(pageNumber) || pageNumber < 1 || pageNumber > pages) {
      return { status: 404, body: { code: "not_found", detail: "Invalid page." } };
    }
    const link = (n: number) => `http://consulta.test${N}/failures/?page=${n}`;
    return {
      status: 200,
      body: {
        count: this.failures.length,
        next: pageNumber < pages ? link(pageNumber + 1) : null,
        previous: pageNumber > 1 ? link(pageNumber - 1) : null,
        results: this.failures
          .slice((pageNumber - 1) * FAILURE_PAGE_SIZE, pageNumber * FAILURE_PAGE_SIZE)
          .map((f) => ({ ...f, resendable: f.resendable && !this.resent.has(f.id) })),
      },
    };
  }

  private resend(id: string): FakeReply {
    const denied = this.staffOnly();
    if (denied) return denied;
    const original = this.failures.find((f) => f.id === id);
    if (!original) return { status: 404, body: { code: "not_found", detail: "No such message." } };
    if (!original.resendable || this.resent.has(id)) {
      return { status: 409, body: { code: "not_resendable", detail: "This message was resent already." } };
    }
    const newId = `9a7b0000-0000-4000-8000-${String(this.nextResend++).padStart(12, "0")}`;
    this.resent.set(id, newId);
    return { status: 201, body: { id: newId, state: "queued" } };
  }

  /** The API's whole-body validation: one bad member and nothing is saved. */
  private update(request: FakeRequest): FakeReply {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const fields: Record<string, string[]> = {};
    const known = ["channels", "language", "sms_opt_out", "email_opt_out", "time_zone"];
    for (const name of Object.keys(body)) if (!known.includes(name)) fields[name] = ["Unknown field."];
    const channels = body.channels;
    if (
      channels !== undefined &&
      (!Array.isArray(channels) ||
        channels.length === 0 ||
        channels.some((c) => c !== "sms" && c !== "email") ||
        new Set(channels).size !== channels.length)
    ) {
      fields.channels = ["Give a non-empty ordered list of distinct channels from: sms, email."];
    }
    const codes = this.preference.languages.map((l) => l.code);
    if (body.language !== undefined && !codes.includes(String(body.language))) {
      fields.language = [`Use one of: ${[...codes].sort().join(", ")}.`];
    }
    for (const flag of ["sms_opt_out", "email_opt_out"]) {
      if (flag in body && typeof body[flag] !== "boolean") fields[flag] = ["Must be true or false."];
    }
    if (Object.keys(fields).length) {
      return { status: 400, body: { code: "invalid", detail: "Some fields are not valid.", fields } };
    }
    this.preference = {
      ...this.preference,
      ...(channels !== undefined ? { channels: channels as PreferenceChannel[] } : {}),
      ...(body.language !== undefined ? { language: String(body.language) } : {}),
      ...(typeof body.sms_opt_out === "boolean" ? { sms_opt_out: body.sms_opt_out } : {}),
      ...(typeof body.email_opt_out === "boolean" ? { email_opt_out: body.email_opt_out } : {}),
    };
    return { status: 200, body: this.preference };
  }
}
