/**
 * Frames of the realtime websocket /ws/v1/events/ (server → client unless noted).
 * The REST side of the protocol (StreamEvent, StreamEventPage) comes from the OpenAPI schema.
 */
import type { StreamEvent } from "../api/types";

export interface HelloFrame {
  kind: "hello";
  /** Every stream this socket receives, with the server's current last sequence number. */
  streams: Record<string, number>;
}

export type EventFrame = { kind: "event" } & StreamEvent;

export interface PongFrame {
  kind: "pong";
}

export interface ErrorFrame {
  kind: "error";
  code: string;
  detail: string;
}

/** A `group:` stream subscription took effect; `seq` is the stream's last sequence number at that moment. */
export interface SubscribedFrame {
  kind: "subscribed";
  stream: string;
  seq: number;
}

export interface UnsubscribedFrame {
  kind: "unsubscribed";
  stream: string;
}

export type ServerFrame = HelloFrame | EventFrame | PongFrame | ErrorFrame | SubscribedFrame | UnsubscribedFrame;

/** Client → server. */
export interface PingFrame {
  kind: "ping";
}

/** Client → server: join or leave a `group:<name>` stream (the server checks who may receive it). */
export interface SubscriptionFrame {
  kind: "subscribe" | "unsubscribe";
  stream: string;
}

/** The server closed because the socket has no signed-in user. Never reconnect. */
export const CLOSE_NOT_AUTHENTICATED = 4401;
/** The sign-in session was revoked (user deactivated, or signed out in another tab). Never reconnect. */
export const CLOSE_SESSION_REVOKED = 4403;

/** The REST endpoint returns at most this many events per page. */
export const EVENTS_PAGE_SIZE = 500;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isSeq(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

export function isStreamEvent(value: unknown): value is StreamEvent {
  return (
    isObject(value) &&
    typeof value.stream === "string" &&
    isSeq(value.seq) &&
    typeof value.type === "string" &&
    isObject(value.data) &&
    typeof value.at === "string"
  );
}

/** Parses one text frame; returns null for anything that is not a well-formed server frame. */
export function parseServerFrame(raw: unknown): ServerFrame | null {
  if (typeof raw !== "string") return null;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isObject(value)) return null;
  switch (value.kind) {
    case "hello":
      if (!isObject(value.streams) || !Object.values(value.streams).every(isSeq)) return null;
      return { kind: "hello", streams: value.streams as Record<string, number> };
    case "event":
      return isStreamEvent(value) ? ({ ...value, kind: "event" } as EventFrame) : null;
    case "pong":
      return { kind: "pong" };
    case "subscribed":
      return typeof value.stream === "string" && isSeq(value.seq)
        ? { kind: "subscribed", stream: value.stream, seq: value.seq }
        : null;
    case "unsubscribed":
      return typeof value.stream === "string" ? { kind: "unsubscribed", stream: value.stream } : null;
    case "error":
      return {
        kind: "error",
        code: typeof value.code === "string" ? value.code : "unknown",
        detail: typeof value.detail === "string" ? value.detail : "",
      };
    default:
      return null;
  }
}
