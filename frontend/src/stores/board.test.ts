// @vitest-environment happy-dom
import { createPinia, setActivePinia } from "pinia";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { setFetch } from "../api/client";
import type { Appointment, StreamEvent } from "../api/types";
import { settle } from "../testing/app";
import { FakeBackend } from "../testing/backend";
import {
  BOARD_STREAM,
  DEFAULT_WAIT_THRESHOLD_MINUTES,
  WAIT_THRESHOLD_STORAGE_KEY,
  actionsFor,
  applyChange,
  clampThreshold,
  formatWait,
  groupByLane,
  inDay,
  isLate,
  isOverThreshold,
  laneOf,
  localDay,
  parseChange,
  useBoardStore,
  waitSeconds,
  type AppointmentChange,
} from "./board";

const NOW = new Date(2031, 2, 3, 10, 0, 0).getTime(); // 10:00 local time, whatever the runner's zone
const at = (minutesFromNow: number) => new Date(NOW + minutesFromNow * 60_000).toISOString();

function makeAppointment(overrides: Partial<Appointment> = {}): Appointment {
  return {
    id: 1,
    patient_id: 42,
    patient_display_name: "Ada Abbott",
    patient_mrn: "MRN00000042",
    appointment_type_id: 3,
    appointment_type_name: "Video consultation",
    practitioner_id: 7,
    practitioner_display_name: "Dana Okafor",
    location_id: 2,
    location_name: "Riverside Clinic",
    modality: "video",
    status: "booked",
    start: at(30),
    end: at(60),
    resources: [],
    encounter_id: 90,
    series_id: null,
    comment: "",
    cancel_reason: "",
    override_reason: "",
    arrived_at: null,
    checked_in_at: null,
    visit_started_at: null,
    fulfilled_at: null,
    version: 1,
    created_at: at(-600),
    updated_at: at(-600),
    ...overrides,
  };
}

function changeOf(appointment: Appointment, overrides: Partial<AppointmentChange> = {}): AppointmentChange {
  return {
    id: appointment.id,
    status: appointment.status,
    start: appointment.start,
    end: appointment.end,
    practitioner_id: appointment.practitioner_id,
    location_id: appointment.location_id,
    modality: appointment.modality,
    appointment_type_id: appointment.appointment_type_id,
    version: appointment.version,
    arrived_at: appointment.arrived_at,
    checked_in_at: appointment.checked_in_at,
    visit_started_at: appointment.visit_started_at,
    ...overrides,
  };
}

let seq = 0;
function pushed(change: AppointmentChange, type = "appointment.changed"): StreamEvent {
  seq += 1;
  return { stream: BOARD_STREAM, seq, type, data: { ...change, event: "status_changed" }, at: new Date(NOW).toISOString() };
}

