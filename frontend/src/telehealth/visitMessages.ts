/** Chat messages of a visit: the shape check of a live event, and merging by id in time order. */
import type { VisitMessage } from "../api/types";

export function isVisitMessage(value: unknown): value is VisitMessage {
  if (typeof value !== "object" || value === null) return false;
  const m = value as Record<string, unknown>;
  return typeof m.id === "number" && typeof m.body === "string" && typeof m.created_at === "string";
}

/** `known` plus `incoming`, each message once (by id), oldest first. */
export function mergeMessages(known: VisitMessage[], incoming: VisitMessage[]): VisitMessage[] {
  const byId = new Map(known.map((m) => [m.id, m]));
  for (const message of incoming) {
    byId.set(message.id, {
      ...message,
      kind: message.kind ?? "chat",
      sender_name: message.sender_name ?? "",
      sender_role: message.sender_role ?? "",
    });
  }
  return [...byId.values()].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at) || a.id - b.id);
}
