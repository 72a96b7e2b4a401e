// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe, makePatient } from "../testing/backend";
import { button, field, fill, heading, queryButton, text } from "../testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;

const warning = () => document.querySelector<HTMLElement>('[data-testid="duplicate-warning"]');
const patchBodies = () => backend.calls("PATCH /api/v1/ehr/patients/42/").map((call) => call.body as Record<string, unknown>);

async function editToLookLikeTheOther(): Promise<void> {
  mounted = await mountApp("/patients/42", backend);
  await waitFor(() => document.querySelector('[data-testid="patient-history"]') !== null, "the record");
  button("Edit details").click();
  await settle(2);
  fill(field("Given name"), "Grace");
  fill(field("Family name"), "Hopper");
  fill(field("Reason for change"), "Name was mistyped at registration");
  button("Save changes").click();
  await waitFor(() => warning() !== null, "the duplicate warning");
}

beforeEach(() => {
  backend = new FakeBackend();
  backend.me = makeMe({ id: 5, username: "scheduler", display_name: "Sam Whitfield", roles: ["scheduler"], primary_role: "scheduler" });
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
  backend.addPatient(makePatient({ id: 42 }));
  backend.addPatient(makePatient({ id: 77, mrn: "MRN00000077", given_name: "Grace", family_name: "Hopper", display_name: "Grace Hopper" }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
});

describe("editing details into a look-alike of another patient", () => {
  it("shows the registration's duplicate warning, keeps the edits, and saves anyway when asked", async () => {
    await editToLookLikeTheOther();
    const panel = warning();
    expect(text(panel?.querySelector("h3"))).toBe("Possible duplicate");
    expect(document.activeElement?.id).toBe("duplicate-heading");
    expect(text(panel)).toContain("With these changes, this record looks like another patient's:");
    expect(text(panel)).toContain("Grace Hopper");
    expect(text(panel)).toContain("MRN00000077");
    expect(field("Given name").value).toBe("Grace"); // nothing typed is lost
    expect(patchBodies().map((body) => body.allow_duplicate)).toEqual([undefined]);

    button("Save anyway").click();
    await waitFor(() => queryButton("Save changes") === undefined, "the saved record");
    expect(patchBodies().map((body) => body.allow_duplicate)).toEqual([undefined, true]);
    expect(text(document.querySelector('[data-testid="patient-notice"]'))).toBe(
      "Changes saved. The record is now at version 2.",
    );
    expect(warning()).toBeNull();
  });

  it("opens the other record from the warning", async () => {
    await editToLookLikeTheOther();
    button("Open existing record").click();
    await waitFor(() => heading() === "Grace Hopper", "the other record");
    expect(mounted?.router.currentRoute.value.fullPath).toBe("/patients/77");
  });

  it("starts the next edit without the old warning", async () => {
    await editToLookLikeTheOther();
    button("Cancel").click();
    await settle();
    button("Edit details").click();
    await settle(2);
    expect(warning()).toBeNull();
  });
});
