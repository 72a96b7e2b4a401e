/**
 * The clinical part of the fake API (docs/clinical-record.md, docs/access.md): chart summary and records with history,
 * encounters, SOAP notes (If-Match draft saves with the 412 merge body, sign, addenda), break-the-glass and its review.
 */
import type {
  Allergy,
  BreakGlassGrant,
  Condition,
  Document,
  Encounter,
  FieldChange,
  Me,
  Medication,
  Note,
  Observation,
  RecordHistoryEntry,
} from "../api/types";
import type { FakeReply, FakeRequest } from "./backend";

/** The ICD-10-CM codes the fake knows (the real API asks simple-icd-10-cm). */
export const FAKE_ICD10: Record<string, string> = {
  "E11.9": "Type 2 diabetes mellitus without complications",
  I10: "Essential (primary) hypertension",
  "J45.909": "Unspecified asthma, uncomplicated",
};

const LOINC: Record<string, { display: string; unit: string; min: number; max: number; noun: string }> = {
  "8867-4": { display: "Heart rate", unit: "/min", min: 20, max: 300, noun: "heart rate" },
  "8310-5": { display: "Body temperature", unit: "Cel", min: 25, max: 45, noun: "body temperature" },
  "29463-7": { display: "Body weight", unit: "kg", min: 0.3, max: 650, noun: "body weight" },
};

type RecordKind = "conditions" | "allergies" | "medications" | "observations" | "encounters" | "notes";
type AnyRecord = { id: number; version: number } & Record<string, unknown>;

const invalid = (fields: Record<string, string[]>): FakeReply => ({
  status: 400,
  body: { code: "invalid", detail: "Some fields are not valid.", fields },
});
const notFound: FakeReply = { status: 404, body: { code: "not_found", detail: "Not found." } };
const etagged = (status: number, row: { version: number }): FakeReply => ({
  status,
  body: row,
  headers: { ETag: `"${row.version}"` },
});

export class FakeClinical {
  conditions: Condition[] = [];
  allergies: Allergy[] = [];
  medications: Medication[] = [];
  observations: Observation[] = [];
  encounters: Encounter[] = [];
  notes: Note[] = [];
  grants: BreakGlassGrant[] = [];
  documents: Document[] = [];
  /** Patient ids outside the signed-in clinician's care: 403 `break_glass_required` until they hold a grant. */
  outsideCare = new Set<number>();
  /** Patient ids the signed-in user may not open at all: 403 `permission_denied`. */
  forbidden = new Set<number>();
  /** Record "kind:id" → versions, oldest first. */
  history = new Map<string, RecordHistoryEntry[]>();
  private nextId = 500;
  now = (): string => new Date().toISOString();

  constructor(private readonly who: () => Me | null) {}

  private id(): number {
    return this.nextId++;
  }

  private actor() {
    const me = this.who();
    return { id: me?.id ?? 1, display_name: me?.display_name ?? "Someone" };
  }

  private record(kind: RecordKind, row: AnyRecord, before: AnyRecord | null, reason: string): void {
    const key = `${kind}:${row.id}`;
    const skip = new Set(["id", "version", "updated_at", "addenda"]);
    const diff: FieldChange[] = Object.keys(row)
      .filter((f) => !skip.has(f) && (before ? before[f] !== row[f] : row[f] !== "" && row[f] !== null))
      .map((f) => ({ field: f, from: before ? before[f] : null, to: row[f] }));
    const versions = this.history.get(key) ?? [];
    versions.push({
      version: row.version,
      changed_fields: diff.map((d) => d.field),
      actor: this.actor(),
      reason,
      recorded_at: this.now(),
      diff,
      data: { ...row },
    });
    this.history.set(key, versions);
  }

  /** Someone else's save of a draft (another tab): a new version, for the 412 merge tests. */
  changeNote(id: number, sections: Partial<Pick<Note, "subjective" | "objective" | "assessment" | "plan">>): Note {
    const index = this.notes.findIndex((n) => n.id === id);
    const before = this.notes[index];
    if (!before) throw new Error(`no note ${id}`);
    const after = { ...before, ...sections, version: before.version + 1, updated_at: this.now() };
    this.notes[index] = after;
    this.record("notes", after as unknown as AnyRecord, before as unknown as AnyRecord, "draft saved");
    return after;
  }

