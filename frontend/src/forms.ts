/** Turning an API's field errors into messages next to a form's fields. */
import type { FieldErrors } from "./api/client";

export interface SplitErrors<F extends string> {
  /** One message per field the form shows. */
  errors: Partial<Record<F, string>>;
  /** Messages about anything else (prefixed with the field's label), for the form's general alert. */
  other: string[];
}

export function splitFieldErrors<F extends string>(
  fields: FieldErrors,
  known: readonly F[],
  label: (name: string) => string = (name) => name,
): SplitErrors<F> {
  const errors: Partial<Record<F, string>> = {};
  const other: string[] = [];
  for (const [name, messages] of Object.entries(fields)) {
    const message = (Array.isArray(messages) ? messages : [String(messages)]).join(" ");
    if ((known as readonly string[]).includes(name)) errors[name as F] = message;
    else if (name === "non_field_errors") other.push(message);
    else other.push(`${label(name)}: ${message}`);
  }
  return { errors, other };
}

/** Focuses the first control (in `order`) that has an error; ids from `idOf`. */
export function focusFirstInvalid<F extends string>(
  errors: Partial<Record<F, string>>,
  order: readonly F[],
  idOf: (name: F) => string,
): boolean {
  const first = order.find((name) => errors[name]);
  if (first === undefined) return false;
  document.getElementById(idOf(first))?.focus();
  return true;
}
