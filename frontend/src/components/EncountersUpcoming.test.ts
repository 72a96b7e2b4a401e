// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { Appointment, Encounter } from "../api/types";
import { formatDateTime } from "../format";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe, makePatient, type FakeReply } from "../testing/backend";
import { makeAppointment } from "../testing/bookingBackend";
import { button, byRole, field, fill, queryButton, text } from "../testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;

const upcoming = () => document.querySelector<HTMLElement>('[data-testid="upcoming-encounters"]');
const encounterRow = (id: number) => document.querySelector<HTMLElement>(`[data-encounter-id="${id}"]`);
const cancelCalls = (id: number) => backend.calls(`POST /api/v1/ehr/encounters/${id}/cancel/`);

const SOON = "2030-05-14T09:00:00Z";
const LATER = "2030-06-02T14:30:00Z";

async function openChart(): Promise<void> {
  mounted = await mountApp("/patients/42", backend);
  await waitFor(() => document.querySelector('[data-testid="encounters"] ol, [data-testid="encounters"] .muted') !== null, "the encounters");
  await waitFor(() => upcoming() !== null, "the upcoming visits");
}

function plan(startIso: string, overrides: Record<string, unknown> = {}) {
  const end = new Date(Date.parse(startIso) + 30 * 60_000).toISOString();
  return backend.clinical.addEncounter(42, {
    status: "planned",
    period_start: null,
    planned_start: startIso,
    planned_end: end,
    practitioner_display_name: "Dr Cristina Yang",
    reason: "Blood pressure review",
    ...overrides,
  });
}

