// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe, makePatient } from "../testing/backend";
import { button, byRole, choose, field, fill, heading, queryButton, select, text } from "../testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;

const summary = () => document.querySelector<HTMLElement>('[data-testid="chart-summary"]');
const list = (name: string) => text(document.querySelector(`[data-testid="${name}"]`));

async function openChart(): Promise<void> {
  mounted = await mountApp("/patients/42", backend);
  await waitFor(() => Boolean(summary()?.querySelector("h3")), "the chart summary");
}

function open(summaryText: string): void {
  const found = [...document.querySelectorAll("summary")].find((s) => text(s) === summaryText);
  if (!found) throw new Error(`no disclosure "${summaryText}"`);
  (found.parentElement as HTMLDetailsElement).open = true;
  found.parentElement?.dispatchEvent(new Event("toggle"));
}

function textarea(label: string): HTMLTextAreaElement {
  const l = [...document.querySelectorAll("label")].find((x) => text(x) === label);
  return document.getElementById(l?.htmlFor ?? "") as HTMLTextAreaElement;
}

beforeEach(() => {
  localStorage.clear();
  sessionStorage.clear();
  backend = new FakeBackend();
  backend.me = makeMe({
    id: 7,
    locations: [
      { id: 3, name: "Harbour Clinic — Main St", timezone: "Europe/Lisbon" },
      { id: 4, name: "Harbour Clinic — Quay", timezone: "Europe/Lisbon" },
    ],
  });
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
  backend.addPatient(makePatient({ id: 42 }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
});

describe("patient chart", () => {
  it("shows active problems, allergies with criticality in words, medications and the latest vitals", async () => {
    const c = backend.clinical;
    c.addCondition(42, "E11.9");
    c.addCondition(42, "I10", { clinical_status: "resolved" });
    await openChart();
    // Added through the API, as a clinician would.
    expect(list("problems")).toContain("E11.9 Type 2 diabetes mellitus without complications");
    expect(list("problems")).not.toContain("I10");
    expect(text(summary())).toContain("No allergies recorded.");

    open("Add an allergy");
    fill(field("Substance"), "Penicillin");
    choose(select("Criticality"), "High risk");
    fill(field("Reaction (optional)"), "Hives");
    button("Add allergy").click();
    await waitFor(() => list("allergies") !== "", "the allergy");
    expect(list("allergies")).toContain("Penicillin High risk — Hives");

    open("Add a medication");
    fill(field("Medication"), "Metformin 500 mg tablet");
    fill(field("Dose (optional)"), "500 mg");
    fill(field("Frequency (optional)"), "twice daily");
    fill(field("RxNorm code (optional)"), "86O");
    button("Add medication").click();
    await waitFor(() => byRole("alert").some((a) => text(a).includes("Check the highlighted")), "the RxNorm error");
    expect(text(document.getElementById("medication-rxnorm_code-error"))).toContain("digits only");
    fill(field("RxNorm code (optional)"), "860975");
    button("Add medication").click();
    await waitFor(() => list("medications") !== "", "the medication");
    expect(list("medications")).toContain("Metformin 500 mg tablet — 500 mg, twice daily");
  });

  it("offers the whole record as a download (the export endpoint)", async () => {
    await openChart();
    const exportLink = summary()?.querySelector<HTMLAnchorElement>('[data-testid="export-record"]');
    expect(text(exportLink)).toBe("Export record");
    expect(exportLink?.getAttribute("href")).toBe("/api/v1/ehr/patients/42/export/");
    expect(exportLink?.hasAttribute("download")).toBe(true);
  });

  it("adds a problem by ICD-10 code and shows the API's field error for an unknown code", async () => {
    await openChart();
    open("Add a problem");
    fill(field("ICD-10 code"), "e119");
    button("Add problem").click();
    await waitFor(() => list("problems") !== "", "the new problem");
    expect(list("problems")).toContain("E11.9 Type 2 diabetes mellitus without complications");
    expect(field("ICD-10 code").value).toBe("");
    expect(byRole("status").map(text)).toContain("Problem added.");

    fill(field("ICD-10 code"), "ZZZ.9");
    button("Add problem").click();
    await waitFor(() => document.getElementById("problem-code-error") !== null, "the field error");
    expect(text(document.getElementById("problem-code-error"))).toBe("'ZZZ.9' is not an ICD-10-CM code.");
    expect(field("ICD-10 code").getAttribute("aria-invalid")).toBe("true");
    expect(field("ICD-10 code").getAttribute("aria-describedby")).toContain("problem-code-error");
  });

  it("records a vital sign from the LOINC select with its unit; an impossible value shows the API's error", async () => {
    await openChart();
    open("Record a vital sign");
    const codes = select("Vital sign");
    expect([...codes.options].map((o) => text(o))).toContain("Heart rate (/min)");
    expect([...codes.options].map((o) => text(o))).toContain("Body temperature (°C)");
    choose(codes, "Heart rate (/min)");
    fill(field("Value"), "500");
    button("Record vital sign").click();
    await waitFor(() => document.getElementById("vital-value-error") !== null, "the value error");
    expect(text(document.getElementById("vital-value-error"))).toContain("500 /min is not a possible heart rate");
    const body = backend.calls("POST /api/v1/ehr/patients/42/observations/")[0]?.body;
    expect(body).toEqual({ code: "8867-4", value: 500, unit: "/min" });

    fill(field("Value"), "72");
    button("Record vital sign").click();
    await waitFor(() => list("vitals") !== "", "the vital sign");
    expect(list("vitals")).toMatch(/^Heart rate: 72 \/min · /);
  });

  it("shows each item's versions with field diffs in a History disclosure", async () => {
    const condition = backend.clinical.addCondition(42, "E11.9");
    await openChart();
    const history = [...document.querySelectorAll("[data-testid='problems'] summary")].find((s) => text(s) === "History");
    expect(history?.getAttribute("aria-label")).toBe("History of E11.9 Type 2 diabetes mellitus without complications");
    (history?.parentElement as HTMLDetailsElement).open = true;
    history?.parentElement?.dispatchEvent(new Event("toggle"));
    await waitFor(() => document.querySelector("[data-testid='record-history']") !== null, "the history");
    expect(backend.calls(`GET /api/v1/ehr/conditions/${condition.id}/history/`)).toHaveLength(1);
    const versions = text(document.querySelector("[data-testid='record-history']"));
    expect(versions).toContain("Version 1");
    expect(versions).toContain("Code: E11.9");
  });

  it("starts an encounter at one of the user's locations, writes a note in it, and closes it", async () => {
    await openChart();
    await waitFor(() => text(document.querySelector("[data-testid='encounters']")).includes("No encounters yet."), "encounters");
    open("New encounter");
    const locations = select("Location");
    expect([...locations.options].map((o) => text(o))).toEqual(["Harbour Clinic — Main St", "Harbour Clinic — Quay"]);
    choose(locations, "Harbour Clinic — Quay");
    choose(select("Modality"), "Virtual");
    fill(field("Reason (optional)"), "Follow-up");
    button("Start encounter").click();
    await waitFor(() => document.querySelector("li.encounter") !== null, "the encounter");
    expect(backend.calls("POST /api/v1/ehr/patients/42/encounters/")[0]?.body).toEqual({
      location_id: 4,
      modality: "virtual",
      reason: "Follow-up",
    });
    const row = document.querySelector<HTMLElement>("li.encounter");
    expect(text(row?.querySelector("h3"))).toMatch(/· Virtual · Harbour Clinic — Quay In progress$/);

    button("Write a note").click();
    await waitFor(() => textarea("Subjective") !== null, "the note editor");
    expect(queryButton("Write a note")).toBeUndefined();

    button("Close encounter").click();
    await waitFor(() => text(row?.querySelector("[data-testid='encounter-status']")) === "Finished", "closed");
    expect(queryButton("Close encounter")).toBeUndefined();
  });

  it("is not shown to staff who do not treat patients", async () => {
    backend.me = makeMe({ id: 5, roles: ["scheduler"], primary_role: "scheduler" });
    mounted = await mountApp("/patients/42", backend);
    await waitFor(() => document.querySelector('[data-testid="patient-history"]') !== null, "the record");
    expect(summary()).toBeNull();
    expect(backend.calls("GET /api/v1/ehr/patients/42/summary/")).toHaveLength(0);
  });
});

describe("break-the-glass", () => {
  it("explains, asks for a reason of at least 20 characters, then opens the chart with an Emergency access banner", async () => {
    backend.clinical.outsideCare.add(42);
    mounted = await mountApp("/patients/42", backend);
    await waitFor(() => document.querySelector('[data-testid="break-glass"]') !== null, "the explanation");
    expect(heading()).toBe("Emergency access needed");
    expect(text(document.querySelector('[data-testid="break-glass"]'))).toContain("This patient is not in your care");
    expect(summary()).toBeNull();

    button("Request emergency access").click();
    await settle(2);
    const reason = textarea("Reason for emergency access");
    expect(document.activeElement).toBe(reason);
    const hint = () => text(document.querySelector('[data-testid="break-glass-hint"]'));
    expect(hint()).toBe("0 of at least 20 characters: 20 more needed.");
    reason.value = "Collapsed";
    reason.dispatchEvent(new Event("input"));
    await settle(1);
    expect(hint()).toBe("9 of at least 20 characters: 11 more needed.");
    button("Open the record in an emergency").click();
    await settle();
    expect(byRole("alert").map(text)).toContain("Give a reason of at least 20 characters.");
    expect(backend.calls("POST /api/v1/ehr/patients/42/break-glass/")).toHaveLength(0);

    reason.value = "Collapsed in the waiting room, need allergies";
    reason.dispatchEvent(new Event("input"));
    await settle(1);
    expect(hint()).toBe("45 characters: enough detail.");
    button("Open the record in an emergency").click();
    await waitFor(() => Boolean(summary()?.querySelector("h3")), "the chart");
    expect(backend.calls("POST /api/v1/ehr/patients/42/break-glass/")[0]?.body).toEqual({
      reason: "Collapsed in the waiting room, need allergies",
    });
    expect(heading()).toBe("Ada Abbott");
    const banner = document.querySelector('[data-testid="emergency-banner"]');
    expect(text(banner)).toMatch(/^Emergency access — you opened this record with break-the-glass\./);
    expect(document.querySelector('[data-testid="break-glass"]')).toBeNull();
  });

  it("says so plainly for any other 403", async () => {
    backend.clinical.forbidden.add(42);
    mounted = await mountApp("/patients/42", backend);
    await waitFor(() => byRole("alert").some((a) => text(a) !== ""), "the error");
    expect(byRole("alert").map(text)).toContain("You do not have access to this record.");
    expect(queryButton("Request emergency access")).toBeUndefined();
  });
});
