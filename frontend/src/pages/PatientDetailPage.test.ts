// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { formatDate } from "../format";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe, makePatient } from "../testing/backend";
import { button, byRole, choose, field, fill, heading, queryButton, select, text } from "../testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;

async function openPatient(id = 42): Promise<MountedApp> {
  mounted = await mountApp(`/patients/${id}`, backend);
  await waitFor(() => document.querySelector('[data-testid="patient-history"]') !== null, "the record and its history");
  return mounted;
}

function detail(name: string): string {
  return text(document.querySelector(`dd[data-field="${name}"]`));
}

function patchCalls() {
  return backend.calls("PATCH /api/v1/ehr/patients/42/");
}

function versionTitles(): string[] {
  return [...document.querySelectorAll('[data-testid="patient-history"] > li h3')].map(text);
}

function version(n: number): HTMLElement {
  const found = document.querySelector<HTMLElement>(`[data-testid="patient-history"] > li[data-version="${n}"]`);
  if (!found) throw new Error(`no version ${n} in the history`);
  return found;
}

function conflictPanel(): HTMLElement | null {
  return document.querySelector<HTMLElement>('[data-testid="edit-conflict"]');
}

async function startEditing(): Promise<void> {
  button("Edit details").click();
  await settle(2);
}

async function save(): Promise<void> {
  button("Save changes").click();
  await settle();
}

