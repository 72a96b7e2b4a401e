/**
 * The live scheduler board: today's appointments (the viewer's local day) across clinics, in lanes by state,
 * kept current by `appointment.changed` pushes on `group:scheduling.board` (docs/scheduling.md, "Live board").
 *
 * - The day is loaded over REST each time the server confirms the board subscription (first, and after every
 *   reconnect), so nothing that happened while the socket was away is missed; the realtime client delivers
 *   the stream's events exactly once and in order on top of that.
 * - A push for a known card is applied only when it is newer (higher `version`) than what the card shows;
 *   an unknown appointment of today is fetched over REST, because pushes carry no names (if this viewer may not
 *   read it on its own — a nurse, another clinic's patient — the day is reloaded instead, as the list shows it).
 * - Waiting times tick from one clock for the whole board (`now`, once a second), never one timer per card.
 */
import { defineStore } from "pinia";
import { computed, reactive, ref } from "vue";

import { ApiError } from "../api/client";
import { appointmentEtag, scheduling } from "../api/endpoints";
import type { Appointment, AppointmentModality, AppointmentStatus, StreamEvent } from "../api/types";
import { useRealtimeStore } from "./realtime";

export const BOARD_STREAM = "group:scheduling.board";
export const APPOINTMENT_CHANGED = "appointment.changed";

export const DEFAULT_WAIT_THRESHOLD_MINUTES = 15;
export const MIN_WAIT_THRESHOLD_MINUTES = 1;
export const MAX_WAIT_THRESHOLD_MINUTES = 240;
export const WAIT_THRESHOLD_STORAGE_KEY = "consulta.board.waitThresholdMinutes";
/** How long the board gathers pushes about appointments it may not read one by one before reloading the day. */
const RELOAD_DELAY_MS = 1000;

export type LaneId = "booked" | "arrived" | "checked-in" | "in-visit" | "done" | "noshow" | "cancelled";

export interface Lane {
  id: LaneId;
  title: string;
}

/** The board's columns, in the order a patient moves through them. Cancelled appointments are listed apart. */
export const LANES: readonly Lane[] = [
  { id: "booked", title: "Booked" },
  { id: "arrived", title: "Arrived" },
  { id: "checked-in", title: "Checked in" },
  { id: "in-visit", title: "In visit" },
  { id: "done", title: "Done" },
  { id: "noshow", title: "No-show" },
];

export const LANE_TITLES: Record<LaneId, string> = {
  booked: "Booked",
  arrived: "Arrived",
  "checked-in": "Checked in",
  "in-visit": "In visit",
  done: "Done",
  noshow: "No-show",
  cancelled: "Cancelled",
};

/** What the front desk can do from a card. */
export type BoardAction = "arrived" | "checked-in" | "noshow";

export const ACTION_LABELS: Record<BoardAction, string> = {
  arrived: "Mark arrived",
  "checked-in": "Check in",
  noshow: "No-show",
};

export type BoardModality = AppointmentModality | "";

export interface BoardFilters {
  /** Clinic (location id); null: every clinic. */
  location: number | null;
  modality: BoardModality;
  /** Practitioner (user id); null: everyone. */
  practitioner: number | null;
}

export interface DayWindow {
  /** Local midnight starting the day, epoch ms. */
  start: number;
  /** The next local midnight (23, 24 or 25 hours later), epoch ms. */
  end: number;
}

/** What an `appointment.changed` push carries (scheduling/events.py): ids, times, status, version — no names. */
export interface AppointmentChange {
  id: number;
  status: AppointmentStatus;
  start: string;
  end: string;
  practitioner_id: number;
  location_id: number;
  modality: AppointmentModality;
  appointment_type_id: number;
  version: number;
  arrived_at: string | null;
  checked_in_at: string | null;
  visit_started_at: string | null;
}

const STATUSES: readonly AppointmentStatus[] = [
  "proposed",
  "pending",
  "booked",
  "arrived",
  "checked-in",
  "fulfilled",
  "cancelled",
  "noshow",
  "entered-in-error",
];

// ------------------------------------------------------------------ pure rules (unit-tested)

/** The viewer's local calendar day containing `nowMs` (Date arithmetic keeps DST days at 23/25 hours). */
export function localDay(nowMs: number): DayWindow {
  const now = new Date(nowMs);
  const start = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const end = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
  return { start: start.getTime(), end: end.getTime() };
}

/** Whether an appointment overlaps the day (the API's window rule: start < day end and end > day start). */
export function inDay(appointment: Pick<Appointment, "start" | "end">, day: DayWindow): boolean {
  return Date.parse(appointment.start) < day.end && Date.parse(appointment.end) > day.start;
}