  addCondition(patientId: number, code: string, overrides: Partial<Condition> = {}): Condition {
    const row: Condition = {
      id: this.id(),
      patient_id: patientId,
      encounter_id: null,
      code,
      code_display: FAKE_ICD10[code] ?? code,
      clinical_status: "active",
      verification_status: "confirmed",
      onset_date: null,
      abatement_date: null,
      note: "",
      recorder_id: this.actor().id,
      version: 1,
      updated_at: this.now(),
      ...overrides,
    };
    this.conditions.push(row);
    this.record("conditions", row as unknown as AnyRecord, null, "created");
    return row;
  }

  addDocument(patientId: number, overrides: Partial<Document> = {}): Document {
    const me = this.actor();
    const now = this.now();
    const row: Document = {
      id: this.id(),
      patient_id: patientId,
      encounter_id: null,
      type: "clinical-note",
      title: "Document",
      content_type: "application/pdf",
      size_bytes: 16,
      sha256: "0".repeat(64),
      original_filename: "document.pdf",
      uploaded_by_id: me.id,
      uploaded_by_display_name: me.display_name,
      status: "current",
      version: 1,
      created_at: now,
      updated_at: now,
      ...overrides,
    };
    this.documents.push(row);
    return row;
  }

  addNote(encounterId: number, overrides: Partial<Note> = {}): Note {
    const encounter = this.encounters.find((e) => e.id === encounterId);
    const me = this.actor();
    const now = this.now();
    const note: Note = {
      id: this.id(),
      encounter_id: encounterId,
      patient_id: encounter?.patient_id ?? 0,
      author_id: me.id,
      author_display_name: me.display_name,
      subjective: "",
      objective: "",
      assessment: "",
      plan: "",
      status: "draft",
      signed_at: null,
      signed_by_id: null,
      version: 1,
      created_at: now,
      updated_at: now,
      addenda: [],
      ...overrides,
    };
    this.notes.push(note);
    this.record("notes", note as unknown as AnyRecord, null, "draft created");
    return note;
  }

  addEncounter(patientId: number, overrides: Partial<Encounter> = {}): Encounter {
    const me = this.who();
    const location = me?.locations[0];
    const row: Encounter = {
      id: this.id(),
      patient_id: patientId,
      practitioner_id: me?.id ?? 1,
      practitioner_display_name: me?.display_name ?? "Someone",
      location_id: location?.id ?? 1,
      location_name: location?.name ?? "Clinic",
      modality: "in-person",
      status: "in-progress",
      period_start: this.now(),
      period_end: null,
      reason: "",
      duration_seconds: null,
      version: 1,
      planned_start: null,
      planned_end: null,
      appointment_id: null,
      ...overrides,
    };
    this.encounters.push(row);
    this.record("encounters", row as unknown as AnyRecord, null, "encounter opened");
    return row;
  }

  addGrant(overrides: Partial<BreakGlassGrant> = {}): BreakGlassGrant {
    const granted = new Date();
    const grant: BreakGlassGrant = {
      id: this.id(),
      actor: { id: 8, display_name: "Dr Samuel Lindqvist" },
      actor_role: "practitioner",
      patient_id: 42,
      patient_mrn: "MRN00000042",
      patient_name: "Ada Abbott",
      reason: "Unconscious in the waiting room, need allergies",
      granted_at: granted.toISOString(),
      expires_at: new Date(granted.getTime() + 4 * 3600_000).toISOString(),
      review_status: "pending",
      reviewed_by: null,
      reviewed_at: null,
      review_note: "",
      ...overrides,
    };
    this.grants.push(grant);
    return grant;
  }

  private access(patientId: number): FakeReply | null {
    const me = this.who();
    if (this.forbidden.has(patientId)) {
      return { status: 403, body: { code: "permission_denied", detail: "You may not do this with this patient's record." } };
    }
    if (
      this.outsideCare.has(patientId) &&
      !this.grants.some((g) => g.patient_id === patientId && g.actor.id === me?.id && Date.parse(g.expires_at) > Date.now())
    ) {
      return {
        status: 403,
        body: {
          code: "break_glass_required",
          detail: "This patient is not in your care. Open the record in an emergency (break-the-glass) with a reason.",
        },
      };
    }
    return null;
  }

  /** Access to a patient's demographics (the patient routes of FakeBackend ask this first). */
  patientAccess(patientId: number): FakeReply | null {
    return this.access(patientId);
  }

  private createCondition(patientId: number, body: Record<string, unknown>): FakeReply {
    const raw = String(body.code ?? "").trim().toUpperCase();
    const code = Object.keys(FAKE_ICD10).find((c) => c.replace(".", "") === raw.replace(".", ""));
    if (!code) return invalid({ code: [raw ? `'${raw}' is not an ICD-10-CM code.` : "This field is required."] });
    return etagged(201, this.addCondition(patientId, code, { note: String(body.note ?? "") }));
  }

