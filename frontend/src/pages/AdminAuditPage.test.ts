// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { localInputToIso } from "../format";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeAuditEventRow, makeMe } from "../testing/backend";
import { button, byRole, choose, field, fill, heading, link, navigation, queryButton, select, text } from "../testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;

async function openAudit(path = "/admin-console/audit"): Promise<MountedApp> {
  mounted = await mountApp(path, backend);
  await waitFor(() => heading() === "Audit log" && countText() !== "Loading audit events…", "the audit log");
  return mounted;
}

function countText(): string {
  return text(document.querySelector('[data-testid="audit-count"]'));
}

function listCalls(): URLSearchParams[] {
  return backend.calls("GET /api/v1/ehr/audit-events/").map((call) => call.query);
}

function lastQuery(): Record<string, string> {
  return Object.fromEntries(listCalls().at(-1) ?? []);
}

function rowIds(): string[] {
  return [...document.querySelectorAll("tbody tr[data-event-id]")].map((tr) => tr.getAttribute("data-event-id") ?? "");
}

function row(id: number): HTMLTableRowElement {
  const found = document.querySelector<HTMLTableRowElement>(`tbody tr[data-event-id="${id}"]`);
  if (!found) throw new Error(`no row for event ${id}`);
  return found;
}

function cells(id: number): string[] {
  return [...row(id).querySelectorAll("th, td")].map(text);
}

async function submit(): Promise<void> {
  button("Search").click();
  await settle();
}

beforeEach(() => {
  backend = new FakeBackend();
  backend.me = makeMe({ id: 1, username: "root", display_name: "Ada Admin", roles: ["admin"], primary_role: "admin" });
  backend.auditEvents = [
    makeAuditEventRow({
      id: 3,
      occurred_at: "2026-03-04T12:00:00Z",
      actor_username: "patient2",
      actor_name: "Pat Two",
      actor_role: "patient",
      action: "read",
      entity_type: "Observation",
      entity_id: "9",
      patient_id: 424242,
      purpose: "",
      outcome: "denied",
      source_ip: null,
      sealed: false,
    }),
    makeAuditEventRow({
      id: 2,
      occurred_at: "2026-03-03T09:00:00Z",
      actor_username: "doctor",
      actor_name: "Dr Who",
      actor_role: "practitioner",
      action: "update",
      entity_type: "Patient",
      entity_id: "424242",
      patient_id: 424242,
      purpose: "treatment",
    }),
    makeAuditEventRow({
      id: 1,
      occurred_at: "2026-03-01T08:00:00Z",
      actor_username: null,
      actor_name: null,
      actor_role: "system",
      action: "export",
      entity_type: "Bundle",
      entity_id: "",
      patient_id: null,
      purpose: "",
      outcome: "failed",
      channel: "system",
      source_ip: null,
    }),
  ];
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
});

