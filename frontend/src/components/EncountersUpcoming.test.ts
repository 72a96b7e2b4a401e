// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { formatDateTime } from "../format";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe, makePatient } from "../testing/backend";
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