describe("board rules", () => {
  it("puts each state in its lane, with a started visit in 'In visit' and cancellations apart", () => {
    expect(laneOf(makeAppointment({ status: "booked" }))).toBe("booked");
    expect(laneOf(makeAppointment({ status: "pending" }))).toBe("booked");
    expect(laneOf(makeAppointment({ status: "arrived" }))).toBe("arrived");
    expect(laneOf(makeAppointment({ status: "checked-in" }))).toBe("checked-in");
    expect(laneOf(makeAppointment({ status: "checked-in", visit_started_at: at(-1) }))).toBe("in-visit");
    expect(laneOf(makeAppointment({ status: "arrived", visit_started_at: at(-1) }))).toBe("in-visit");
    expect(laneOf(makeAppointment({ status: "fulfilled", visit_started_at: at(-1) }))).toBe("done");
    expect(laneOf(makeAppointment({ status: "noshow" }))).toBe("noshow");
    expect(laneOf(makeAppointment({ status: "cancelled" }))).toBe("cancelled");
    expect(laneOf(makeAppointment({ status: "entered-in-error" }))).toBe("cancelled");
  });

  it("groups cards by lane, longest wait first in the waiting lanes and by start elsewhere", () => {
    const lanes = groupByLane([
      makeAppointment({ id: 1, start: at(60), end: at(90) }),
      makeAppointment({ id: 2, start: at(30) }),
      makeAppointment({ id: 3, status: "arrived", start: at(-30), arrived_at: at(-5) }),
      makeAppointment({ id: 4, status: "arrived", start: at(0), arrived_at: at(-20) }),
    ]);
    expect(lanes.booked.map((a) => a.id)).toEqual([2, 1]);
    expect(lanes.arrived.map((a) => a.id)).toEqual([4, 3]);
    expect(lanes.done).toEqual([]);
  });

  it("counts the wait from arrival until the visit starts, or until now while waiting", () => {
    expect(waitSeconds(makeAppointment({ status: "arrived", arrived_at: at(-12) }), NOW)).toBe(12 * 60);
    // Checked in without arriving first: the wait starts at check-in.
    expect(waitSeconds(makeAppointment({ status: "checked-in", checked_in_at: at(-3) }), NOW)).toBe(180);
    // Arrival, not check-in, starts the wait when both happened.
    expect(waitSeconds(makeAppointment({ status: "checked-in", arrived_at: at(-10), checked_in_at: at(-2) }), NOW)).toBe(600);
    // The visit started: the wait is frozen at its length.
    expect(
      waitSeconds(makeAppointment({ status: "checked-in", arrived_at: at(-30), visit_started_at: at(-22) }), NOW),
    ).toBe(8 * 60);
    expect(waitSeconds(makeAppointment({ status: "booked" }), NOW)).toBeNull();
    expect(waitSeconds(makeAppointment({ status: "fulfilled", arrived_at: at(-30) }), NOW)).toBeNull();
  });

  it("raises the alert only for a wait longer than the threshold that is still running", () => {
    const waiting = makeAppointment({ status: "arrived", arrived_at: at(-15) });
    expect(isOverThreshold(waiting, NOW, 15)).toBe(false);
    expect(isOverThreshold(waiting, NOW + 1000, 15)).toBe(true);
    expect(isOverThreshold(waiting, NOW, 20)).toBe(false);
    const inVisit = makeAppointment({ status: "checked-in", arrived_at: at(-40), visit_started_at: at(-1) });
    expect(isOverThreshold(inVisit, NOW, 15)).toBe(false);
  });

  it("flags a booked patient as late once the start has passed", () => {
    const appointment = makeAppointment({ start: at(-1), end: at(29) });
    expect(isLate(appointment, NOW)).toBe(true);
    expect(isLate(makeAppointment({ start: at(1) }), NOW)).toBe(false);
    expect(isLate(makeAppointment({ start: at(-1), status: "arrived", arrived_at: at(-2) }), NOW)).toBe(false);
  });

  it("offers arrival and check-in to booked cards, no-show only after the start, check-in to arrived ones", () => {
    expect(actionsFor(makeAppointment({ start: at(5) }), NOW)).toEqual(["arrived", "checked-in"]);
    expect(actionsFor(makeAppointment({ start: at(-5) }), NOW)).toEqual(["arrived", "checked-in", "noshow"]);
    expect(actionsFor(makeAppointment({ status: "arrived", arrived_at: at(-1) }), NOW)).toEqual(["checked-in"]);
    expect(actionsFor(makeAppointment({ status: "checked-in" }), NOW)).toEqual([]);
    expect(actionsFor(makeAppointment({ status: "fulfilled" }), NOW)).toEqual([]);
  });

  it("formats waits as minutes:seconds, with hours when needed", () => {
    expect(formatWait(0)).toBe("0:00");
    expect(formatWait(65)).toBe("1:05");
    expect(formatWait(3723)).toBe("1:02:03");
  });

  it("keeps the threshold a whole number of minutes in range", () => {
    expect(clampThreshold("20")).toBe(20);
    expect(clampThreshold(7.6)).toBe(8);
    expect(clampThreshold(0)).toBe(1);
    expect(clampThreshold(10_000)).toBe(240);
    expect(clampThreshold("soon")).toBe(DEFAULT_WAIT_THRESHOLD_MINUTES);
    expect(clampThreshold("")).toBe(DEFAULT_WAIT_THRESHOLD_MINUTES);
  });

  it("takes the viewer's local day, overlapping as the API's window does", () => {
    const day = localDay(NOW);
    expect(new Date(day.start).getHours()).toBe(0);
    expect(new Date(day.end).getDate()).toBe(4);
    expect(inDay(makeAppointment(), day)).toBe(true);
    expect(inDay(makeAppointment({ start: new Date(day.end).toISOString(), end: new Date(day.end + 1_800_000).toISOString() }), day)).toBe(false);
    // Started before midnight, still running: today.
    expect(inDay(makeAppointment({ start: new Date(day.start - 600_000).toISOString(), end: new Date(day.start + 600_000).toISOString() }), day)).toBe(true);
  });

  it("applies a newer push and ignores an older or equal one", () => {
    const card = makeAppointment({ version: 3 });
    const arrived = applyChange(card, changeOf(card, { status: "arrived", arrived_at: at(0), version: 4 }));
    expect(arrived).toMatchObject({ status: "arrived", arrived_at: at(0), version: 4, patient_display_name: "Ada Abbott" });
    expect(applyChange(card, changeOf(card, { status: "noshow", version: 3 }))).toBeNull();
    expect(applyChange(card, changeOf(card, { status: "noshow", version: 2 }))).toBeNull();
  });

  it("reads only well-formed pushes", () => {
    const change = changeOf(makeAppointment());
    expect(parseChange({ ...change })).toEqual(change);
    expect(parseChange({ ...change, status: "lost" })).toBeNull();
    expect(parseChange({ ...change, id: "1" })).toBeNull();
    expect(parseChange({ ...change, start: "tomorrow" })).toBeNull();
  });
});