describe("audit log page", () => {
  it("is in the admin's navigation and linked from the administration home, and only admins can open it", async () => {
    mounted = await mountApp("/admin-console", backend);
    expect([...navigation("Main").querySelectorAll("a")].map(text)).toContain("Audit log");
    expect(link("Review the audit log").getAttribute("href")).toBe("/admin-console/audit");
    mounted.unmount();

    backend.me = makeMe({ roles: ["practitioner"], primary_role: "practitioner" });
    mounted = await mountApp("/admin-console/audit", backend);
    expect(mounted.router.currentRoute.value.path).toBe("/clinic");
    expect(listCalls()).toHaveLength(0);
  });

  it("lists every event, newest first, saying who did what to which record and how it ended", async () => {
    await openAudit();
    expect(document.title).toBe("Audit log · Consulta");
    expect(lastQuery()).toEqual({});
    expect(countText()).toBe("3 events");
    expect(rowIds()).toEqual(["3", "2", "1"]);

    const denied = cells(3);
    expect(denied[1]).toBe("Pat Two patient2 · Patient");
    expect(denied[2]).toBe("Read");
    expect(denied[3]).toBe("Observation 9");
    expect(denied[4]).toBe("424242");
    expect(denied[5]).toBe("—");
    expect(denied[6]).toBe("Denied");
    expect(denied[8]).toBe("Pending");
    expect(row(3).querySelector("time")?.getAttribute("datetime")).toBe("2026-03-04T12:00:00Z");

    expect(cells(2).slice(1, 9)).toEqual([
      "Dr Who doctor · Practitioner",
      "Update",
      "Patient 424242",
      "424242",
      "treatment",
      "Success",
      "api from 10.0.0.5",
      "Sealed",
    ]);
    // No user: the system did it.
    expect(cells(1).slice(1, 7)).toEqual(["System", "Export", "Bundle", "—", "—", "Failed"]);
    // Denied and failed rows are told apart by text, and also marked beyond colour.
    expect(row(3).classList.contains("flagged")).toBe(true);
    expect(row(2).classList.contains("flagged")).toBe(false);
  });

  it("sends the filters as query parameters and shows the matching rows", async () => {
    await openAudit();
    fill(field("Patient ID"), "424242");
    fill(field("Username"), " patient2 ");
    choose(select("Action"), "Read");
    choose(select("Outcome"), "Denied");
    fill(field("From"), "2026-03-01T00:00");
    fill(field("To"), "2026-03-31T23:59");
    await submit();

    expect(lastQuery()).toEqual({
      patient_id: "424242",
      actor: "patient2",
      action: "read",
      outcome: "denied",
      since: localInputToIso("2026-03-01T00:00"),
      until: localInputToIso("2026-03-31T23:59", true),
    });
    expect(countText()).toBe("1 event");
    expect(rowIds()).toEqual(["3"]);
  });

  it("shows the empty state when nothing matches, and clears the filters", async () => {
    await openAudit();
    fill(field("Patient ID"), "424242");
    choose(select("Outcome"), "Failed");
    await submit();
    expect(lastQuery()).toEqual({ patient_id: "424242", outcome: "failed" });
    expect(countText()).toBe("0 events");
    expect(rowIds()).toEqual([]);
    expect(text(document.querySelector("td.empty"))).toBe("No audit events match these filters.");

    button("Clear filters").click();
    await settle();
    expect(lastQuery()).toEqual({});
    expect(field("Patient ID").value).toBe("");
    expect(select("Outcome").value).toBe("");
    expect(countText()).toBe("3 events");
    expect(document.querySelector("td.empty")).toBeNull();
  });

  it("says so when there are no events at all", async () => {
    backend.auditEvents = [];
    await openAudit();
    expect(countText()).toBe("0 events");
    expect(text(document.querySelector("td.empty"))).toBe("No audit events yet.");
  });

  it("shows the server's field errors next to their fields", async () => {
    await openAudit();
    backend.on("GET /api/v1/ehr/audit-events/", () => ({
      status: 400,
      body: {
        code: "invalid",
        detail: "Some fields are not valid.",
        fields: { patient_id: ["Ensure this value is greater than or equal to 1."], until: ["Too far."] },
      },
    }));
    fill(field("Patient ID"), "7");
    await submit();

    const patient = field("Patient ID");
    expect(patient.getAttribute("aria-invalid")).toBe("true");
    const errorId = "audit-patient-error";
    expect(patient.getAttribute("aria-describedby")).toContain(errorId);
    const patientError = document.getElementById(errorId);
    expect(patientError?.getAttribute("role")).toBe("alert");
    expect(text(patientError)).toBe("Ensure this value is greater than or equal to 1.");
    expect(text(document.getElementById("audit-until-error"))).toBe("Too far.");
    expect(field("To").getAttribute("aria-describedby")).toBe("audit-time-hint audit-until-error");
    expect(byRole("alert").map(text)).toContain("Check the highlighted filters.");
    expect(document.activeElement).toBe(patient);
    expect(rowIds()).toEqual([]);
    expect(countText()).toBe("");
  });

  it("checks the obvious mistakes before asking the server", async () => {
    await openAudit();
    const before = listCalls().length;
    fill(field("Patient ID"), "0");
    fill(field("From"), "2026-03-05T10:00");
    fill(field("To"), "2026-03-04T10:00");
    await submit();

    expect(listCalls()).toHaveLength(before);
    expect(text(document.getElementById("audit-patient-error"))).toBe("Enter a patient ID: a whole number, 1 or more.");
    expect(text(document.getElementById("audit-until-error"))).toBe("“To” must not be before “From”.");

    fill(field("Patient ID"), "424242");
    fill(field("To"), "2026-03-05T10:00");
    await submit();
    expect(listCalls()).toHaveLength(before + 1);
    expect(document.getElementById("audit-patient-error")).toBeNull();
    expect(document.getElementById("audit-until-error")).toBeNull();
    expect(field("Patient ID").hasAttribute("aria-invalid")).toBe(false);
  });

  it("pages through long results, keeping the filters it searched with", async () => {
    backend.auditEvents = Array.from({ length: 120 }, (_, i) =>
      makeAuditEventRow({ id: 1000 - i, occurred_at: new Date(Date.UTC(2026, 2, 4, 12, 0, 0) - i * 1000).toISOString() }),
    );
    await openAudit();
    fill(field("Username"), "drgrey");
    await submit();
    expect(countText()).toBe("120 events");
    expect(rowIds()).toHaveLength(50);
    const pager = navigation("Pages of audit events");
    expect(text(pager)).toContain("Page 1 of 3");
    expect(button("Previous page").disabled).toBe(true);

    // Edited but not searched: paging keeps the filters of the list on screen.
    fill(field("Username"), "someone-else");
    button("Next page").click();
    await settle();
    expect(lastQuery()).toEqual({ actor: "drgrey", page: "2" });
    expect(rowIds()[0]).toBe("950");
    expect(text(navigation("Pages of audit events"))).toContain("Page 2 of 3");

    button("Next page").click();
    await settle();
    expect(rowIds()).toHaveLength(20);
    expect(button("Next page").disabled).toBe(true);

    button("Previous page").click();
    await settle();
    expect(lastQuery()).toEqual({ actor: "drgrey", page: "2" });

    // A new search starts again at the first page.
    fill(field("Username"), "nobody");
    await submit();
    expect(lastQuery()).toEqual({ actor: "nobody" });
    expect(queryButton("Next page")).toBeUndefined();
  });

  it("shows other failures in an alert", async () => {
    backend.on("GET /api/v1/ehr/audit-events/", () => ({
      status: 500,
      body: { code: "server_error", detail: "The server had a problem." },
    }));
    await openAudit();
    expect(byRole("alert").map(text)).toContain("The server had a problem.");
  });
});
