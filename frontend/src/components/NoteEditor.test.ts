// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApp, nextTick, type App } from "vue";

import { setFetch } from "../api/client";
import type { Note } from "../api/types";
import { readLocalDraft, writeLocalDraft } from "../clinical";
import { settle, waitFor } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { button, byRole, queryButton, text } from "../testing/dom";
import NoteEditor from "./NoteEditor.vue";

let backend: FakeBackend;
let app: App | null = null;
let root: HTMLElement | null = null;
let note: Note;

function mountEditor(props: Record<string, unknown> = {}): void {
  setFetch(backend.fetch);
  root = document.createElement("div");
  document.body.append(root);
  app = createApp(NoteEditor, { note, meId: 7, canSign: true, canWrite: true, debounceMs: 20, retryMs: 20, ...props });
  app.mount(root);
}

function area(label: string): HTMLTextAreaElement {
  const l = [...document.querySelectorAll("label")].find((x) => text(x) === label);
  const el = l ? document.getElementById(l.htmlFor) : null;
  if (!(el instanceof HTMLTextAreaElement)) throw new Error(`no textarea "${label}"`);
  return el;
}

function type(label: string, value: string): void {
  const el = area(label);
  el.value = value;
  el.dispatchEvent(new Event("input", { bubbles: true }));
}

function status(): string {
  return text(document.querySelector('[data-testid="note-save-status"]'));
}

function patches() {
  return backend.calls(`PATCH /api/v1/ehr/notes/${note.id}/`);
}

beforeEach(() => {
  localStorage.clear();
  backend = new FakeBackend();
  backend.me = makeMe({ id: 7, display_name: "Dr Meredith Grey" });
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
  const encounter = backend.clinical.addEncounter(42);
  note = backend.clinical.addNote(encounter.id, { updated_at: "2026-01-01T10:00:00Z" });
});

afterEach(() => {
  app?.unmount();
  root?.remove();
  app = null;
  root = null;
});

