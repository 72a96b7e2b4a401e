// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { byRole, button, choose, field, heading, link, navigation, select, text } from "../testing/dom";
import { FakeNotifications, makePreference } from "../testing/notificationsBackend";

/** A loaded machine compiles the lazy page chunk slowly the first time. */
const LOAD_TIMEOUT_MS = 10_000;

let mounted: MountedApp | null = null;
let backend: FakeBackend;
let fake: FakeNotifications;

async function openPage(): Promise<MountedApp> {
  mounted = await mountApp("/patient/notifications", backend);
  await waitFor(
    () => heading() === "Notification preferences" && !!document.querySelector("form"),
    "the preferences form",
    LOAD_TIMEOUT_MS,
  );
  return mounted;
}

function successText(): string {
  return text(document.querySelector('.message--success[role="status"]'));
}

function errorText(): string {
  return text(document.querySelector('.message--error[role="alert"]'));
}

async function save(): Promise<void> {
  button("Save").click();
  await settle();
}

beforeEach(() => {
  backend = new FakeBackend();
  backend.me = makeMe({ id: 9, username: "patient", display_name: "Ada Abbott", roles: ["patient"], primary_role: "patient", patient_id: 42 });
  fake = new FakeNotifications(backend);
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
});

describe("notification preferences page", () => {
  it("is “Notifications” in the patient's navigation, and staff cannot open it", async () => {
    mounted = await mountApp("/patient", backend);
    link("Notifications", navigation("Main")).click();
    await waitFor(() => heading() === "Notification preferences", "the page", LOAD_TIMEOUT_MS);
    expect(mounted.router.currentRoute.value.path).toBe("/patient/notifications");
    expect(document.title).toBe("Notification preferences · Consulta");
    mounted.unmount();

    backend.me = makeMe({ roles: ["scheduler"], primary_role: "scheduler" });
    mounted = await mountApp("/patient/notifications", backend);
    expect(mounted.router.currentRoute.value.path).toBe("/schedule");
    expect(backend.calls("GET /api/v1/notifications/preferences/")).toHaveLength(1);
  }, 20_000);

  it("shows the saved choices and the masked phone number and email address", async () => {
    fake.preference = makePreference({ channels: ["email", "sms"], language: "es", sms_opt_out: true });
    await openPage();
    expect(field("Email first").checked).toBe(true);
    expect(field("Text message first").checked).toBe(false);
    expect(select("Language").value).toBe("es");
    expect([...select("Language").options].map(text)).toEqual(["English", "Español", "Português"]);
    expect(field("Stop text messages").checked).toBe(true);
    expect(field("Stop emails").checked).toBe(false);
    expect(text(document.querySelector('[data-testid="pref-phone"]'))).toBe("•••••••0042");
    expect(text(document.querySelector('[data-testid="pref-email"]'))).toBe("a•••@example.test");
    // Replying STOP is explained next to the box it ticks.
    const hint = document.getElementById(field("Stop text messages").getAttribute("aria-describedby") ?? "");
    expect(text(hint)).toContain("Replying STOP to any text message from us does the same");
  });

  it("says when the record has no phone number or email address", async () => {
    fake.preference = makePreference({ phone_masked: "", email_masked: "" });
    await openPage();
    expect(text(document.querySelector('[data-testid="pref-phone"]'))).toBe("No mobile number on your record");
    expect(text(document.querySelector('[data-testid="pref-email"]'))).toBe("No email address on your record");
  });

  it("saves the order, language and opt-outs, says so, and shows them again after a reload", async () => {
    await openPage();
    field("Email first").click();
    choose(select("Language"), "Português");
    field("Stop text messages").click();
    await settle(2);
    expect(text(document.querySelector('[data-testid="pref-warning"]'))).toBe("");
    await save();

    expect(fake.updateCalls()).toEqual([
      { channels: ["email", "sms"], language: "pt", sms_opt_out: true, email_opt_out: false },
    ]);
    expect(backend.calls("PUT /api/v1/notifications/preferences/")[0]?.headers["X-CSRFToken"]).toBe(backend.csrfToken);
    expect(successText()).toBe("Your preferences are saved. They apply to every message not sent yet.");
    expect(errorText()).toBe("");

    // A change takes the confirmation away until the next save.
    field("Stop emails").click();
    await settle(2);
    expect(successText()).toBe("");
    field("Stop emails").click();
    await settle(2);

    mounted?.unmount();
    await openPage();
    expect(field("Email first").checked).toBe(true);
    expect(select("Language").value).toBe("pt");
    expect(field("Stop text messages").checked).toBe(true);
    expect(field("Stop emails").checked).toBe(false);
  });

  it("warns when the first channel or both are stopped", async () => {
    await openPage();
    field("Stop text messages").click();
    await settle(2);
    expect(text(document.querySelector('[data-testid="pref-warning"]'))).toBe(
      "Text messages are stopped, so reminders will come by email.",
    );
    field("Stop emails").click();
    await settle(2);
    expect(text(document.querySelector('[data-testid="pref-warning"]'))).toBe(
      "With both stopped you will get no appointment reminders or check-in links from us.",
    );
  });

  it("shows the server's field errors next to the fields and keeps every choice on screen", async () => {
    await openPage();
    fake.nextUpdate = {
      status: 400,
      body: {
        code: "invalid",
        detail: "Some fields are not valid.",
        fields: { language: ["Use one of: en, es, pt."], time_zone: ["Give an IANA time zone name."] },
      },
    };
    field("Email first").click();
    choose(select("Language"), "Español");
    field("Stop emails").click();
    await save();

    const language = select("Language");
    expect(language.getAttribute("aria-invalid")).toBe("true");
    expect(text(document.getElementById("pref-language-error"))).toBe("Use one of: en, es, pt.");
    expect(language.getAttribute("aria-describedby")).toContain("pref-language-error");
    expect(document.activeElement).toBe(language);
    expect(byRole("alert").map(text)).toContain("Time zone: Give an IANA time zone name.");
    expect(successText()).toBe("");
    // Nothing the patient chose is lost.
    expect(field("Email first").checked).toBe(true);
    expect(language.value).toBe("es");
    expect(field("Stop emails").checked).toBe(true);
    expect(fake.preference.language).toBe("en");

    // Saved again (the server accepts it this time): the errors go.
    await save();
    expect(document.getElementById("pref-language-error")).toBeNull();
    expect(select("Language").hasAttribute("aria-invalid")).toBe(false);
    expect(successText()).toBe("Your preferences are saved. They apply to every message not sent yet.");
    expect(fake.preference).toMatchObject({ channels: ["email", "sms"], language: "es", email_opt_out: true });
  });

  it("keeps the choices when the server cannot be reached, and says nothing was saved", async () => {
    await openPage();
    fake.nextUpdate = {
      status: 503,
      body: { code: "unavailable", detail: "The server is busy. Try again in a moment." },
    };
    field("Stop text messages").click();
    await save();
    expect(errorText()).toBe("Nothing was saved. The server is busy. Try again in a moment.");
    expect(field("Stop text messages").checked).toBe(true);
    expect(button("Save").disabled).toBe(false);
  });

  it("explains a missing patient record, and offers to retry a failed load", async () => {
    fake.nextRead = {
      status: 404,
      body: { code: "no_patient_record", detail: "Your account has no patient record." },
    };
    mounted = await mountApp("/patient/notifications", backend);
    await waitFor(
      () => text(document.querySelector(".message")).includes("not linked to a patient record"),
      "the notice",
      LOAD_TIMEOUT_MS,
    );
    expect(document.querySelector("form")).toBeNull();
    mounted.unmount();

    fake.nextRead = { status: 500, body: { code: "server_error", detail: "The server had a problem." } };
    mounted = await mountApp("/patient/notifications", backend);
    await waitFor(
      () => byRole("alert").map(text).some((t) => t.startsWith("The server had a problem.")),
      "the alert",
      LOAD_TIMEOUT_MS,
    );
    button("Try again").click();
    await waitFor(() => !!document.querySelector("form"), "the form", LOAD_TIMEOUT_MS);
    expect(field("Text message first").checked).toBe(true);
  }, 20_000);
});
