/**
 * A `next` target after sign-in is only followed when it is a path of this app:
 * it starts with a single "/" (no scheme, no "//host", no "/\host") and has no control characters.
 */
export function isInternalPath(value: unknown): value is string {
  if (typeof value !== "string" || !value.startsWith("/")) return false;
  if (value.startsWith("//") || value.startsWith("/\\")) return false;
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) < 0x20 || value.charCodeAt(i) === 0x7f) return false;
  }
  return true;
}