  private createAllergy(patientId: number, body: Record<string, unknown>): FakeReply {
    if (!body.substance_text) return invalid({ substance_text: ["This field is required."] });
    const row: Allergy = {
      id: this.id(),
      patient_id: patientId,
      substance_text: String(body.substance_text),
      substance_code: "",
      substance_system: "",
      criticality: (body.criticality as Allergy["criticality"]) ?? "unable-to-assess",
      reaction: String(body.reaction ?? ""),
      clinical_status: "active",
      verification_status: "confirmed",
      recorder_id: this.actor().id,
      version: 1,
      updated_at: this.now(),
    };
    this.allergies.push(row);
    this.record("allergies", row as unknown as AnyRecord, null, "created");
    return etagged(201, row);
  }

  private createMedication(patientId: number, body: Record<string, unknown>): FakeReply {
    if (!body.medication_text) return invalid({ medication_text: ["This field is required."] });
    if (body.rxnorm_code !== undefined && !/^\d+$/.test(String(body.rxnorm_code))) {
      return invalid({ rxnorm_code: ["An RxNorm concept id is digits only (RxCUI), e.g. 197361."] });
    }
    const me = this.actor();
    const row: Medication = {
      id: this.id(),
      patient_id: patientId,
      encounter_id: null,
      medication_text: String(body.medication_text),
      rxnorm_code: String(body.rxnorm_code ?? ""),
      dose: String(body.dose ?? ""),
      route: String(body.route ?? ""),
      frequency: String(body.frequency ?? ""),
      status: "active",
      prescriber_id: me.id,
      prescriber_display_name: me.display_name,
      version: 1,
      updated_at: this.now(),
    };
    this.medications.push(row);
    this.record("medications", row as unknown as AnyRecord, null, "created");
    return etagged(201, row);
  }

  private createObservation(patientId: number, body: Record<string, unknown>): FakeReply {
    const spec = LOINC[String(body.code)];
    if (!spec) return invalid({ code: [`'${String(body.code)}' is not one of the LOINC codes recorded here.`] });
    if (body.unit !== undefined && body.unit !== spec.unit) {
      return invalid({ unit: [`${spec.display} is recorded in ${spec.unit} (UCUM), not '${String(body.unit)}'.`] });
    }
    const value = Number(body.value);
    if (typeof body.value !== "number" || Number.isNaN(value)) return invalid({ value: ["A valid number is required."] });
    if (value < spec.min || value > spec.max) {
      return invalid({
        value: [`${value} ${spec.unit} is not a possible ${spec.noun} (possible: ${spec.min} to ${spec.max} ${spec.unit}).`],
      });
    }
    const row: Observation = {
      id: this.id(),
      patient_id: patientId,
      encounter_id: null,
      code: String(body.code),
      code_display: spec.display,
      category: "vital-signs",
      value,
      unit: spec.unit,
      effective_at: String(body.effective_at ?? this.now()),
      status: "final",
      performer_id: this.actor().id,
      version: 1,
    };
    this.observations.push(row);
    this.record("observations", row as unknown as AnyRecord, null, "created");
    return etagged(201, row);
  }

  private summary(patientId: number): FakeReply {
    const latest = new Map<string, Observation>();
    for (const o of this.observations.filter((x) => x.patient_id === patientId && x.status !== "entered-in-error")) {
      const seen = latest.get(o.code);
      if (!seen || seen.effective_at <= o.effective_at) latest.set(o.code, o);
    }
    return {
      status: 200,
      body: {
        patient_id: patientId,
        problems: this.conditions.filter((c) => c.patient_id === patientId && c.clinical_status === "active"),
        allergies: this.allergies.filter((a) => a.patient_id === patientId && a.verification_status !== "entered-in-error"),
        medications: this.medications.filter((m) => m.patient_id === patientId && m.status === "active"),
        latest_observations: [...latest.values()],
      },
    };
  }

  private saveDraft(note: Note, request: FakeRequest): FakeReply {
    const ifMatch = request.headers["If-Match"];
    if (!ifMatch) return { status: 428, body: { code: "precondition_required", detail: "Send If-Match." } };
    if (note.author_id !== this.who()?.id) {
      return { status: 403, body: { code: "not_note_author", detail: "Only the note's author may edit its draft or sign it." } };
    }
    if (note.status !== "draft") {
      return { status: 409, body: { code: "note_signed", detail: "The note is signed and cannot change." } };
    }
    if (ifMatch !== `"${note.version}"`) {
      const { subjective, objective, assessment, plan } = note;
      return {
        status: 412,
        body: {
          code: "version_conflict",
          detail: "The draft was saved elsewhere since you loaded it.",
          current_version: note.version,
          current: { subjective, objective, assessment, plan },
        },
      };
    }
    const body = (request.body ?? {}) as Record<string, string>;
    const changed = (["subjective", "objective", "assessment", "plan"] as const).filter(
      (s) => body[s] !== undefined && body[s] !== note[s],
    );
    if (!changed.length) return etagged(200, note);
    return etagged(200, this.changeNote(note.id, Object.fromEntries(changed.map((s) => [s, body[s]]))));
  }