beforeEach(() => {
  localStorage.clear();
  sessionStorage.clear();
  backend = new FakeBackend();
  backend.me = makeMe();
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
  backend.addPatient(makePatient({ id: 42 }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
});

describe("upcoming visits in the chart", () => {
  it("lists planned encounters under Upcoming, soonest first, apart from past ones", async () => {
    const later = plan(LATER);
    const soon = plan(SOON);
    const past = backend.clinical.addEncounter(42, { status: "finished" });
    await openChart();
    const items = [...(upcoming()?.querySelectorAll("li[data-encounter-id]") ?? [])].map((li) => Number(li.getAttribute("data-encounter-id")));
    expect(items).toEqual([soon.id, later.id]);
    expect(text(encounterRow(soon.id)?.querySelector("h4"))).toContain(formatDateTime(SOON));
    expect(text(encounterRow(soon.id))).toContain("With Dr Cristina Yang · Reason: Blood pressure review");
    expect(upcoming()?.contains(encounterRow(past.id))).toBe(false);
    expect(encounterRow(past.id)).not.toBeNull();
  });

  it("cancels a visit with a reason and the version it was shown at", async () => {
    const visit = plan(SOON);
    await openChart();
    button("Cancel visit", encounterRow(visit.id) ?? document).click();
    await settle();
    button("Cancel the visit").click();
    await settle();
    expect(cancelCalls(visit.id)).toHaveLength(0);
    expect(byRole("alert").map(text)).toContain("Say why the visit is cancelled.");
    fill(field("Why is the visit cancelled?"), "Patient rang: travelling");
    button("Cancel the visit").click();
    await waitFor(() => upcoming() === null, "the visit to leave Upcoming");
    const call = cancelCalls(visit.id)[0];
    expect(call?.headers["If-Match"]).toBe('"1"');
    expect(call?.body).toEqual({ reason: "Patient rang: travelling" });
    expect(text(encounterRow(visit.id)?.querySelector('[data-testid="encounter-status"]'))).toBe("Cancelled");
    expect(byRole("status").map(text)).toContain("Visit cancelled.");
  });

  it("keeps the visit when the cancel is abandoned", async () => {
    const visit = plan(SOON);
    await openChart();
    button("Cancel visit").click();
    await settle();
    button("Keep it").click();
    await settle();
    expect(queryButton("Cancel the visit")).toBeUndefined();
    expect(document.activeElement?.id).toBe(`cancel-open-${visit.id}`);
    expect(cancelCalls(visit.id)).toHaveLength(0);
  });

  it("reloads instead of overwriting a visit that changed meanwhile", async () => {
    const visit = plan(SOON);
    await openChart();
    backend.clinical.encounters[0] = { ...visit, version: 2, reason: "Moved by the front desk" };
    button("Cancel visit").click();
    await settle();
    fill(field("Why is the visit cancelled?"), "Rang");
    button("Cancel the visit").click();
    await waitFor(() => text(encounterRow(visit.id)).includes("Moved by the front desk"), "the reloaded visit");
    expect(byRole("alert").map(text)).toContain("The visit changed since you loaded it. Check it, then cancel again if needed.");
    expect(backend.clinical.encounters[0]?.status).toBe("planned");
  });
});

/**
 * The scheduling side of one booked visit: GET with its ETag and POST cancel with If-Match, which (as the real
 * booking service does) cancels the planned encounter too. `refuse` makes the cancel answer an error instead.
 */
function bookInScheduling(visit: Encounter, refuse: FakeReply | null = null): { appointment: () => Appointment } {
  let appointment = makeAppointment({ id: 321, patient_id: 42, encounter_id: visit.id, start: visit.planned_start ?? SOON, version: 3 });
  const path = `/api/v1/scheduling/appointments/${appointment.id}/`;
  backend.on(`GET ${path}`, () => ({ status: 200, body: appointment, headers: { ETag: `"${appointment.version}"` } }));
  backend.on(`POST ${path}cancel/`, (request) => {
    if (refuse) return refuse;
    if (request.headers["If-Match"] !== `"${appointment.version}"`) {
      return { status: 412, body: { code: "version_conflict", detail: "Changed.", current_version: appointment.version } };
    }
    const reason = String((request.body as { reason?: string }).reason ?? "");
    appointment = { ...appointment, status: "cancelled", cancel_reason: reason, version: appointment.version + 1 };
    const index = backend.clinical.encounters.findIndex((e) => e.id === visit.id);
    const before = backend.clinical.encounters[index];
    if (before) backend.clinical.encounters[index] = { ...before, status: "cancelled", version: before.version + 1 };
    return { status: 200, body: appointment, headers: { ETag: `"${appointment.version}"` } };
  });
  return { appointment: () => appointment };
}

const appointmentCalls = (method: "GET" | "POST", suffix = "") => backend.calls(`${method} /api/v1/scheduling/appointments/321/${suffix}`);

async function cancelWithReason(visitId: number, reason: string): Promise<void> {
  button("Cancel visit", encounterRow(visitId) ?? document).click();
  await settle();
  fill(field("Why is the visit cancelled?"), reason);
  button("Cancel the visit").click();
}

describe("upcoming visits booked in scheduling", () => {
  it("cancels the appointment (its ETag, If-Match, the reason), then shows the visit cancelled", async () => {
    const visit = plan(SOON, { appointment_id: 321 });
    const scheduled = bookInScheduling(visit);
    await openChart();
    button("Cancel visit", encounterRow(visit.id) ?? document).click();
    await settle();
    expect(text(document.querySelector('[data-testid="cancel-appointment-note"]'))).toBe(
      "Booked in scheduling: this cancels the appointment.",
    );
    fill(field("Why is the visit cancelled?"), "Patient rang: travelling");
    button("Cancel the visit").click();
    await waitFor(() => upcoming() === null, "the visit to leave Upcoming");
    expect(appointmentCalls("GET")).toHaveLength(1);
    const call = appointmentCalls("POST", "cancel/")[0];
    expect(call?.headers["If-Match"]).toBe('"3"');
    expect(call?.body).toEqual({ reason: "Patient rang: travelling" });
    expect(cancelCalls(visit.id)).toHaveLength(0); // never the encounter's own cancel
    expect(scheduled.appointment().status).toBe("cancelled");
    expect(text(encounterRow(visit.id)?.querySelector('[data-testid="encounter-status"]'))).toBe("Cancelled");
    expect(byRole("status").map(text)).toContain("Visit cancelled: the appointment is cancelled in scheduling too.");
  });

  it("says so when the appointment was already cancelled elsewhere, and shows the visit as it is now", async () => {
    const visit = plan(SOON, { appointment_id: 321 });
    bookInScheduling(visit);
    backend.on("GET /api/v1/scheduling/appointments/321/", () => {
      backend.clinical.encounters[0] = { ...visit, status: "cancelled", version: 2 };
      return { status: 200, body: makeAppointment({ id: 321, status: "cancelled", version: 4 }), headers: { ETag: '"4"' } };
    });
    await openChart();
    await cancelWithReason(visit.id, "Rang");
    await waitFor(() => upcoming() === null, "the reloaded visit");
    expect(appointmentCalls("POST", "cancel/")).toHaveLength(0);
    expect(byRole("status").map(text)).toContain("The appointment had already been cancelled.");
  });

  it.each([
    {
      name: "403",
      reply: { status: 403, body: { code: "permission_denied", detail: "You may not change this appointment." } },
      message: "You may not cancel this appointment. Ask the front desk to cancel it.",
      formKept: true,
    },
    {
      name: "too_late",
      reply: { status: 400, body: { code: "too_late", detail: "Too close to the start to change online; please call the clinic." } },
      message: "It is too close to the visit to cancel it online. Call the clinic to cancel it.",
      formKept: true,
    },
    {
      name: "404",
      reply: { status: 404, body: { code: "not_found", detail: "No such appointment." } },
      message: "This appointment no longer exists in scheduling. Ask the front desk.",
      formKept: false,
    },
    {
      name: "409",
      reply: { status: 409, body: { code: "invalid_transition", detail: "An appointment cannot go from checked-in to cancelled." } },
      message: "The appointment cannot be cancelled any more. An appointment cannot go from checked-in to cancelled.",
      formKept: false,
    },
    {
      name: "412",
      reply: { status: 412, body: { code: "version_conflict", detail: "Changed.", current_version: 5 } },
      message: "The appointment changed since you loaded it. Check the visit, then cancel again if needed.",
      formKept: false,
    },
  ])("explains a refused cancel ($name) and changes nothing", async ({ reply, message, formKept }) => {
    const visit = plan(SOON, { appointment_id: 321 });
    bookInScheduling(visit, reply);
    await openChart();
    const listsBefore = backend.calls("GET /api/v1/ehr/patients/42/encounters/").length;
    await cancelWithReason(visit.id, "Rang");
    await waitFor(() => byRole("alert").map(text).includes(message), "the explanation");
    expect(queryButton("Cancel the visit") !== undefined).toBe(formKept);
    // A refusal that means the visit changed reloads it; the others leave the list as it was.
    expect(backend.calls("GET /api/v1/ehr/patients/42/encounters/").length).toBe(listsBefore + (formKept ? 0 : 1));
    expect(backend.clinical.encounters[0]?.status).toBe("planned");
    expect(text(encounterRow(visit.id)?.querySelector('[data-testid="encounter-status"]'))).toBe("Planned");
    expect(cancelCalls(visit.id)).toHaveLength(0);
  });

  it("keeps showing the cancelled visit when the cancel closes the chart to the user", async () => {
    const visit = plan(SOON, { appointment_id: 321 });
    bookInScheduling(visit);
    await openChart();
    // The booked visit was the clinician's only link to the patient: once it is cancelled the chart is closed.
    backend.on("POST /api/v1/scheduling/appointments/321/cancel/", () => {
      backend.on("GET /api/v1/ehr/patients/42/encounters/", () => ({
        status: 403,
        body: { code: "break_glass_required", detail: "This patient is not in your care." },
      }));
      return { status: 200, body: makeAppointment({ id: 321, status: "cancelled", version: 4 }), headers: { ETag: '"4"' } };
    });
    await cancelWithReason(visit.id, "Rang");
    await waitFor(() => upcoming() === null, "the visit to leave Upcoming");
    expect(text(encounterRow(visit.id)?.querySelector('[data-testid="encounter-status"]'))).toBe("Cancelled");
    expect(byRole("status").map(text)).toContain(
      "Visit cancelled: the appointment is cancelled in scheduling too. The chart is now closed to you: this visit was your link to the patient.",
    );
  });

  it("a visit planned without an appointment is still cancelled directly", async () => {
    const visit = plan(SOON);
    await openChart();
    expect(document.querySelector('[data-testid="cancel-appointment-note"]')).toBeNull();
    await cancelWithReason(visit.id, "Rang");
    await waitFor(() => upcoming() === null, "the visit to leave Upcoming");
    expect(cancelCalls(visit.id)).toHaveLength(1);
  });
});
