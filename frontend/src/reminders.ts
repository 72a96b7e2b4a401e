/** Words and sums for the notifications screens (reminder health, a patient's preferences). */
import type { MessageChannel, MessageState, NotificationHealthDay, PreferenceChannel } from "./api/types";

// Records over the schema's enums: a new channel or state in the API fails the typecheck until it has a label.
export const CHANNEL_LABELS: Record<MessageChannel, string> = {
  sms: "Text message",
  email: "Email",
  voice: "Voice call",
};

export const STATE_LABELS: Record<MessageState, string> = {
  queued: "Queued",
  sending: "Sending",
  sent: "Sent",
  delivered: "Delivered",
  failed: "Failed",
  undeliverable: "Undeliverable",
  withdrawn: "Withdrawn",
};

/** Message kinds the backend writes today; any other kind is shown in words made from its code. */
const KIND_LABELS: Record<string, string> = {
  reminder: "Reminder",
  checkin_link: "Check-in link",
  staff_alert: "Staff alert",
  reply_ack: "Reply to a patient's text",
  manual_resend: "Resent by staff",
};

export function channelLabel(channel: string | null | undefined): string {
  if (!channel) return "—";
  return CHANNEL_LABELS[channel as MessageChannel] ?? channel;
}

export function stateLabel(state: string): string {
  return STATE_LABELS[state as MessageState] ?? state;
}

export function kindLabel(kind: string): string {
  const known = KIND_LABELS[kind];
  if (known) return known;
  const words = kind.replace(/[_.-]+/g, " ").trim();
  return words ? words.charAt(0).toUpperCase() + words.slice(1) : "—";
}

/** "97.5%" for 0.975; "—" when there is no rate (nothing was sent). */
export function formatRate(rate: number | null | undefined): string {
  if (rate === null || rate === undefined || Number.isNaN(rate)) return "—";
  const percent = Math.round(rate * 1000) / 10;
  return `${percent}%`;
}

/** How the messages of one row split, for its bar: parts that add up to `total`. */
export interface DayBar {
  delivered: number;
  /** Handed to the provider, no delivery receipt (yet). */
  sentOnly: number;
  /** Failed and undeliverable. */
  failed: number;
  queued: number;
  total: number;
}

export function dayBar(day: NotificationHealthDay): DayBar {
  const delivered = day.delivered;
  const sentOnly = Math.max(0, day.sent - day.delivered);
  const failed = day.failed + day.undeliverable;
  const queued = day.queued;
  return { delivered, sentOnly, failed, queued, total: delivered + sentOnly + failed + queued };
}

/** Newest day first; within a day, the channels in a fixed order (text, email, voice). */
export function sortHealthDays(days: readonly NotificationHealthDay[]): NotificationHealthDay[] {
  const order = Object.keys(CHANNEL_LABELS);
  return [...days].sort((a, b) =>
    a.date === b.date ? order.indexOf(a.channel) - order.indexOf(b.channel) : a.date < b.date ? 1 : -1,
  );
}

/** What became of a resend asked for on the reminder-health page, per original message. */
export type ResendOutcome =
  | { status: "pending" }
  | { status: "resent"; id: string; state: MessageState }
  | { status: "error"; message: string };

/** The order a patient picks: which channel comes first (the other one is the fallback). */
export type ChannelOrder = PreferenceChannel;

/** The first channel of a saved order ("sms" when the list is empty or odd). */
export function firstChannel(channels: readonly string[]): ChannelOrder {
  return channels[0] === "email" ? "email" : "sms";
}

/** The whole order to save for a first channel: the other channel follows as the fallback. */
export function channelsFor(first: ChannelOrder): PreferenceChannel[] {
  return first === "email" ? ["email", "sms"] : ["sms", "email"];
}
