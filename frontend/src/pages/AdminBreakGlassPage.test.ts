// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { button, byRole, choose, heading, link, navigation, select, text } from "../testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;

function grants(): HTMLElement[] {
  return [...document.querySelectorAll<HTMLElement>("li.grant")];
}

function grant(id: number): HTMLElement {
  const found = document.querySelector<HTMLElement>(`li.grant[data-grant-id="${id}"]`);
  if (!found) throw new Error(`no grant ${id}`);
  return found;
}

async function openQueue(): Promise<void> {
  mounted = await mountApp("/admin-console/break-glass", backend);
  await waitFor(() => heading() === "Emergency access" && (grants().length > 0 || text(document.body).includes("Nothing")), "the queue");
}

beforeEach(() => {
  backend = new FakeBackend();
  backend.me = makeMe({ id: 1, username: "admin", display_name: "Ada Admin", roles: ["admin"], primary_role: "admin" });
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
});

describe("emergency access review queue", () => {
  it("is in the admin's nav and on the admin home page", async () => {
    mounted = await mountApp("/admin-console", backend);
    await waitFor(() => heading() === "Administration", "admin home");
    expect(link("Emergency access", navigation("Main")).getAttribute("href")).toBe("/admin-console/break-glass");
    expect(link("Review emergency access").getAttribute("href")).toBe("/admin-console/break-glass");
  });

  it("lists pending grants with who, role, patient, reason, when and expiry, and marks one appropriate", async () => {
    const first = backend.clinical.addGrant({ reason: "Unconscious in the waiting room, need allergies" });
    const second = backend.clinical.addGrant({ patient_name: "Ben Carter", patient_mrn: "MRN00000043", patient_id: 43 });
    await openQueue();
    expect(backend.calls("GET /api/v1/ehr/break-glass/")[0]?.query.get("review_status")).toBe("pending");
    expect(grants().map((g) => g.dataset.grantId)).toEqual([String(second.id), String(first.id)]);
    const row = text(grant(first.id));
    expect(row).toContain("Dr Samuel Lindqvist (Practitioner) opened Ada Abbott MRN00000042");
    expect(row).toContain("Unconscious in the waiting room, need allergies");
    expect(row).toContain("When");
    expect(row).toContain("Expires");

    button("Mark appropriate", grant(first.id)).click();
    await waitFor(() => grants().length === 1, "the reviewed grant leaves the queue");
    expect(backend.calls(`POST /api/v1/ehr/break-glass/${first.id}/review/`)[0]?.body).toEqual({ outcome: "appropriate", note: "" });
    expect(byRole("status").map(text)).toContain("Dr Samuel Lindqvist's access to Ada Abbott marked appropriate.");
  });

  it("needs a note to mark a grant inappropriate", async () => {
    const only = backend.clinical.addGrant();
    await openQueue();
    button("Mark inappropriate", grant(only.id)).click();
    await settle();
    expect(byRole("alert").map(text)).toContain("Say why the access was inappropriate.");
    expect(backend.calls(`POST /api/v1/ehr/break-glass/${only.id}/review/`)).toHaveLength(0);

    const note = grant(only.id).querySelector("textarea") as HTMLTextAreaElement;
    note.value = "Not an emergency: routine follow-up.";
    note.dispatchEvent(new Event("input"));
    button("Mark inappropriate", grant(only.id)).click();
    await waitFor(() => grants().length === 0, "the queue empties");
    expect(text(document.body)).toContain("Nothing is waiting for review.");

    choose(select("Show"), "Reviewed: inappropriate");
    await waitFor(() => grants().length === 1, "the reviewed grants");
    expect(text(grant(only.id))).toContain("Inappropriate, by Ada Admin");
    expect(text(grant(only.id))).toContain("Not an emergency: routine follow-up.");
    expect(grant(only.id).querySelector("button")).toBeNull();
  });
});
