/** Vocabularies and local storage helpers of the clinical chart (labels for people, the vital signs the API takes). */
import type { BreakGlassGrant, Criticality, DocumentType, Modality, NoteSections } from "./api/types";

/** The LOINC codes the API accepts for observations, with their one UCUM unit (ehr/codes.py). */
export interface VitalSignCode {
  code: string;
  label: string;
  unit: string;
  /** The unit as people write it. */
  unitLabel: string;
}

export const VITAL_SIGNS: readonly VitalSignCode[] = [
  { code: "8867-4", label: "Heart rate", unit: "/min", unitLabel: "/min" },
  { code: "8480-6", label: "Systolic blood pressure", unit: "mm[Hg]", unitLabel: "mmHg" },
  { code: "8462-4", label: "Diastolic blood pressure", unit: "mm[Hg]", unitLabel: "mmHg" },
  { code: "8310-5", label: "Body temperature", unit: "Cel", unitLabel: "°C" },
  { code: "9279-1", label: "Respiratory rate", unit: "/min", unitLabel: "/min" },
  { code: "59408-5", label: "SpO2 (pulse oximetry)", unit: "%", unitLabel: "%" },
  { code: "29463-7", label: "Body weight", unit: "kg", unitLabel: "kg" },
  { code: "8302-2", label: "Body height", unit: "cm", unitLabel: "cm" },
  { code: "39156-5", label: "BMI", unit: "kg/m2", unitLabel: "kg/m²" },
  { code: "2339-0", label: "Glucose (blood)", unit: "mg/dL", unitLabel: "mg/dL" },
  { code: "4548-4", label: "HbA1c", unit: "%", unitLabel: "%" },
];

export function vitalSign(code: string): VitalSignCode | undefined {
  return VITAL_SIGNS.find((v) => v.code === code);
}

/** "72 /min", "36.8 °C": the unit as people write it, the API's UCUM unit when the code is unknown. */
export function formatObservationValue(code: string, value: number, unit: string): string {
  const known = vitalSign(code);
  return `${value} ${known && known.unit === unit ? known.unitLabel : unit}`;
}

export const CRITICALITY_LABELS: Record<Criticality, string> = {
  low: "Low risk",
  high: "High risk",
  "unable-to-assess": "Criticality unknown",
};

export const DOCUMENT_TYPE_LABELS: Record<DocumentType, string> = {
  "clinical-note": "Clinical note",
  "lab-report": "Lab report",
  imaging: "Imaging",
  referral: "Referral",
  consent: "Consent",
  "id-document": "Identity document",
  other: "Other",
};

export const MODALITY_LABELS: Record<Modality, string> = {
  "in-person": "In person",
  virtual: "Virtual",
};

export const ENCOUNTER_STATUS_LABELS: Record<string, string> = {
  planned: "Planned",
  "in-progress": "In progress",
  finished: "Finished",
  cancelled: "Cancelled",
  "entered-in-error": "Entered in error",
};

export const NOTE_SECTIONS = ["subjective", "objective", "assessment", "plan"] as const;
export type NoteSection = (typeof NOTE_SECTIONS)[number];
export type SoapText = Record<NoteSection, string>;

export const NOTE_SECTION_LABELS: Record<NoteSection, string> = {
  subjective: "Subjective",
  objective: "Objective",
  assessment: "Assessment",
  plan: "Plan",
};

export function soapOf(sections: NoteSections): SoapText {
  return {
    subjective: sections.subjective ?? "",
    objective: sections.objective ?? "",
    assessment: sections.assessment ?? "",
    plan: sections.plan ?? "",
  };
}

/** A human label for a field of a versioned record (history diffs). */
export function recordFieldLabel(field: string): string {
  const text = field.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function displayRecordValue(value: unknown): string {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function storage(): Storage | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

function sessionStore(): Storage | null {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

/** Unsaved note text kept in this browser until the server has it (a dropped connection or a reload loses nothing). */
export interface LocalDraft {
  sections: SoapText;
  /** When the text was typed (ms since the epoch). */
  savedAt: number;
}

const DRAFT_PREFIX = "consulta.note-draft.";

export function readLocalDraft(noteId: number): LocalDraft | null {
  const raw = storage()?.getItem(`${DRAFT_PREFIX}${noteId}`);
  if (!raw) return null;
  try {
    const parsed = JSON.parse(raw) as Partial<LocalDraft>;
    if (typeof parsed.savedAt !== "number" || typeof parsed.sections !== "object" || parsed.sections === null) return null;
    return { savedAt: parsed.savedAt, sections: soapOf(parsed.sections) };
  } catch {
    return null;
  }
}

export function writeLocalDraft(noteId: number, sections: SoapText, savedAt = Date.now()): void {
  try {
    storage()?.setItem(`${DRAFT_PREFIX}${noteId}`, JSON.stringify({ sections, savedAt }));
  } catch {
    // Storage full or disabled: the autosave still sends the text.
  }
}

export function clearLocalDraft(noteId: number): void {
  storage()?.removeItem(`${DRAFT_PREFIX}${noteId}`);
}

const GRANT_PREFIX = "consulta.break-glass.";

/** The emergency grant this tab obtained for a patient, while it has not expired. */
export function activeGrant(patientId: number, now = Date.now()): Pick<BreakGlassGrant, "id" | "expires_at"> | null {
  const raw = sessionStore()?.getItem(`${GRANT_PREFIX}${patientId}`);
  if (!raw) return null;
  try {
    const grant = JSON.parse(raw) as { id?: unknown; expires_at?: unknown };
    if (typeof grant.id !== "number" || typeof grant.expires_at !== "string") return null;
    if (Date.parse(grant.expires_at) <= now) {
      sessionStore()?.removeItem(`${GRANT_PREFIX}${patientId}`);
      return null;
    }
    return { id: grant.id, expires_at: grant.expires_at };
  } catch {
    return null;
  }
}

export function rememberGrant(patientId: number, grant: Pick<BreakGlassGrant, "id" | "expires_at">): void {
  sessionStore()?.setItem(`${GRANT_PREFIX}${patientId}`, JSON.stringify({ id: grant.id, expires_at: grant.expires_at }));
}