export function laneOf(appointment: Pick<Appointment, "status" | "visit_started_at">): LaneId {
  switch (appointment.status) {
    case "arrived":
    case "checked-in":
      // A virtual patient may be admitted straight from the waiting room: a started visit is "in visit" either way.
      return appointment.visit_started_at ? "in-visit" : appointment.status;
    case "fulfilled":
      return "done";
    case "noshow":
      return "noshow";
    case "cancelled":
    case "entered-in-error":
      return "cancelled";
    default:
      return "booked";
  }
}

/** Arrived or checked in, and the visit has not started: the wait is running. */
export function isWaiting(appointment: Pick<Appointment, "status" | "visit_started_at">): boolean {
  const lane = laneOf(appointment);
  return lane === "arrived" || lane === "checked-in";
}

type WaitFields = Pick<Appointment, "status" | "arrived_at" | "checked_in_at" | "visit_started_at">;

/**
 * Seconds the patient waited: from arrival (or check-in, if they were checked in without arriving first) until the
 * visit started — or until `nowMs` while they are still waiting. Null when they have not arrived, or when the wait
 * ended without a recorded visit start (fulfilled, no-show, cancelled).
 */
export function waitSeconds(appointment: WaitFields, nowMs: number): number | null {
  const from = appointment.arrived_at ?? appointment.checked_in_at;
  if (!from) return null;
  let until: number;
  if (appointment.visit_started_at) until = Date.parse(appointment.visit_started_at);
  else if (isWaiting(appointment)) until = nowMs;
  else return null;
  const seconds = Math.floor((until - Date.parse(from)) / 1000);
  return Number.isFinite(seconds) ? Math.max(0, seconds) : null;
}

/** Still waiting, for longer than the threshold. */
export function isOverThreshold(appointment: WaitFields, nowMs: number, thresholdMinutes: number): boolean {
  if (!isWaiting(appointment)) return false;
  const waited = waitSeconds(appointment, nowMs);
  return waited !== null && waited > thresholdMinutes * 60;
}

/** Booked, and the start has passed without the patient arriving. */
export function isLate(appointment: Pick<Appointment, "status" | "visit_started_at" | "start">, nowMs: number): boolean {
  return laneOf(appointment) === "booked" && nowMs > Date.parse(appointment.start);
}