describe("SOAP note editor", () => {
  it("has four labelled sections and autosaves the changed ones after typing stops, with If-Match", async () => {
    mountEditor();
    expect(["Subjective", "Objective", "Assessment", "Plan"].map((l) => area(l).tagName)).toEqual(Array(4).fill("TEXTAREA"));
    type("Subjective", "Headache");
    type("Subjective", "Headache for 3 days");
    await nextTick();
    expect(status()).toBe("Unsaved changes");
    expect(readLocalDraft(note.id)?.sections.subjective).toBe("Headache for 3 days");
    await waitFor(() => status().startsWith("Saved at"), "saved");
    expect(patches()).toHaveLength(1);
    expect(patches()[0]?.headers["If-Match"]).toBe('"1"');
    expect(patches()[0]?.body).toEqual({ subjective: "Headache for 3 days" });
    expect(backend.clinical.notes[0]?.subjective).toBe("Headache for 3 days");
    expect(readLocalDraft(note.id)).toBeNull();

    type("Plan", "Rest");
    await waitFor(() => patches().length === 2 && status().startsWith("Saved at"), "second save");
    expect(patches()[1]?.headers["If-Match"]).toBe('"2"');
    expect(patches()[1]?.body).toEqual({ plan: "Rest" });
  });

  it("saves at once when a field loses focus", async () => {
    mountEditor({ debounceMs: 60_000 });
    type("Objective", "BP 120/80");
    area("Objective").dispatchEvent(new Event("blur"));
    await waitFor(() => status().startsWith("Saved at"), "saved on blur");
    expect(patches()).toHaveLength(1);
  });

  it("keeps the text in this browser and retries while the server cannot be reached", async () => {
    const route = `PATCH /api/v1/ehr/notes/${note.id}/`;
    backend.on(route, () => {
      throw new TypeError("Failed to fetch");
    });
    mountEditor();
    type("Assessment", "Tension headache");
    await waitFor(() => status() === "Not saved — retrying", "retrying");
    expect(readLocalDraft(note.id)?.sections.assessment).toBe("Tension headache");
    backend.off(route);
    await waitFor(() => status().startsWith("Saved at"), "saved after reconnecting");
    expect(backend.clinical.notes[0]?.assessment).toBe("Tension headache");
    expect(readLocalDraft(note.id)).toBeNull();
  });

  it("restores text typed in this browser that is newer than the server's draft, says so, and saves it", async () => {
    writeLocalDraft(note.id, { subjective: "Typed before the reload", objective: "", assessment: "", plan: "" }, Date.parse("2026-01-01T10:05:00Z"));
    mountEditor();
    await nextTick();
    expect(area("Subjective").value).toBe("Typed before the reload");
    expect(byRole("status").map(text).join(" ")).toContain("Restored text you typed");
    await waitFor(() => status().startsWith("Saved at"), "restored text saved");
    expect(backend.clinical.notes[0]?.subjective).toBe("Typed before the reload");
  });

  it("ignores text kept in this browser that is older than the server's draft", async () => {
    writeLocalDraft(note.id, { subjective: "Old", objective: "", assessment: "", plan: "" }, Date.parse("2026-01-01T09:00:00Z"));
    mountEditor();
    await settle();
    expect(area("Subjective").value).toBe("");
    expect(readLocalDraft(note.id)).toBeNull();
    expect(patches()).toHaveLength(0);
  });

  it("on a 412 shows the other tab's text, keeps the user's, and saves it on the new version with Keep my version", async () => {
    mountEditor();
    backend.clinical.changeNote(note.id, { subjective: "From the other tab" });
    type("Subjective", "My own words");
    await waitFor(() => document.querySelector('[data-testid="note-conflict"]') !== null, "the conflict panel");
    const panel = document.querySelector('[data-testid="note-conflict"]');
    expect(text(panel)).toContain("This note was changed in another tab");
    expect(text(panel)).toContain("From the other tab");
    expect(area("Subjective").value).toBe("My own words");
    expect(status()).toContain("Not saved");
    expect(readLocalDraft(note.id)?.sections.subjective).toBe("My own words");

    button("Keep my version").click();
    await waitFor(() => status().startsWith("Saved at"), "saved on the new version");
    expect(patches().at(-1)?.headers["If-Match"]).toBe('"2"');
    expect(backend.clinical.notes[0]?.subjective).toBe("My own words");
    expect(document.querySelector('[data-testid="note-conflict"]')).toBeNull();
  });

  it("signs after a confirm step, then shows the note read-only with the signature and takes addenda", async () => {
    mountEditor();
    type("Subjective", "Seen and examined");
    button("Sign note").click();
    await waitFor(() => queryButton("Confirm and sign") !== undefined, "the confirm step");
    expect(backend.calls(`POST /api/v1/ehr/notes/${note.id}/sign/`)).toHaveLength(0);
    button("Confirm and sign").click();
    await waitFor(() => document.querySelector('[data-testid="note-signature"]') !== null, "signed");
    expect(backend.calls(`POST /api/v1/ehr/notes/${note.id}/sign/`)[0]?.headers["If-Match"]).toBe('"2"');
    expect(text(document.querySelector('[data-testid="note-signature"]'))).toMatch(/^Signed by Dr Meredith Grey at /);
    expect(document.querySelectorAll("textarea")).toHaveLength(1); // only the addendum
    expect(text(document.querySelector('[data-testid="note-text"]'))).toContain("Seen and examined");

    button("Add addendum").click();
    await settle();
    expect(byRole("alert").map(text)).toContain("Write the addendum first.");
    type("Addendum", "Labs came back normal.");
    button("Add addendum").click();
    await waitFor(() => document.querySelector('[data-testid="note-addenda"]') !== null, "the addendum");
    expect(text(document.querySelector('[data-testid="note-addenda"]'))).toContain("Labs came back normal.");
    expect(backend.clinical.notes[0]?.status).toBe("amended");
  });

  it("shows someone else's draft read-only", async () => {
    note = { ...note, author_id: 99, author_display_name: "Dr Other" };
    mountEditor();
    await settle();
    expect(document.querySelectorAll("textarea")).toHaveLength(0);
    expect(queryButton("Sign note")).toBeUndefined();
    expect(text(root)).toContain("Draft: only its author can edit it.");
  });
});
