// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { formatDateTime } from "../format";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { heading, link, navigation, text } from "../testing/dom";

const PATIENT_ID = 42;

let mounted: MountedApp | null = null;
let backend: FakeBackend;

function section(testId: string): HTMLElement {
  const found = document.querySelector<HTMLElement>(`[data-testid="${testId}"]`);
  if (!found) throw new Error(`no ${testId}`);
  return found;
}

async function openRecord(): Promise<MountedApp> {
  mounted = await mountApp("/patient/record", backend);
  await waitFor(() => heading() === "My record", "the record page");
  await settle();
  return mounted;
}

beforeEach(() => {
  backend = new FakeBackend();
  backend.me = makeMe({
    id: 20,
    username: "patient",
    first_name: "Ada",
    display_name: "Ada Abbott",
    roles: ["patient"],
    primary_role: "patient",
    patient_id: PATIENT_ID,
  });
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
});

describe("PatientRecordPage", () => {
  it("is in the patient's main navigation and linked from the home page", async () => {
    mounted = await mountApp("/patient", backend);
    await waitFor(() => heading() === "My health", "the home page");
    expect(link("My record", navigation("Main")).getAttribute("href")).toBe("/patient/record");
    expect(link("See my record").getAttribute("href")).toBe("/patient/record");
  });

  it("shows the chart summary and the documents, read-only", async () => {
    const clinical = backend.clinical;
    clinical.addCondition(PATIENT_ID, "J45.909");
    clinical.addCondition(PATIENT_ID, "I10", { clinical_status: "resolved" });
    clinical.addCondition(99, "E11.9");
    clinical.allergies.push({
      id: 1,
      patient_id: PATIENT_ID,
      substance_text: "Penicillin",
      substance_code: "",
      substance_system: "",
      criticality: "high",
      reaction: "Hives",
      clinical_status: "active",
      verification_status: "confirmed",
      recorder_id: 7,
      version: 1,
      updated_at: "2026-03-01T09:00:00Z",
    });
    clinical.medications.push({
      id: 2,
      patient_id: PATIENT_ID,
      encounter_id: null,
      medication_text: "Salbutamol inhaler",
      rxnorm_code: "",
      dose: "2 puffs",
      route: "inhaled",
      frequency: "as needed",
      status: "active",
      prescriber_id: 7,
      prescriber_display_name: "Dr Meredith Grey",
      version: 1,
      updated_at: "2026-03-01T09:00:00Z",
    });
    clinical.observations.push({
      id: 3,
      patient_id: PATIENT_ID,
      encounter_id: null,
      code: "8310-5",
      code_display: "Body temperature",
      category: "vital-signs",
      value: 36.8,
      unit: "Cel",
      effective_at: "2026-03-02T10:00:00Z",
      status: "final",
      performer_id: 7,
      version: 1,
    });
    const plan = clinical.addDocument(PATIENT_ID, {
      title: "Asthma action plan",
      type: "clinical-note",
      created_at: "2026-03-03T11:00:00Z",
    });
    clinical.addDocument(PATIENT_ID, { title: "Passport scan", type: "id-document" });
    clinical.addDocument(PATIENT_ID, { title: "Wrong file", status: "entered-in-error" });
    clinical.addDocument(99, { title: "Someone else's letter" });

    await openRecord();
    await waitFor(() => text(section("my-documents")).includes("Asthma action plan"), "the documents");

    const problems = text(section("my-problems"));
    expect(problems).toContain("Unspecified asthma, uncomplicated");
    expect(problems).toContain("J45.909");
    expect(problems).not.toContain("I10");
    expect(problems).not.toContain("E11.9");

    const allergies = text(section("my-allergies"));
    expect(allergies).toContain("Penicillin");
    expect(allergies).toContain("High risk");

    expect(text(section("my-medications"))).toContain("Salbutamol inhaler");

    const vitals = text(section("my-vitals"));
    expect(vitals).toContain("Body temperature");
    expect(vitals).toContain("36.8 °C");
    expect(vitals).toContain(formatDateTime("2026-03-02T10:00:00Z"));

    const docs = section("my-documents");
    const rows = [...docs.querySelectorAll<HTMLElement>('[data-testid="document-row"]')];
    expect(rows.map((row) => row.querySelector(".doc-title")?.textContent)).toEqual(["Asthma action plan", "Passport scan"]);
    expect(text(rows[0])).toContain("Clinical note");
    expect(text(rows[0])).toContain(formatDateTime("2026-03-03T11:00:00Z"));
    expect(link("Download Asthma action plan", docs).getAttribute("href")).toBe(`/api/v1/ehr/documents/${plan.id}/content/`);
    // Identity documents: no download (the API refuses patients), a note instead.
    expect(rows[1]?.querySelector("a")).toBeNull();
    expect(text(rows[1])).toContain("Ask your clinic for a copy");

    // The whole record as one file, from the export endpoint.
    expect(link("Download my record").getAttribute("href")).toBe(`/api/v1/ehr/patients/${PATIENT_ID}/export/`);
    expect(link("Download my record").hasAttribute("download")).toBe(true);

    // Read-only: no forms or buttons to change anything.
    expect(document.querySelectorAll("main form, main button").length).toBe(0);
  });

  it("says so when nothing is recorded", async () => {
    await openRecord();
    await waitFor(() => text(section("my-documents")).includes("No documents yet."), "the empty documents");
    expect(text(section("my-problems"))).toContain("No problems recorded.");
    expect(text(section("my-allergies"))).toContain("No allergies recorded.");
    expect(text(section("my-medications"))).toContain("No medications recorded.");
    expect(text(section("my-vitals"))).toContain("No vital signs recorded.");
  });

  it("explains when no patient record is linked to the account", async () => {
    backend.me = { ...backend.me!, patient_id: null };
    await openRecord();
    expect(text(document.querySelector("main"))).toContain("There is no patient record linked to your account.");
    expect(backend.calls("GET /api/v1/ehr/patients/42/summary/")).toHaveLength(0);
    expect(document.querySelector('[data-testid="download-record"]')).toBeNull();
  });
});
