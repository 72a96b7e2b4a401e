import type { FetchLike } from "../api/client";
import { FakeClinical } from "./clinicalBackend";
import type {
  AccessLogRow,
  AuditEventRow,
  DuplicateCandidate,
  FieldChange,
  Me,
  PaginatedAccessLogRowList,
  PaginatedAuditEventRowList,
  PaginatedUserRowList,
  PatientDetail,
  PatientHistoryEntry,
  PatientSummary,
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
  headers?: Record<string, string>;
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
    patient_id: null,
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

export function makePatient(overrides: Partial<PatientDetail> = {}): PatientDetail {
  const given = overrides.given_name ?? "Ada";
  const family = overrides.family_name ?? "Abbott";
  return {
    id: 42,
    mrn: "MRN00000042",
    display_name: `${given} ${family}`,
    given_name: given,
    family_name: family,
    birth_date: "1985-03-02",
    sex: "female",
    gender_identity: "",
    phone: "+15550000042",
    email: "ada@example.test",
    address_line: "12 River Road",
    city: "Springfield",
    postal_code: "12345",
    country: "US",
    preferred_language: "en",
    emergency_contact_name: "Ben Abbott",
    emergency_contact_phone: "+15550005042",
    national_id: "•••• 0042",
    insurance_member_id: "•••• 0042",
    user_id: null,
    status: "active",
    merged_into: null,
    version: 1,
    created_at: "2026-01-05T09:00:00Z",
    updated_at: "2026-01-05T09:00:00Z",
    ...overrides,
  };
}

export function makeAccessLogRow(overrides: Partial<AccessLogRow> = {}): AccessLogRow {
  return {
    occurred_at: "2026-03-04T10:20:30Z",
    who: "Sam Whitfield",
    role: "Front desk",
    what: "viewed your record",
    purpose: "Your care",
    emergency: false,
    ...overrides,
  };
}

/** The fields a PATCH may change (the API's PatientUpdateSerializer) and registration may set. */
const PATIENT_WRITABLE = [
  "given_name",
  "family_name",
  "birth_date",
  "sex",
  "gender_identity",
  "phone",
  "email",
  "address_line",
  "city",
  "postal_code",
  "country",
  "preferred_language",
  "emergency_contact_name",
  "emergency_contact_phone",
  "national_id",
  "insurance_member_id",
] as const;
const PATIENT_IDENTIFIERS = ["national_id", "insurance_member_id"];
const PATIENT_REQUIRED = ["given_name", "family_name", "birth_date", "sex"];
/** A change to one of these can make a record look like another (the API's DUPLICATE_FIELDS). */
const DUPLICATE_FIELDS = ["given_name", "family_name", "birth_date", "phone", "email"] as const;
const SEXES = ["male", "female", "other", "unknown"];
/** The API's page size (AccessPagination). */
export const ACCESS_LOG_PAGE_SIZE = 50;

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
  /** Patient records, as the API shows them (identifiers masked). */
  patients: PatientDetail[] = [];
  /** Patient id → versions, oldest first. */
  patientHistory = new Map<number, PatientHistoryEntry[]>();
  /** The signed-in patient's access log, newest first. */
  accessLog: AccessLogRow[] = [];
  /** The clinical record and break-the-glass (chart, encounters, notes, grants). */
  readonly clinical = new FakeClinical(() => this.me);
  private nextPatientId = 1000;
  csrfToken = "token-1";
  readonly requests: FakeRequest[] = [];
  private readonly overrides = new Map<string, Handler>();

  /** Replaces one endpoint, e.g. on("POST /api/v1/auth/login/", () => ({status: 429, body: ...})). */
  on(route: string, handler: Handler): void {
    this.overrides.set(route, handler);
  }

  /** Removes an override set with `on`: the endpoint answers as the fake API again. */
  off(route: string): void {
    this.overrides.delete(route);
  }

  account(username: string, password: string, me: Me): void {
    this.accounts.set(username, { password, me });
  }

  /** Adds a record with its first version (as registration would), e.g. for a test's starting data. */
  addPatient(patient: PatientDetail, registeredBy = "Alex Admin"): PatientDetail {
    this.patients.push(patient);
    const diff = PATIENT_WRITABLE.filter((name) => patient[name] !== "" && patient[name] !== null).map((name) => ({
      field: name,
      from: null,
      to: patient[name],
    }));
    this.patientHistory.set(patient.id, [
      {
        version: 1,
        changed_fields: diff.map((d) => d.field),
        actor: { id: 1, display_name: registeredBy },
        reason: "registration",
        recorded_at: patient.created_at,
        diff,
      },
    ]);
    return patient;
  }

  /** Someone else changes a record (as another desk would): a new version, for conflict tests. */
  changePatient(id: number, changes: Partial<PatientDetail>, by = "Jo Marchetti", reason = "Changed elsewhere"): PatientDetail {
    const index = this.patients.findIndex((p) => p.id === id);
    const before = this.patients[index];
    if (!before) throw new Error(`no patient ${id}`);
    const after = this.withNames({ ...before, ...changes, version: before.version + 1 });
    this.patients[index] = after;
    this.recordVersion(before, after, by, reason);
    return after;
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
      headers: { "Content-Type": "application/json", ...reply.headers },
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

  private withNames(patient: PatientDetail): PatientDetail {
    return { ...patient, display_name: `${patient.given_name} ${patient.family_name}` };
  }

  private recordVersion(before: PatientDetail, after: PatientDetail, by: string, reason: string): void {
    const diff: FieldChange[] = PATIENT_WRITABLE.filter((name) => before[name] !== after[name]).map((name) => ({
      field: name,
      from: before[name] === "" ? null : before[name],
      to: after[name] === "" ? null : after[name],
    }));
    const versions = this.patientHistory.get(after.id) ?? [];
    versions.push({
      version: after.version,
      changed_fields: diff.map((d) => d.field),
      actor: { id: this.me?.id ?? 1, display_name: by },
      reason,
      recorded_at: after.updated_at,
      diff,
    });
    this.patientHistory.set(after.id, versions);
  }

  private static summary(patient: PatientDetail): PatientSummary {
    const { id, mrn, display_name, birth_date, sex, status } = patient;
    return { id, mrn, display_name, birth_date, sex, status };
  }

  /** Field checks of the API (a subset): required fields, choices, phone, email, date. */
  private static patientFieldErrors(body: Record<string, unknown>, required: boolean): Record<string, string[]> {
    const fields: Record<string, string[]> = {};
    for (const name of Object.keys(body)) {
      if (!(PATIENT_WRITABLE as readonly string[]).includes(name) && !["allow_duplicate", "reason", "user_id"].includes(name)) {
        fields[name] = ["Unknown or read-only field."];
      }
    }
    if (required) {
      for (const name of PATIENT_REQUIRED) if (!body[name]) fields[name] = ["This field is required."];
    }
    const sex = body.sex;
    if (sex !== undefined && sex !== "" && !SEXES.includes(String(sex))) fields.sex = [`"${String(sex)}" is not a valid choice.`];
    for (const name of ["phone", "emergency_contact_phone"]) {
      const value = body[name];
      if (typeof value === "string" && value && !/^\+?[0-9]{6,15}$/.test(value.replace(/[\s().-]/g, ""))) {
        fields[name] = ["Not a phone number (6 to 15 digits, optional leading +)."];
      }
    }
    if (typeof body.email === "string" && body.email && !body.email.includes("@")) fields.email = ["Enter a valid email address."];
    if (typeof body.birth_date === "string" && body.birth_date && !/^\d{4}-\d{2}-\d{2}$/.test(body.birth_date)) {
      fields.birth_date = ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."];
    }
    return fields;
  }

  private static invalid(fields: Record<string, string[]>): FakeReply {
    return { status: 400, body: { code: "invalid", detail: "Some fields are not valid.", fields } };
  }

  private static stored(name: string, value: unknown): unknown {
    if (PATIENT_IDENTIFIERS.includes(name)) {
      const text = String(value ?? "").replace(/[\s-]/g, "").toUpperCase();
      return text ? `•••• ${text.slice(-4)}` : null;
    }
    if (name === "phone" || name === "emergency_contact_phone") return String(value ?? "").replace(/[\s().-]/g, "");
    if (name === "country") return String(value ?? "").toUpperCase();
    return typeof value === "string" ? value.trim() : value;
  }

  private patientSearch(query: URLSearchParams): FakeReply {
    const q = (query.get("q") ?? "").trim().toLowerCase();
    const birthDate = query.get("birth_date") ?? "";
    const mrn = (query.get("mrn") ?? "").trim().toUpperCase();
    if (!q && !birthDate && !mrn && !query.get("identifier")) {
      return FakeBackend.invalid({ q: ["Give a name, birth date, MRN or identifier to search by."] });
    }
    if (q && q.length < 2) return FakeBackend.invalid({ q: ["At least 2 characters."] });
    if (mrn && !/^(MRN)?[0-9]{1,8}$/.test(mrn)) return FakeBackend.invalid({ mrn: ["This value does not match the required pattern."] });
    const mrnFull = mrn ? `MRN${mrn.replace(/^MRN/, "").padStart(8, "0")}` : "";
    const limit = Number(query.get("limit") ?? 25);
    const results = this.patients
      .filter(
        (p) =>
          (!q || q.split(/\s+/).every((word) => p.display_name.toLowerCase().includes(word))) &&
          (!birthDate || p.birth_date === birthDate) &&
          (!mrnFull || p.mrn === mrnFull) &&
          (mrnFull || p.status === "active"),
      )
      .slice(0, limit)
      .map(FakeBackend.summary);
    return { status: 200, body: { results } };
  }

  private patientRegister(body: Record<string, unknown>): FakeReply {
    const fields = FakeBackend.patientFieldErrors(body, true);
    if (Object.keys(fields).length) return FakeBackend.invalid(fields);
    if (!body.allow_duplicate) {
      const refused = this.duplicateOf(body, null, "register anyway");
      if (refused) return refused;
    }
    const id = this.nextPatientId++;
    const values: Partial<PatientDetail> = {};
    for (const name of PATIENT_WRITABLE) {
      if (body[name] !== undefined) (values as Record<string, unknown>)[name] = FakeBackend.stored(name, body[name]);
    }
    const now = new Date().toISOString();
    const patient = this.withNames(
      makePatient({
        gender_identity: "",
        phone: "",
        email: "",
        address_line: "",
        city: "",
        postal_code: "",
        country: "",
        preferred_language: "en",
        emergency_contact_name: "",
        emergency_contact_phone: "",
        national_id: null,
        insurance_member_id: null,
        ...values,
        id,
        mrn: `MRN${String(id).padStart(8, "0")}`,
        created_at: now,
        updated_at: now,
      }),
    );
    this.addPatient(patient, this.me?.display_name);
    return { status: 201, body: patient, headers: { ETag: `"${patient.version}"` } };
  }

  /** The API's 409 when `values` (names, birth date) match another active patient exactly (the real check is fuzzier). */
  private duplicateOf(values: Record<string, unknown>, selfId: number | null, override: string): FakeReply | null {
    const name = `${String(values.given_name)} ${String(values.family_name)}`.trim().toLowerCase();
    const candidates: DuplicateCandidate[] = this.patients
      .filter((p) => p.id !== selfId && p.status === "active" && p.birth_date === values.birth_date)
      .filter((p) => p.display_name.toLowerCase() === name)
      .map((p) => ({ id: p.id, mrn: p.mrn, name: p.display_name, birth_date: p.birth_date }));
    if (!candidates.length) return null;
    const detail = `This person may already be registered. Open the existing record, or ${override}.`;
    return { status: 409, body: { code: "duplicate_suspected", detail, candidates } };
  }

  private patientUpdate(id: number, request: FakeRequest): FakeReply {
    const index = this.patients.findIndex((p) => p.id === id);
    const before = this.patients[index];
    if (!before) return { status: 404, body: { code: "not_found", detail: "No such patient." } };
    const ifMatch = request.headers["If-Match"];
    if (!ifMatch) return { status: 428, body: { code: "precondition_required", detail: "Send If-Match." } };
    const match = /^"(\d+)"$/.exec(ifMatch);
    if (!match) return { status: 400, body: { code: "invalid_if_match", detail: "If-Match must be one version ETag." } };
    const body = (request.body ?? {}) as Record<string, unknown>;
    const fields = FakeBackend.patientFieldErrors(body, false);
    if (!body.reason || !String(body.reason).trim()) fields.reason = ["This field is required."];
    if (Object.keys(fields).length) return FakeBackend.invalid(fields);
    if (Number(match[1]) !== before.version) {
      return {
        status: 412,
        body: {
          code: "version_conflict",
          detail: "The record changed since you read it. Reload it and apply your change again.",
          current_version: before.version,
        },
      };
    }
    const after: PatientDetail = { ...before };
    for (const name of PATIENT_WRITABLE) {
      if (body[name] !== undefined) (after as Record<string, unknown>)[name] = FakeBackend.stored(name, body[name]);
    }
    if (PATIENT_WRITABLE.every((name) => after[name] === before[name])) {
      return { status: 200, body: before, headers: { ETag: `"${before.version}"` } };
    }
    const lookalike = DUPLICATE_FIELDS.some((name) => after[name] !== before[name]);
    if (lookalike && !body.allow_duplicate) {
      const refused = this.duplicateOf(after as unknown as Record<string, unknown>, before.id, "save anyway");
      if (refused) return refused;
    }
    const updated = this.withNames({ ...after, version: before.version + 1, updated_at: new Date().toISOString() });
    this.patients[index] = updated;
    this.recordVersion(before, updated, this.me?.display_name ?? "Someone", String(body.reason).trim());
    return { status: 200, body: updated, headers: { ETag: `"${updated.version}"` } };
  }

  private accessLogPage(query: URLSearchParams): FakeReply {
    const pageNumber = Number(query.get("page") ?? 1);
    const pages = Math.max(1, Math.ceil(this.accessLog.length / ACCESS_LOG_PAGE_SIZE));
    if (!Number.isInteger(pageNumber) || pageNumber < 1 || pageNumber > pages) {
      return { status: 404, body: { code: "not_found", detail: "Invalid page." } };
    }
    const link = (n: number) => `http://consulta.test/api/v1/ehr/me/access-log/?page=${n}`;
    const body: PaginatedAccessLogRowList = {
      count: this.accessLog.length,
      next: pageNumber < pages ? link(pageNumber + 1) : null,
      previous: pageNumber > 1 ? link(pageNumber - 1) : null,
      results: this.accessLog.slice((pageNumber - 1) * ACCESS_LOG_PAGE_SIZE, pageNumber * ACCESS_LOG_PAGE_SIZE),
    };
    return { status: 200, body };
  }

  private patientRoute(request: FakeRequest): FakeReply | null {
    const staff = ["practitioner", "nurse", "scheduler", "billing", "admin"];
    const isStaff = this.me?.roles.some((role) => staff.includes(role)) ?? false;
    const denied = { status: 403, body: { code: "permission_denied", detail: "You may not do this with this patient's record." } };
    const route = `${request.method} ${request.path}`;
    if (route === "GET /api/v1/ehr/patients/") return isStaff ? this.patientSearch(request.query) : denied;
    if (route === "POST /api/v1/ehr/patients/") {
      return isStaff ? this.patientRegister((request.body ?? {}) as Record<string, unknown>) : denied;
    }
    const merge = /^POST \/api\/v1\/ehr\/patients\/(\d+)\/merge\/$/.exec(route);
    if (merge) {
      const mayMerge = this.me?.roles.some((role) => role === "admin" || role === "scheduler") ?? false;
      return mayMerge ? this.patientMerge(Number(merge[1]), (request.body ?? {}) as Record<string, unknown>) : denied;
    }
    const detail = /^(GET|PATCH) \/api\/v1\/ehr\/patients\/(\d+)\/(history\/)?$/.exec(route);
    if (!detail) return null;
    if (!isStaff) return denied;
    const id = Number(detail[2]);
    const outside = this.clinical.patientAccess(id);
    if (outside) return outside;
    const patient = this.patients.find((p) => p.id === id);
    if (detail[1] === "PATCH" && !detail[3]) return this.patientUpdate(id, request);
    if (detail[1] !== "GET") return null;
    if (!patient) return { status: 404, body: { code: "not_found", detail: "No such patient." } };
    if (detail[3]) return { status: 200, body: { results: this.patientHistory.get(id) ?? [] } };
    return { status: 200, body: patient, headers: { ETag: `"${patient.version}"` } };
  }

  /** The merge as the API answers it: refusals in its codes; on success both records get a version. */
  private patientMerge(sourceId: number, body: Record<string, unknown>): FakeReply {
    const source = this.patients.find((p) => p.id === sourceId);
    const target = this.patients.find((p) => p.id === body.into);
    const reason = String(body.reason ?? "").trim();
    if (!reason) return FakeBackend.invalid({ reason: ["This field may not be blank."] });
    if (!source || !target) return { status: 404, body: { code: "not_found", detail: "No such patient." } };
    if (source.id === target.id) return { status: 400, body: { code: "merge_same_patient", detail: "Choose another record." } };
    if (source.status === "merged") {
      return { status: 409, body: { code: "patient_already_merged", detail: "Already merged.", merged_into: source.merged_into } };
    }
    for (const [record, patient] of [["source", source], ["target", target]] as const) {
      if (patient.status !== "active") {
        return { status: 409, body: { code: "merge_patient_not_active", detail: `The ${record} record is ${patient.status}.`, record } };
      }
      const expected = record === "source" ? body.source_version : body.target_version;
      if (expected !== patient.version) {
        return {
          status: 412,
          body: { code: "version_conflict", detail: "Changed.", current_version: patient.version, record },
        };
      }
    }
    if (source.user_id !== null && target.user_id !== null) {
      return { status: 409, body: { code: "merge_portal_account_conflict", detail: "Both have a portal login." } };
    }
    const by = this.me?.display_name ?? "Someone";
    this.changePatient(source.id, { status: "merged", merged_into: target.id, user_id: null }, by, `merged into ${target.mrn}: ${reason}`);
    const survivor = this.changePatient(target.id, { user_id: target.user_id ?? source.user_id }, by, `merged from ${source.mrn}: ${reason}`);
    return { status: 200, body: survivor, headers: { ETag: `"${survivor.version}"` } };
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
      case "GET /api/v1/ehr/me/access-log/":
        if (!this.me) return notSignedIn;
        if (!this.me.roles.includes("patient")) {
          return { status: 403, body: { code: "permission_denied", detail: "Only patients have an access log." } };
        }
        return this.accessLogPage(request.query);
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
    if (request.path.startsWith("/api/v1/ehr/")) {
      if (!this.me) return notSignedIn;
      const reply = this.clinical.handle(request);
      if (reply) return reply;
    }
    if (request.path.startsWith("/api/v1/ehr/patients/")) {
      if (!this.me) return notSignedIn;
      const reply = this.patientRoute(request);
      if (reply) return reply;
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