beforeEach(() => {
  backend = new FakeBackend();
  backend.me = makeMe({ id: 5, username: "scheduler", display_name: "Sam Whitfield", roles: ["scheduler"], primary_role: "scheduler" });
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
  backend.addPatient(makePatient({ id: 42 }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
});

describe("patient page", () => {
  it("shows the patient's name, MRN and details, with identifiers masked as the API returns them", async () => {
    await openPatient();
    expect(heading()).toBe("Ada Abbott");
    expect(document.title).toBe("Ada Abbott · Consulta");
    expect([...document.querySelectorAll(".patient-facts > li")].map(text)).toEqual([
      "MRN MRN00000042",
      `Born ${formatDate("1985-03-02")}`,
      "Female",
      "Active",
    ]);
    expect(detail("given_name")).toBe("Ada");
    expect(detail("birth_date")).toBe(formatDate("1985-03-02"));
    expect(detail("phone")).toBe("+15550000042");
    expect(detail("national_id")).toBe("•••• 0042");
    expect(detail("insurance_member_id")).toBe("•••• 0042");
    // Empty optional fields are left out (gender identity) or shown as a dash.
    expect(document.querySelector('dd[data-field="gender_identity"]')).toBeNull();
    expect(byRole("alert").map(text).filter(Boolean)).toEqual([]);
  });

  it("lists the history, newest first, with who, when, why and each field's change", async () => {
    backend.changePatient(42, { phone: "+15551112222", city: "Lisbon" }, "Jo Marchetti", "Patient moved");
    await openPatient();
    expect(versionTitles()).toEqual(["Version 2", "Version 1 (registered)"]);
    const latest = version(2);
    expect(text(latest)).toContain("by Jo Marchetti");
    expect(text(latest)).toContain("Reason: Patient moved");
    expect(latest.querySelector("time")?.getAttribute("datetime")).toBe("2026-01-05T09:00:00Z");
    expect([...latest.querySelectorAll("li")].map(text)).toEqual([
      "Phone: +15550000042 → +15551112222",
      "City: Springfield → Lisbon",
    ]);
    // The registration's values are folded away.
    const first = version(1);
    expect(text(first.querySelector("summary"))).toMatch(/^Values at registration \(\d+\)$/);
    expect(text(first)).toContain("Given name: Ada");
    expect(text(first)).toContain("Sex: Female");
  });

  it("edits details with If-Match from the ETag, sending only the changes and the reason, then shows the new version", async () => {
    await openPatient();
    await startEditing();
    expect(document.activeElement).toBe(field("Given name"));
    expect(field("Given name").value).toBe("Ada");
    expect(select("Sex").value).toBe("female");
    // Identifiers start empty (they are masked) and say what a blank keeps.
    expect(field("National ID").value).toBe("");
    expect(text(document.getElementById("edit-national_id-hint"))).toBe("Leave blank to keep the current one (•••• 0042).");

    fill(field("Phone"), "+1 555 123 4567");
    choose(select("Sex"), "Other");
    fill(field("Reason for change"), " Patient called ");
    await save();

    expect(patchCalls()).toHaveLength(1);
    expect(patchCalls()[0]?.headers["If-Match"]).toBe('"1"');
    expect(patchCalls()[0]?.body).toEqual({ phone: "+1 555 123 4567", sex: "other", reason: "Patient called" });
    expect(queryButton("Save changes")).toBeUndefined();
    expect(detail("phone")).toBe("+15551234567");
    expect(detail("sex")).toBe("Other");
    expect(text(document.querySelector('[data-testid="patient-notice"]'))).toBe(
      "Changes saved. The record is now at version 2.",
    );
    await waitFor(() => versionTitles()[0] === "Version 2", "the new version in the history");
    expect([...version(2).querySelectorAll("li")].map(text)).toEqual([
      "Sex: Female → Other",
      "Phone: +15550000042 → +15551234567",
    ]);
    expect(text(version(2))).toContain("by Sam Whitfield");
    expect(text(version(2))).toContain("Reason: Patient called");

    // The next change is based on the new ETag.
    await startEditing();
    fill(field("City"), "Lisbon");
    fill(field("Reason for change"), "Moved");
    await save();
    expect(patchCalls()[1]?.headers["If-Match"]).toBe('"2"');
    expect(patchCalls()[1]?.body).toEqual({ city: "Lisbon", reason: "Moved" });
  });

  it("sends back the ETag exactly as the server sent it", async () => {
    backend.on("GET /api/v1/ehr/patients/42/", () => ({
      status: 200,
      body: makePatient({ id: 42, version: 1 }),
      headers: { ETag: '"17"' },
    }));
    backend.on("PATCH /api/v1/ehr/patients/42/", () => ({
      status: 200,
      body: makePatient({ id: 42, version: 18, city: "Porto" }),
      headers: { ETag: '"18"' },
    }));
    await openPatient();
    await startEditing();
    fill(field("City"), "Porto");
    fill(field("Reason for change"), "Moved");
    await save();
    expect(patchCalls()[0]?.headers["If-Match"]).toBe('"17"');
  });

  it("needs a reason and a change before it asks the server", async () => {
    await openPatient();
    await startEditing();
    await save();
    expect(byRole("alert").map(text)).toContain("You have not changed anything yet.");

    fill(field("City"), "Lisbon");
    await save();
    expect(patchCalls()).toHaveLength(0);
    const reason = field("Reason for change");
    expect(reason.required).toBe(true);
    expect(reason.getAttribute("aria-invalid")).toBe("true");
    expect(text(document.getElementById("edit-reason-error"))).toBe("Give a reason for the change.");
    expect(document.activeElement).toBe(reason);
    expect(field("City").value).toBe("Lisbon");
  });

  it("shows the API's field errors next to their fields, keeping the edits", async () => {
    await openPatient();
    await startEditing();
    fill(field("Phone"), "12");
    fill(field("Email"), "not-an-email");
    fill(field("Reason for change"), "Typo");
    await save();
    expect(text(document.getElementById("edit-phone-error"))).toBe("Not a phone number (6 to 15 digits, optional leading +).");
    expect(document.getElementById("edit-phone-error")?.getAttribute("role")).toBe("alert");
    expect(text(document.getElementById("edit-email-error"))).toBe("Enter a valid email address.");
    expect(document.activeElement).toBe(field("Phone"));
    expect(field("Phone").value).toBe("12");
    expect(field("Reason for change").value).toBe("Typo");
  });

  it("on a conflict shows the current values, keeps the user's edits and saves them again on the new version", async () => {
    await openPatient();
    await startEditing();
    fill(field("Phone"), "+15550009999");
    fill(field("Reason for change"), "New mobile");
    // Meanwhile, someone else changes the phone and the city.
    backend.changePatient(42, { phone: "+15551110000", city: "Lisbon" }, "Jo Marchetti", "Moved");
    await save();

    expect(patchCalls()).toHaveLength(1);
    expect(patchCalls()[0]?.headers["If-Match"]).toBe('"1"');
    const panel = conflictPanel();
    expect(panel?.getAttribute("role")).toBe("alert");
    expect(text(panel?.querySelector("h3"))).toBe("This record was changed by someone else while you were editing");
    expect(document.activeElement?.id).toBe("conflict-heading");
    expect(text(panel)).toContain("It is now at version 2.");
    expect([...(panel?.querySelectorAll("li") ?? [])].map(text)).toEqual([
      "Phone: +15550000042 → +15551110000 (you changed this too: the form still has your value)",
      "City: Springfield → Lisbon",
    ]);
    // The user's edit stays; the field they did not touch follows the current record.
    expect(field("Phone").value).toBe("+15550009999");
    expect(field("City").value).toBe("Lisbon");
    expect(field("Reason for change").value).toBe("New mobile");

    button("Apply my changes again").click();
    await settle();
    expect(patchCalls()).toHaveLength(2);
    expect(patchCalls()[1]?.headers["If-Match"]).toBe('"2"');
    expect(patchCalls()[1]?.body).toEqual({ phone: "+15550009999", reason: "New mobile" });
    expect(conflictPanel()).toBeNull();
    expect(detail("phone")).toBe("+15550009999");
    expect(detail("city")).toBe("Lisbon");
    await waitFor(() => versionTitles()[0] === "Version 3", "version 3 in the history");
  });

  it("says so when the patient does not exist", async () => {
    mounted = await mountApp("/patients/999", backend);
    await waitFor(() => heading() === "Patient not available", "the error");
    expect(byRole("alert").map(text)).toContain("There is no patient with this ID.");
    expect(queryButton("Edit details")).toBeUndefined();
  });

  it("cancels an edit without saving", async () => {
    await openPatient();
    await startEditing();
    fill(field("City"), "Lisbon");
    button("Cancel").click();
    await settle(2);
    expect(patchCalls()).toHaveLength(0);
    expect(detail("city")).toBe("Springfield");
    expect(document.activeElement?.id).toBe("edit-details");
  });
});
