// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { formatDate } from "../format";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe, makePatient } from "../testing/backend";
import { button, byRole, field, fill, heading, link, queryButton, text } from "../testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;

const panel = () => document.querySelector<HTMLElement>('[data-testid="merge-panel"]');
const banner = () => document.querySelector<HTMLElement>('[data-testid="merged-banner"]');
const mergeCalls = () => backend.calls("POST /api/v1/ehr/patients/42/merge/");

async function openPatient(id = 42): Promise<void> {
  mounted = await mountApp(`/patients/${id}`, backend);
  await waitFor(() => document.querySelector('[data-testid="patient-history"]') !== null, "the record");
}

/** Opens the merge panel, finds "Ada Abbot" and chooses record 43: the comparison is on screen. */
async function chooseSurvivor(): Promise<void> {
  button("Merge into another record").click();
  await settle();
  fill(field("Find the record to keep (name or MRN)"), "Ada Abbot");
  button("Search").click();
  await waitFor(() => Boolean(panel()?.querySelector("[data-patient-id]")), "the search results");
  button("Keep Ada Abbott, MRN00000043").click();
  await waitFor(() => document.querySelector('[data-testid="merge-compare"]') !== null, "the comparison");
}

function comparison(): string[][] {
  return [...document.querySelectorAll('[data-testid="merge-compare"] tbody tr')].map((row) =>
    [...row.children].map(text),
  );
}

beforeEach(() => {
  backend = new FakeBackend();
  backend.me = makeMe({ id: 5, username: "desk", display_name: "Sam Whitfield", roles: ["scheduler"], primary_role: "scheduler" });
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
  backend.addPatient(makePatient({ id: 42, user_id: 900 }));
  backend.addPatient(makePatient({ id: 43, mrn: "MRN00000043", family_name: "Abbott", phone: "+15550000043" }));
  backend.addPatient(makePatient({ id: 44, mrn: "MRN00000044", given_name: "Bea", status: "entered-in-error" }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
});

describe("merging a duplicate record", () => {
  it("finds the record to keep, never this one, and shows both side by side", async () => {
    await openPatient();
    await chooseSurvivor();
    expect(queryButton("Keep Ada Abbott, MRN00000042")).toBeUndefined();
    const found = backend.calls("GET /api/v1/ehr/patients/").at(-1);
    expect(found?.query.get("q")).toBe("Ada Abbot");
    expect(comparison()).toEqual([
      ["Name", "Ada Abbott", "Ada Abbott"],
      ["Birth date", formatDate("1985-03-02"), formatDate("1985-03-02")],
      ["MRN", "MRN00000042", "MRN00000043"],
      ["Sex", "Female", "Female"],
      ["Phone", "+15550000042", "+15550000043"],
      ["Portal account", "Yes", "No"],
    ]);
    expect(button("Merge MRN00000042 into MRN00000043")).toBeTruthy();
  });

  it("searches by MRN when an MRN is typed and lists only other active records", async () => {
    await openPatient();
    button("Merge into another record").click();
    await settle();
    fill(field("Find the record to keep (name or MRN)"), "mrn42");
    button("Search").click();
    await waitFor(() => Boolean(panel()?.textContent?.includes("No other active record matches.")), "no result");
    expect(backend.calls("GET /api/v1/ehr/patients/").at(-1)?.query.get("mrn")).toBe("mrn42");
  });

  it("needs a reason and a confirmation before anything is sent", async () => {
    await openPatient();
    await chooseSurvivor();
    button("Merge MRN00000042 into MRN00000043").click();
    await settle();
    expect(mergeCalls()).toHaveLength(0);
    expect(text(document.getElementById("merge-reason-error"))).toBe("Say why these records are merged.");
    expect(text(document.getElementById("merge-confirm-error"))).toBe("Confirm that both records are the same person.");
    expect(document.activeElement?.id).toBe("merge-reason");
  });

  it("merges with both versions, lands on the record kept, and the duplicate points to it", async () => {
    await openPatient();
    await chooseSurvivor();
    fill(field("Reason for the merge"), "Registered twice at the front desk");
    const confirm = field("I have checked that both records are the same person.");
    confirm.click();
    await settle();
    button("Merge MRN00000042 into MRN00000043").click();
    await waitFor(() => mounted?.router.currentRoute.value.params.id === "43", "the surviving record");
    await waitFor(() => document.querySelector('[data-testid="patient-history"]') !== null, "its page");
    expect(mergeCalls()[0]?.body).toEqual({
      into: 43,
      reason: "Registered twice at the front desk",
      source_version: 1,
      target_version: 1,
    });
    expect(text(document.querySelector('[data-testid="patient-mrn"]'))).toBe("MRN00000043");
    expect(text(document.querySelector('[data-testid="patient-notice"]'))).toContain("Records merged");

    await mounted?.router.push("/patients/42");
    await waitFor(() => banner() !== null, "the merged banner");
    expect(text(banner())).toContain("This record was merged into another record.");
    expect(queryButton("Edit details")).toBeUndefined();
    expect(queryButton("Merge into another record")).toBeUndefined();
    link("Open the surviving record").click();
    await waitFor(() => mounted?.router.currentRoute.value.params.id === "43", "the link to the survivor");
  });

  it("a record kept that changed meanwhile is shown again before merging", async () => {
    await openPatient();
    await chooseSurvivor();
    backend.changePatient(43, { phone: "+15550009999" });
    fill(field("Reason for the merge"), "Duplicate");
    field("I have checked that both records are the same person.").click();
    await settle();
    button("Merge MRN00000042 into MRN00000043").click();
    await waitFor(() => comparison()[4]?.[2] === "+15550009999", "the refreshed comparison");
    expect(byRole("status").map(text)).toContain(
      "The record to keep changed since you chose it. Check the comparison again, then merge.",
    );
    expect(backend.patients.find((p) => p.id === 42)?.status).toBe("active");
  });

  it("explains a refusal in the API's words", async () => {
    backend.patients[1] = { ...backend.patients[1]!, user_id: 901 };
    await openPatient();
    await chooseSurvivor();
    expect(text(panel())).toContain("Both records have a patient-portal account.");
    fill(field("Reason for the merge"), "Duplicate");
    field("I have checked that both records are the same person.").click();
    await settle();
    button("Merge MRN00000042 into MRN00000043").click();
    await waitFor(() => byRole("alert").some((el) => text(el) === "Both have a portal login."), "the refusal");
    expect(heading()).toBe("Ada Abbott");
  });

  it("is offered to admins and schedulers only", async () => {
    backend.me = makeMe();
    await openPatient();
    expect(queryButton("Merge into another record")).toBeUndefined();
  });
});