  private replaceNote(before: Note, after: Note, reason: string): Note {
    this.notes[this.notes.indexOf(before)] = after;
    this.record("notes", after as unknown as AnyRecord, before as unknown as AnyRecord, reason);
    return after;
  }

  /** Answers the clinical and break-the-glass routes; null for anything else. */
  handle(request: FakeRequest): FakeReply | null {
    const route = `${request.method} ${request.path}`;
    const body = (request.body ?? {}) as Record<string, unknown>;
    const me = this.who();
    let m: RegExpExecArray | null;

    if ((m = /^(GET|POST) \/api\/v1\/ehr\/patients\/(\d+)\/(summary|documents|conditions|allergies|medications|observations|encounters|break-glass)\/$/.exec(route))) {
      const patientId = Number(m[2]);
      if (m[3] === "break-glass") {
        if (m[1] !== "POST") return null;
        const reason = String(body.reason ?? "").trim();
        if (reason.length < 20) return invalid({ reason: ["Give a reason of at least 20 characters."] });
        return {
          status: 201,
          body: this.addGrant({
            actor: { id: me?.id ?? 1, display_name: me?.display_name ?? "" },
            actor_role: me?.primary_role ?? "practitioner",
            patient_id: patientId,
            reason,
          }),
        };
      }
      const denied = this.access(patientId);
      if (denied) return denied;
      if (m[1] === "GET") {
        switch (m[3]) {
          case "summary":
            return this.summary(patientId);
          case "documents":
            return { status: 200, body: { results: this.documents.filter((d) => d.patient_id === patientId) } };
          case "encounters":
            return { status: 200, body: { results: this.encounters.filter((e) => e.patient_id === patientId) } };
          default:
            return null;
        }
      }
      switch (m[3]) {
        case "conditions":
          return this.createCondition(patientId, body);
        case "allergies":
          return this.createAllergy(patientId, body);
        case "medications":
          return this.createMedication(patientId, body);
        case "observations":
          return this.createObservation(patientId, body);
        case "encounters": {
          const location = me?.locations.find((l) => l.id === body.location_id);
          if (!location) return invalid({ location_id: ["You do not work at this location."] });
          return etagged(
            201,
            this.addEncounter(patientId, {
              location_id: location.id,
              location_name: location.name,
              modality: body.modality as Encounter["modality"],
              reason: String(body.reason ?? ""),
            }),
          );
        }
        default:
          return null;
      }
    }

    if ((m = /^GET \/api\/v1\/ehr\/(conditions|allergies|medications|observations|encounters|notes)\/(\d+)\/history\/$/.exec(route))) {
      const versions = this.history.get(`${m[1]}:${m[2]}`);
      return versions ? { status: 200, body: { results: versions } } : notFound;
    }

    if ((m = /^POST \/api\/v1\/ehr\/encounters\/(\d+)\/close\/$/.exec(route))) {
      const index = this.encounters.findIndex((e) => e.id === Number(m?.[1]));
      const before = this.encounters[index];
      if (!before) return notFound;
      if (before.status !== "in-progress") {
        return { status: 409, body: { code: "invalid_transition", detail: `A encounter that is ${before.status} cannot become finished.` } };
      }
      const after: Encounter = { ...before, status: "finished", period_end: this.now(), duration_seconds: 600, version: before.version + 1 };
      this.encounters[index] = after;
      this.record("encounters", after as unknown as AnyRecord, before as unknown as AnyRecord, "encounter closed");
      return etagged(200, after);
    }

    if ((m = /^POST \/api\/v1\/ehr\/encounters\/(\d+)\/cancel\/$/.exec(route))) {
      const index = this.encounters.findIndex((e) => e.id === Number(m?.[1]));
      const before = this.encounters[index];
      if (!before) return notFound;
      const ifMatch = request.headers["If-Match"];
      if (!ifMatch) return { status: 428, body: { code: "precondition_required", detail: "Send If-Match." } };
      if (ifMatch !== `"${before.version}"`) {
        return { status: 412, body: { code: "version_conflict", detail: "Changed.", current_version: before.version } };
      }
      const reason = String((request.body as Record<string, unknown> | undefined)?.reason ?? "").trim();
      if (!reason) {
        return { status: 400, body: { code: "invalid", detail: "Invalid.", fields: { reason: ["This field may not be blank."] } } };
      }
      if (before.status !== "planned") {
        return { status: 409, body: { code: "invalid_transition", detail: `A Encounter that is ${before.status} cannot become cancelled.` } };
      }
      if (before.appointment_id !== null) {
        const detail = "This visit was booked in scheduling; cancel the appointment instead.";
        return { status: 409, body: { code: "cancel_the_appointment", detail, appointment_id: before.appointment_id } };
      }
      const after: Encounter = { ...before, status: "cancelled", version: before.version + 1 };
      this.encounters[index] = after;
      this.record("encounters", after as unknown as AnyRecord, before as unknown as AnyRecord, reason);
      return etagged(200, after);
    }

    if ((m = /^(GET|POST) \/api\/v1\/ehr\/encounters\/(\d+)\/notes\/$/.exec(route))) {
      const encounterId = Number(m[2]);
      if (!this.encounters.some((e) => e.id === encounterId)) return notFound;
      if (m[1] === "GET") return { status: 200, body: { results: this.notes.filter((n) => n.encounter_id === encounterId) } };
      return etagged(201, this.addNote(encounterId, body as Partial<Note>));
    }

    if ((m = /^(GET|PATCH) \/api\/v1\/ehr\/notes\/(\d+)\/$/.exec(route))) {
      const note = this.notes.find((n) => n.id === Number(m?.[2]));
      if (!note) return notFound;
      return m[1] === "GET" ? etagged(200, note) : this.saveDraft(note, request);
    }

    if ((m = /^POST \/api\/v1\/ehr\/notes\/(\d+)\/(sign|addenda)\/$/.exec(route))) {
      const note = this.notes.find((n) => n.id === Number(m?.[1]));
      if (!note) return notFound;
      if (m[2] === "sign") {
        if (!request.headers["If-Match"]) return { status: 428, body: { code: "precondition_required", detail: "Send If-Match." } };
        if (request.headers["If-Match"] !== `"${note.version}"`) {
          return { status: 412, body: { code: "version_conflict", detail: "Changed.", current_version: note.version } };
        }
        if (note.status !== "draft") return { status: 409, body: { code: "invalid_transition", detail: "Already signed." } };
        const now = this.now();
        return etagged(200, this.replaceNote(note, { ...note, status: "signed", signed_at: now, signed_by_id: me?.id ?? 1, version: note.version + 1 }, "signed"));
      }
      if (note.status === "draft") return { status: 409, body: { code: "invalid_transition", detail: "Sign the note first." } };
      const text = String(body.text ?? "").trim();
      if (!text) return invalid({ text: ["This field may not be blank."] });
      const addendum = { id: this.id(), author_id: me?.id ?? 1, author_display_name: me?.display_name ?? "", text, created_at: this.now() };
      return etagged(
        201,
        this.replaceNote(note, { ...note, status: "amended", addenda: [...note.addenda, addendum], version: note.version + 1 }, "addendum"),
      );
    }

    if (route === "GET /api/v1/ehr/break-glass/") {
      if (!me?.roles.includes("admin")) return { status: 403, body: { code: "permission_denied", detail: "Admins only." } };
      const status = request.query.get("review_status");
      const results = this.grants.filter((g) => !status || g.review_status === status).reverse();
      return { status: 200, body: { count: results.length, next: null, previous: null, results } };
    }

    if ((m = /^POST \/api\/v1\/ehr\/break-glass\/(\d+)\/review\/$/.exec(route))) {
      const index = this.grants.findIndex((g) => g.id === Number(m?.[1]));
      const grant = this.grants[index];
      if (!grant) return notFound;
      if (grant.review_status !== "pending") {
        return { status: 409, body: { code: "break_glass_already_reviewed", detail: "This access has already been reviewed." } };
      }
      const outcome = body.outcome as BreakGlassGrant["review_status"];
      const note = String(body.note ?? "").trim();
      if (outcome === "inappropriate" && !note) return invalid({ note: ["Say why the access was inappropriate."] });
      const reviewed: BreakGlassGrant = {
        ...grant,
        review_status: outcome,
        review_note: note,
        reviewed_at: this.now(),
        reviewed_by: { id: me?.id ?? 1, display_name: me?.display_name ?? "" },
      };
      this.grants[index] = reviewed;
      return { status: 200, body: reviewed };
    }
    return null;
  }
}
