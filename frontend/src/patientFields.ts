/**
 * The patient record's fields as people see them: labels, form controls, display of values and of history diffs.
 * Shared by the registration page and the patient page's edit form, so both ask for the same things the same way.
 */
import type { AdministrativeGender, PatientDetail, PatientStatus, PatientUpdateRequest } from "./api/types";
import { formatDate } from "./format";

// Records over the schema's enums: a new value in the API fails the typecheck until it has a label.
export const SEX_LABELS: Record<AdministrativeGender, string> = {
  female: "Female",
  male: "Male",
  other: "Other",
  unknown: "Unknown",
};

export const STATUS_LABELS: Record<PatientStatus, string> = {
  active: "Active",
  "entered-in-error": "Entered in error",
  merged: "Merged into another record",
};

export const SEXES = Object.keys(SEX_LABELS) as AdministrativeGender[];

/** The fields of the registration and edit forms, in the forms' order. */
export const FORM_FIELDS = [
  "given_name",
  "family_name",
  "birth_date",
  "sex",
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

export type FormField = (typeof FORM_FIELDS)[number];

/** What the user typed, per field (a select's "" is "not chosen"). */
export type PatientDraft = Record<FormField, string>;

/** Identifiers: the API shows them masked, so the edit form starts them empty and sends them only when typed. */
export const IDENTIFIER_FIELDS: readonly FormField[] = ["national_id", "insurance_member_id"];

export const REQUIRED_FIELDS: readonly FormField[] = ["given_name", "family_name", "birth_date", "sex"];

export interface FieldSpec {
  name: FormField;
  label: string;
  control: "text" | "date" | "tel" | "email" | "select";
  hint?: string;
  maxlength?: number;
}

export interface FieldGroup {
  legend: string;
  fields: FieldSpec[];
}

export const FIELD_GROUPS: FieldGroup[] = [
  {
    legend: "Name and birth",
    fields: [
      { name: "given_name", label: "Given name", control: "text", maxlength: 100 },
      { name: "family_name", label: "Family name", control: "text", maxlength: 100 },
      { name: "birth_date", label: "Birth date", control: "date" },
      { name: "sex", label: "Sex", control: "select" },
    ],
  },
  {
    legend: "Contact",
    fields: [
      { name: "phone", label: "Phone", control: "tel", maxlength: 32 },
      { name: "email", label: "Email", control: "email", maxlength: 254 },
      { name: "address_line", label: "Address", control: "text", maxlength: 200 },
      { name: "city", label: "City", control: "text", maxlength: 100 },
      { name: "postal_code", label: "Postal code", control: "text", maxlength: 20 },
      { name: "country", label: "Country", control: "text", maxlength: 2, hint: "Two-letter code, e.g. PT or US." },
      {
        name: "preferred_language",
        label: "Preferred language",
        control: "text",
        maxlength: 35,
        hint: "Language code, e.g. en or pt-BR.",
      },
    ],
  },
  {
    legend: "Emergency contact",
    fields: [
      { name: "emergency_contact_name", label: "Emergency contact name", control: "text", maxlength: 200 },
      { name: "emergency_contact_phone", label: "Emergency contact phone", control: "tel", maxlength: 32 },
    ],
  },
  {
    legend: "Identifiers",
    fields: [
      { name: "national_id", label: "National ID", control: "text", maxlength: 60 },
      { name: "insurance_member_id", label: "Insurance member ID", control: "text", maxlength: 60 },
    ],
  },
];

/** Labels of every field the API may name (in field errors, history diffs): the form's and a few more. */
export const FIELD_LABELS: Record<string, string> = {
  ...Object.fromEntries(FIELD_GROUPS.flatMap((g) => g.fields).map((f) => [f.name, f.label])),
  gender_identity: "Gender identity",
  status: "Status",
  user_id: "Portal account",
  merged_into_id: "Merged into (record ID)",
  reason: "Reason for change",
};

export function fieldLabel(name: string): string {
  return FIELD_LABELS[name] ?? name.replace(/_/g, " ");
}

export function isFormField(name: string): name is FormField {
  return (FORM_FIELDS as readonly string[]).includes(name);
}

export function emptyDraft(): PatientDraft {
  return Object.fromEntries(FORM_FIELDS.map((name) => [name, ""])) as PatientDraft;
}

/** The edit form's starting values: the record's, identifiers empty (they are masked). */
export function draftFromRecord(record: PatientDetail): PatientDraft {
  const draft = emptyDraft();
  for (const name of FORM_FIELDS) {
    if (IDENTIFIER_FIELDS.includes(name)) continue;
    draft[name] = String(record[name] ?? "");
  }
  return draft;
}

/**
 * The fields of `draft` that differ from `base` (the record the edit started from), with the typed values.
 * Identifiers count as changed when something was typed.
 */
export function changedFields(draft: PatientDraft, base: PatientDetail): Partial<PatientDraft> {
  const changes: Partial<PatientDraft> = {};
  for (const name of FORM_FIELDS) {
    const typed = draft[name].trim();
    if (IDENTIFIER_FIELDS.includes(name)) {
      if (typed) changes[name] = typed;
    } else if (typed !== String(base[name] ?? "").trim()) {
      changes[name] = typed;
    }
  }
  return changes;
}

/** The PATCH body: the changed fields as typed (the sex select only offers the schema's values) and the reason. */
export function updateRequest(changes: Partial<PatientDraft>, reason: string): PatientUpdateRequest {
  return { ...changes, reason } as PatientUpdateRequest;
}

/** A field's value for people: dates and codes spelled out, "—" for nothing. */
export function displayValue(field: string, value: unknown): string {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "string") {
    if (field === "sex" && value in SEX_LABELS) return SEX_LABELS[value as AdministrativeGender];
    if (field === "status" && value in STATUS_LABELS) return STATUS_LABELS[value as PatientStatus];
    if (field === "birth_date") return formatDate(value);
    return value;
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value === "object" && "masked" in value && typeof value.masked === "string") return value.masked;
  return JSON.stringify(value);
}