describe("board store", () => {
  let backend: FakeBackend;
  let day: Appointment[];

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date", "setInterval", "clearInterval"] });
    vi.setSystemTime(NOW);
    localStorage.clear();
    setActivePinia(createPinia());
    backend = new FakeBackend();
    backend.me = null;
    document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
    day = [
      makeAppointment({ id: 1 }),
      makeAppointment({ id: 2, status: "arrived", start: at(-10), end: at(20), arrived_at: at(-16), version: 2 }),
      makeAppointment({ id: 3, status: "cancelled", version: 2 }),
    ];
    backend.on("GET /api/v1/scheduling/appointments/", () => ({ status: 200, body: { results: day } }));
    setFetch(backend.fetch);
  });

  afterEach(() => {
    useBoardStore().$reset();
    vi.useRealTimers();
  });

  async function openBoard() {
    const board = useBoardStore();
    board.open();
    await settle();
    return board;
  }

  it("loads the viewer's local day", async () => {
    const board = await openBoard();
    const [call] = backend.calls("GET /api/v1/scheduling/appointments/");
    expect(call?.query.get("start")).toBe(new Date(localDay(NOW).start).toISOString());
    expect(call?.query.get("end")).toBe(new Date(localDay(NOW).end).toISOString());
    expect(board.visibleByLane.booked.map((a) => a.id)).toEqual([1]);
    expect(board.visibleByLane.arrived.map((a) => a.id)).toEqual([2]);
    expect(board.visibleByLane.cancelled.map((a) => a.id)).toEqual([3]);
  });

  it("moves a card when a newer push arrives, and ignores a stale one", async () => {
    const board = await openBoard();
    board.handleEvent(pushed(changeOf(day[0]!, { status: "arrived", arrived_at: at(0), version: 2 })));
    expect(board.visibleByLane.arrived.map((a) => a.id)).toEqual([2, 1]);
    board.handleEvent(pushed(changeOf(day[0]!, { status: "booked", version: 1 })));
    expect(board.cards[1]?.status).toBe("arrived");
    expect(board.cards[1]?.version).toBe(2);
    // Names are not in pushes and stay as read.
    expect(board.cards[1]?.patient_display_name).toBe("Ada Abbott");
  });

  it("fetches an appointment of today it does not know, and skips one of another day", async () => {
    const board = await openBoard();
    const fresh = makeAppointment({ id: 55, patient_display_name: "Ben Baird", version: 1 });
    backend.on("GET /api/v1/scheduling/appointments/55/", () => ({ status: 200, body: fresh, headers: { ETag: '"1"' } }));
    board.handleEvent(pushed(changeOf(fresh)));
    await settle();
    expect(board.cards[55]?.patient_display_name).toBe("Ben Baird");

    const tomorrow = makeAppointment({ id: 56, start: at(24 * 60), end: at(24 * 60 + 30) });
    board.handleEvent(pushed(changeOf(tomorrow)));
    await settle();
    expect(backend.calls("GET /api/v1/scheduling/appointments/56/")).toEqual([]);
    expect(board.cards[56]).toBeUndefined();
  });

  it("reloads the day when an appointment it was told about may not be read on its own", async () => {
    const board = await openBoard();
    const elsewhere = makeAppointment({ id: 57, patient_display_name: "", location_id: 9 });
    backend.on("GET /api/v1/scheduling/appointments/57/", () => ({
      status: 404,
      body: { code: "not_found", detail: "No such appointment." },
    }));
    day.push(elsewhere);
    board.handleEvent(pushed(changeOf(elsewhere)));
    await vi.waitFor(() => expect(backend.calls("GET /api/v1/scheduling/appointments/")).toHaveLength(2), { timeout: 3000 });
    await settle();
    expect(board.cards[57]?.patient_display_name).toBe("");
  });

  it("says so on the card when this viewer may not change the appointment", async () => {
    const board = await openBoard();
    backend.on("POST /api/v1/scheduling/appointments/1/status/", () => ({
      status: 404,
      body: { code: "not_found", detail: "No such appointment." },
    }));
    await board.setStatus(1, "arrived");
    expect(board.cards[1]?.status).toBe("booked");
    expect(board.messages[1]).toBe("You may not change this appointment: its patient is not one you can schedule.");
  });

  it("drops a card rescheduled to another day", async () => {
    const board = await openBoard();
    board.handleEvent(pushed(changeOf(day[0]!, { start: at(24 * 60), end: at(24 * 60 + 30), version: 2 })));
    expect(board.cards[1]).toBeUndefined();
  });

  it("ignores other events", async () => {
    const board = await openBoard();
    board.handleEvent({ stream: "user:5", seq: 1, type: "session.signed_in_elsewhere", data: { id: 1 }, at: at(0) });
    expect(board.cards[1]?.status).toBe("booked");
  });

  it("ticks every waiting time from one clock and raises the alert past the threshold", async () => {
    const board = await openBoard();
    expect(board.alertCount).toBe(1); // waiting 16 min > 15
    board.setThreshold(20);
    expect(board.alertCount).toBe(0);
    vi.advanceTimersByTime(4 * 60_000 + 1000);
    expect(board.now).toBe(NOW + 4 * 60_000 + 1000);
    expect(board.alertCount).toBe(1); // 20 min 1 s
  });

  it("remembers the threshold in localStorage", async () => {
    const board = await openBoard();
    board.setThreshold("25");
    expect(localStorage.getItem(WAIT_THRESHOLD_STORAGE_KEY)).toBe("25");
    board.$reset();
    setActivePinia(createPinia());
    expect(useBoardStore().thresholdMinutes).toBe(25);
  });

  it("counts late arrivals", async () => {
    day.push(makeAppointment({ id: 4, start: at(-5), end: at(25) }));
    const board = await openBoard();
    expect(board.lateCount).toBe(1);
  });

  it("filters by clinic, modality and practitioner", async () => {
    day.push(
      makeAppointment({ id: 4, location_id: 9, location_name: "Hilltop Virtual Clinic", practitioner_id: 8, practitioner_display_name: "Priya Raman" }),
      makeAppointment({ id: 5, modality: "in-person" }),
    );
    const board = await openBoard();
    expect(board.clinics.map((c) => c.name)).toEqual(["Hilltop Virtual Clinic", "Riverside Clinic"]);
    board.filters.location = 9;
    expect(board.visible.map((a) => a.id)).toEqual([4]);
    board.filters.location = null;
    board.filters.modality = "in-person";
    expect(board.visible.map((a) => a.id)).toEqual([5]);
    board.filters.modality = "";
    board.filters.practitioner = 8;
    expect(board.visible.map((a) => a.id)).toEqual([4]);
  });

  it("sends a status change with the card's version and places the answer", async () => {
    const board = await openBoard();
    backend.on("POST /api/v1/scheduling/appointments/1/status/", (request) => ({
      status: 200,
      body: { ...day[0], status: (request.body as { status: string }).status, arrived_at: at(0), version: 2 },
      headers: { ETag: '"2"' },
    }));
    await board.setStatus(1, "arrived");
    const [call] = backend.calls("POST /api/v1/scheduling/appointments/1/status/");
    expect(call?.headers["If-Match"]).toBe('"1"');
    expect(call?.body).toEqual({ status: "arrived" });
    expect(board.cards[1]?.status).toBe("arrived");
  });

  it("re-reads the card and says why when the change was refused as stale", async () => {
    const board = await openBoard();
    backend.on("POST /api/v1/scheduling/appointments/1/status/", () => ({
      status: 412,
      body: { code: "version_conflict", detail: "The appointment changed since you read it; reload and try again.", current_version: 2 },
    }));
    backend.on("GET /api/v1/scheduling/appointments/1/", () => ({
      status: 200,
      body: { ...day[0], status: "arrived", arrived_at: at(-1), version: 2 },
      headers: { ETag: '"2"' },
    }));
    await board.setStatus(1, "checked-in");
    expect(board.cards[1]?.status).toBe("arrived");
    expect(board.messages[1]).toBe("Someone changed this appointment just before you. It is now Arrived. Check it and try again if still needed.");
  });

  it("says why a refused transition failed", async () => {
    const board = await openBoard();
    backend.on("POST /api/v1/scheduling/appointments/1/status/", () => ({
      status: 409,
      body: { code: "invalid_transition", detail: "Cannot go from noshow to arrived." },
    }));
    backend.on("GET /api/v1/scheduling/appointments/1/", () => ({
      status: 200,
      body: { ...day[0], status: "noshow", version: 2 },
    }));
    await board.setStatus(1, "arrived");
    expect(board.messages[1]).toBe("That is no longer possible. It is now No-show.");
  });

  it("keeps a pushed change that is newer than a day load still in flight", async () => {
    const board = await openBoard();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const snapshot = day.map((a) => ({ ...a }));
    backend.on("GET /api/v1/scheduling/appointments/", async () => {
      await gate;
      return { status: 200, body: { results: snapshot } };
    });
    const reload = board.load();
    board.handleEvent(pushed(changeOf(day[0]!, { status: "arrived", arrived_at: at(0), version: 2 })));
    release();
    await reload;
    expect(board.cards[1]?.status).toBe("arrived");
  });
});