/** "4:05" below an hour, "1:02:03" from an hour on. */
export function formatWait(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

/** The buttons a card offers in its state (no-show only once the start has passed). */
export function actionsFor(appointment: Pick<Appointment, "status" | "visit_started_at" | "start">, nowMs: number): BoardAction[] {
  switch (laneOf(appointment)) {
    case "booked":
      if (appointment.status !== "booked") return [];
      return isLate(appointment, nowMs) ? ["arrived", "checked-in", "noshow"] : ["arrived", "checked-in"];
    case "arrived":
      return ["checked-in"];
    default:
      return [];
  }
}

/** A threshold as typed or stored, made a whole number of minutes within the allowed range (default if unusable). */
export function clampThreshold(value: unknown): number {
  const minutes = typeof value === "number" ? value : typeof value === "string" && value.trim() ? Number(value) : NaN;
  if (!Number.isFinite(minutes)) return DEFAULT_WAIT_THRESHOLD_MINUTES;
  return Math.min(MAX_WAIT_THRESHOLD_MINUTES, Math.max(MIN_WAIT_THRESHOLD_MINUTES, Math.round(minutes)));
}

function isInstant(value: unknown): value is string {
  return typeof value === "string" && !Number.isNaN(Date.parse(value));
}

function isOptionalInstant(value: unknown): value is string | null {
  return value === null || value === undefined || isInstant(value);
}

function isId(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value > 0;
}

/** The change an `appointment.changed` push describes, or null when the data is not one. */
export function parseChange(data: Record<string, unknown>): AppointmentChange | null {
  const d = data;
  if (
    !isId(d.id) ||
    typeof d.status !== "string" ||
    !(STATUSES as readonly string[]).includes(d.status) ||
    !isInstant(d.start) ||
    !isInstant(d.end) ||
    !isId(d.practitioner_id) ||
    !isId(d.location_id) ||
    (d.modality !== "video" && d.modality !== "in-person") ||
    !isId(d.appointment_type_id) ||
    typeof d.version !== "number" ||
    !isOptionalInstant(d.arrived_at) ||
    !isOptionalInstant(d.checked_in_at) ||
    !isOptionalInstant(d.visit_started_at)
  ) {
    return null;
  }
  return {
    id: d.id,
    status: d.status as AppointmentStatus,
    start: d.start,
    end: d.end,
    practitioner_id: d.practitioner_id,
    location_id: d.location_id,
    modality: d.modality,
    appointment_type_id: d.appointment_type_id,
    version: d.version,
    arrived_at: (d.arrived_at as string | null | undefined) ?? null,
    checked_in_at: (d.checked_in_at as string | null | undefined) ?? null,
    visit_started_at: (d.visit_started_at as string | null | undefined) ?? null,
  };
}

/**
 * The card after a pushed change; null when the push is not newer than the card (a duplicate, or an older
 * version arriving after a fresher REST read). `at`: when the change happened (stamps `fulfilled_at`).
 */
export function applyChange(current: Appointment, change: AppointmentChange, at?: string): Appointment | null {
  if (change.id !== current.id || change.version <= current.version) return null;
  return {
    ...current,
    status: change.status,
    start: change.start,
    end: change.end,
    practitioner_id: change.practitioner_id,
    location_id: change.location_id,
    modality: change.modality,
    appointment_type_id: change.appointment_type_id,
    version: change.version,
    arrived_at: change.arrived_at,
    checked_in_at: change.checked_in_at,
    visit_started_at: change.visit_started_at,
    fulfilled_at: change.status === "fulfilled" ? (current.fulfilled_at ?? at ?? null) : current.fulfilled_at,
  };
}

/** A change that moved the appointment to another practitioner, clinic or type: the names on the card are stale. */
export function changesNames(current: Appointment, change: AppointmentChange): boolean {
  return (
    current.practitioner_id !== change.practitioner_id ||
    current.location_id !== change.location_id ||
    current.appointment_type_id !== change.appointment_type_id
  );
}

export function matchesFilters(appointment: Appointment, filters: BoardFilters): boolean {
  return (
    (filters.location === null || appointment.location_id === filters.location) &&
    (!filters.modality || appointment.modality === filters.modality) &&
    (filters.practitioner === null || appointment.practitioner_id === filters.practitioner)
  );
}

/** Waiting lanes put the longest wait first; the others follow the clock. */
function laneOrder(lane: LaneId): (a: Appointment, b: Appointment) => number {
  const byStart = (a: Appointment, b: Appointment) => Date.parse(a.start) - Date.parse(b.start) || a.id - b.id;
  if (lane !== "arrived" && lane !== "checked-in") return byStart;
  const since = (a: Appointment) => Date.parse(a.arrived_at ?? a.checked_in_at ?? a.start);
  return (a, b) => since(a) - since(b) || byStart(a, b);
}

export function groupByLane(appointments: Iterable<Appointment>): Record<LaneId, Appointment[]> {
  const lanes: Record<LaneId, Appointment[]> = {
    booked: [],
    arrived: [],
    "checked-in": [],
    "in-visit": [],
    done: [],
    noshow: [],
    cancelled: [],
  };
  for (const appointment of appointments) lanes[laneOf(appointment)].push(appointment);
  for (const id of Object.keys(lanes) as LaneId[]) lanes[id].sort(laneOrder(id));
  return lanes;
}

/** Why a status change was refused, in the desk's words; `now` is the card as re-read after the refusal. */
export function refusalText(failure: unknown, now: Appointment | undefined): string {
  const state = now ? ` It is now ${LANE_TITLES[laneOf(now)]}.` : "";
  if (failure instanceof ApiError) {
    if (failure.status === 412) return `Someone changed this appointment just before you.${state} Check it and try again if still needed.`;
    if (failure.status === 409) return `That is no longer possible.${state}`;
    if (failure.status === 404) return "You may not change this appointment: its patient is not one you can schedule.";
    return failure.detail || "Something went wrong. Try again.";
  }
  return "Something went wrong. Try again.";
}

function readStoredThreshold(): number {
  try {
    const stored = globalThis.localStorage?.getItem(WAIT_THRESHOLD_STORAGE_KEY);
    return stored === null || stored === undefined ? DEFAULT_WAIT_THRESHOLD_MINUTES : clampThreshold(stored);
  } catch {
    return DEFAULT_WAIT_THRESHOLD_MINUTES; // storage disabled: the default, not remembered
  }
}

// ------------------------------------------------------------------ the store

export const useBoardStore = defineStore("board", () => {
  const realtime = useRealtimeStore();

  /** Today's appointments by id. */
  const cards = ref<Record<number, Appointment>>({});
  /** The one clock every waiting time reads (epoch ms, advanced once a second while the board is open). */
  const now = ref(Date.now());
  const day = ref<DayWindow>(localDay(now.value));
  const loading = ref(false);
  const loaded = ref(false);
  const error = ref("");
  /** A card's last refusal or failure, shown on the card. */
  const messages = ref<Record<number, string>>({});
  /** Cards with a status change in flight. */
  const busy = ref<Record<number, boolean>>({});
  const thresholdMinutes = ref(readStoredThreshold());
  const filters = reactive<BoardFilters>({ location: null, modality: "", practitioner: null });

  let users = 0;
  let timer: ReturnType<typeof setInterval> | null = null;
  let leaveStream: (() => void) | null = null;
  let stopEvents: (() => void) | null = null;
  let loadGeneration = 0;
  let reloadTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * Cards changed by pushes, single reads or actions while a day load is in flight, with the version they reached:
   * an older snapshot must not undo them.
   */
  let touchedDuringLoad = new Map<number, number>();
  const fetching = new Map<number, Promise<void>>();
  /** The newest push about a card being fetched: applied on top of the read if the read is older. */
  const queued = new Map<number, { change: AppointmentChange; at: string }>();

  const all = computed(() => Object.values(cards.value));
  const visible = computed(() => all.value.filter((a) => matchesFilters(a, filters)));
  /** Every card of the day, by lane (the scheduling home's counts). */
  const byLane = computed(() => groupByLane(all.value));
  /** The cards the filters let through, by lane (the board). */
  const visibleByLane = computed(() => groupByLane(visible.value));
  const alertCount = computed(
    () => visible.value.filter((a) => isOverThreshold(a, now.value, thresholdMinutes.value)).length,
  );
  const lateCount = computed(() => visible.value.filter((a) => isLate(a, now.value)).length);
  const totalAlertCount = computed(
    () => all.value.filter((a) => isOverThreshold(a, now.value, thresholdMinutes.value)).length,
  );

  function option(entries: [number, string][]): { id: number; name: string }[] {
    return [...new Map(entries).entries()]
      .map(([id, name]) => ({ id, name: name || `#${id}` }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
  const clinics = computed(() => option(all.value.map((a) => [a.location_id, a.location_name])));
  const practitioners = computed(() =>
    option(all.value.map((a) => [a.practitioner_id, a.practitioner_display_name])),
  );

  function put(appointment: Appointment): void {
    if (!inDay(appointment, day.value)) {
      remove(appointment.id);
      return;
    }
    cards.value[appointment.id] = appointment;
  }

  function remove(id: number): void {
    if (!(id in cards.value)) return;
    delete cards.value[id];
    delete messages.value[id];
  }

  /** (Re)loads the day; the newest call wins. Changes pushed meanwhile survive an older snapshot. */
  async function load(): Promise<void> {
    const generation = ++loadGeneration;
    touchedDuringLoad = new Map();
    loading.value = true;
    const window = day.value;
    try {
      const { results } = await scheduling.appointments({
        start: new Date(window.start).toISOString(),
        end: new Date(window.end).toISOString(),
      });
      if (generation !== loadGeneration) return;
      const next: Record<number, Appointment> = {};
      for (const appointment of results) next[appointment.id] = appointment;
      for (const [id, version] of touchedDuringLoad) {
        const mine = cards.value[id];
        const theirs = next[id];
        if (mine) {
          if (!theirs || mine.version > theirs.version) next[id] = mine;
        } else if (theirs && theirs.version <= version) {
          delete next[id]; // moved off today (or out of sight) after the snapshot was taken
        }
      }
      cards.value = next;
      for (const id of Object.keys(messages.value).map(Number)) if (!(id in next)) delete messages.value[id];
      error.value = "";
      loaded.value = true;
    } catch (failure) {
      if (generation !== loadGeneration) return;
      error.value =
        failure instanceof ApiError ? `Could not load today's appointments: ${failure.detail}` : "Could not load today's appointments.";
    } finally {
      if (generation === loadGeneration) loading.value = false;
    }
  }

  /** Reads one appointment (after a push about one we do not know, or a refusal) and places it. */
  function fetchCard(id: number): Promise<void> {
    const pending = fetching.get(id);
    if (pending) return pending;
    const run = (async () => {
      try {
        const { data } = await scheduling.appointment(id);
        const current = cards.value[id];
        if (!current || data.version >= current.version) {
          touchedDuringLoad.set(id, data.version);
          put(data);
        }
        const late = queued.get(id);
        const placed = cards.value[id];
        if (late && placed) {
          const next = applyChange(placed, late.change, late.at);
          if (next) {
            touchedDuringLoad.set(id, next.version);
            put(next);
          }
        }
      } catch (failure) {
        // 404: this viewer may not open the appointment on its own (a nurse, another clinic's patient). The day's
        // list still shows it to staff, without the name: a new one is picked up by reloading the day.
        if (failure instanceof ApiError && failure.status === 404 && !(id in cards.value)) reloadSoon();
      } finally {
        fetching.delete(id);
        queued.delete(id);
      }
    })();
    fetching.set(id, run);
    return run;
  }

  /** One day reload for a burst of appointments that could not be read one by one. */
  function reloadSoon(): void {
    if (reloadTimer !== null) return;
    reloadTimer = setTimeout(() => {
      reloadTimer = null;
      void load();
    }, RELOAD_DELAY_MS);
  }

  function handleEvent(event: StreamEvent): void {
    if (event.type !== APPOINTMENT_CHANGED) return;
    const change = parseChange(event.data);
    if (!change) return;
    const current = cards.value[change.id];
    if (!current) {
      if (!inDay(change, day.value)) return;
      const seen = queued.get(change.id);
      if (fetching.has(change.id) && (!seen || seen.change.version < change.version)) {
        queued.set(change.id, { change, at: event.at });
      }
      void fetchCard(change.id);
      return;
    }
    const next = applyChange(current, change, event.at);
    if (!next) return; // not newer than the card
    touchedDuringLoad.set(change.id, next.version);
    put(next);
    if (inDay(next, day.value) && changesNames(current, change)) void fetchCard(change.id);
  }

  async function setStatus(id: number, status: BoardAction): Promise<void> {
    const card = cards.value[id];
    if (!card || busy.value[id]) return;
    busy.value[id] = true;
    delete messages.value[id];
    try {
      const { data } = await scheduling.setStatus(id, appointmentEtag(card.version), status);
      const current = cards.value[id];
      if (!current || data.version >= current.version) {
        touchedDuringLoad.set(id, data.version);
        put(data);
      }
    } catch (failure) {
      if (failure instanceof ApiError && [409, 412].includes(failure.status)) await fetchCard(id);
      const now = cards.value[id];
      if (now) messages.value[id] = refusalText(failure, failure instanceof ApiError && failure.status === 404 ? undefined : now);
      else error.value = refusalText(failure, undefined);
    } finally {
      delete busy.value[id];
    }
  }

  function dismissMessage(id: number): void {
    delete messages.value[id];
  }

  function setThreshold(value: unknown): void {
    thresholdMinutes.value = clampThreshold(value);
    try {
      globalThis.localStorage?.setItem(WAIT_THRESHOLD_STORAGE_KEY, String(thresholdMinutes.value));
    } catch {
      // Storage disabled: the threshold holds for this page only.
    }
  }

  function tick(): void {
    now.value = Date.now();
    if (now.value >= day.value.end) {
      // Midnight: the board moves on to the new day.
      day.value = localDay(now.value);
      void load();
    }
  }

  /** Opens the board (pages call it on mount; counted, so two views share one clock and subscription). */
  function open(): void {
    users++;
    if (users > 1) return;
    now.value = Date.now();
    day.value = localDay(now.value);
    timer = setInterval(tick, 1000);
    stopEvents = realtime.subscribe(handleEvent);
    // Loaded now, and again whenever the server (re)confirms the subscription: what happened while the socket
    // was away is then in the snapshot, and everything after it arrives as events.
    leaveStream = realtime.joinStream(BOARD_STREAM, () => void load());
    void load();
  }

  function close(): void {
    if (users === 0) return;
    users--;
    if (users > 0) return;
    if (timer !== null) clearInterval(timer);
    timer = null;
    if (reloadTimer !== null) clearTimeout(reloadTimer);
    reloadTimer = null;
    leaveStream?.();
    leaveStream = null;
    stopEvents?.();
    stopEvents = null;
    loadGeneration++;
  }

  function $reset(): void {
    users = 1;
    close();
    cards.value = {};
    messages.value = {};
    busy.value = {};
    loaded.value = false;
    loading.value = false;
    error.value = "";
    filters.location = null;
    filters.modality = "";
    filters.practitioner = null;
    thresholdMinutes.value = readStoredThreshold();
  }

  return {
    cards,
    now,
    day,
    loading,
    loaded,
    error,
    messages,
    busy,
    thresholdMinutes,
    filters,
    visible,
    byLane,
    visibleByLane,
    alertCount,
    totalAlertCount,
    lateCount,
    clinics,
    practitioners,
    load,
    fetchCard,
    handleEvent,
    setStatus,
    dismissMessage,
    setThreshold,
    open,
    close,
    $reset,
  };
});
