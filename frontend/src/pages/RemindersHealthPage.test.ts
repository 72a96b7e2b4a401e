// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { formatDate } from "../format";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { byRole, button, choose, heading, link, navigation, queryButton, select, text } from "../testing/dom";
import { FakeNotifications, makeFailure, makeHealthDay } from "../testing/notificationsBackend";

/** A loaded machine compiles the lazy page chunk slowly the first time. */
const LOAD_TIMEOUT_MS = 10_000;

let mounted: MountedApp | null = null;
let backend: FakeBackend;
let fake: FakeNotifications;

const FAILED_SMS = "6f1c2a52-0000-4000-8000-000000000001";
const UNDELIVERABLE_EMAIL = "6f1c2a52-0000-4000-8000-000000000002";
const RESENT_BEFORE = "6f1c2a52-0000-4000-8000-000000000003";
const HEALTH_STREAM = "group:notifications.health";

async function openPage(): Promise<MountedApp> {
  mounted = await mountApp("/schedule/reminders", backend);
  await waitFor(
    () => heading() === "Reminder health" && !!document.querySelector('[data-testid="reminder-totals"]') && failureCount() !== "",
    "the reminder health page",
    LOAD_TIMEOUT_MS,
  );
  return mounted;
}

function failureCount(): string {
  return text(document.querySelector('[data-testid="failure-count"]'));
}

function total(key: string): string {
  return text(document.querySelector(`[data-total="${key}"] dd`));
}

function dayRows(): string[] {
  return [...document.querySelectorAll("tr[data-date]")].map(
    (tr) => `${tr.getAttribute("data-date")} ${tr.getAttribute("data-channel")}`,
  );
}

function dayCells(date: string, channel: string): string[] {
  const row = document.querySelector(`tr[data-date="${date}"][data-channel="${channel}"]`);
  if (!row) throw new Error(`no row for ${date} ${channel}`);
  return [...row.querySelectorAll("th, td")].map(text);
}

function failureRow(id: string): HTMLTableRowElement {
  const row = document.querySelector<HTMLTableRowElement>(`tr[data-message-id="${id}"]`);
  if (!row) throw new Error(`no failure row ${id}`);
  return row;
}

function failureCells(id: string): string[] {
  return [...failureRow(id).querySelectorAll("th, td")].map(text);
}

beforeEach(() => {
  backend = new FakeBackend();
  backend.me = makeMe({ id: 5, username: "scheduler", display_name: "Sam Desk", roles: ["scheduler"], primary_role: "scheduler" });
  fake = new FakeNotifications(backend);
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
  fake.days = [
    makeHealthDay({ date: "2026-03-04", channel: "sms", sent: 40, delivered: 37, failed: 2, undeliverable: 1, fell_back: 3 }),
    // Mail servers send no receipts: emails are sent, never delivered.
    makeHealthDay({ date: "2026-03-04", channel: "email", queued: 2, sent: 5, delivered: 0, failed: 0, fell_back: 0 }),
    makeHealthDay({ date: "2026-03-03", channel: "sms", sent: 20, delivered: 20, failed: 0, undeliverable: 0, fell_back: 0 }),
    // Only in a 30-day period.
    makeHealthDay({ date: "2026-02-10", channel: "sms", sent: 100, delivered: 50, failed: 10, undeliverable: 0, fell_back: 10 }),
  ];
  fake.addFailure(makeFailure({ id: FAILED_SMS }));
  fake.addFailure(
    makeFailure({
      id: UNDELIVERABLE_EMAIL,
      kind: "checkin_link",
      channel: "email",
      state: "undeliverable",
      attempts: 1,
      last_error_code: "",
      recipient_masked: "b•••@example.test",
      patient_name: "Ben Brown",
      created_at: "2026-03-04T08:00:00Z",
      fell_back_to: null,
    }),
  );
  fake.addFailure(makeFailure({ id: RESENT_BEFORE, kind: "staff_alert", patient_name: "", resendable: false, created_at: "2026-03-03T08:00:00Z" }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
});

describe("reminder health page", () => {
  it("is “Reminders” in the scheduler's and the admin's navigation", async () => {
    mounted = await mountApp("/schedule", backend);
    link("Reminders", navigation("Main")).click();
    await waitFor(() => heading() === "Reminder health", "the page", LOAD_TIMEOUT_MS);
    expect(mounted.router.currentRoute.value.path).toBe("/schedule/reminders");
    expect(document.title).toBe("Reminder health · Consulta");
    mounted.unmount();

    backend.me = makeMe({ roles: ["admin"], primary_role: "admin" });
    mounted = await mountApp("/admin-console", backend);
    expect([...navigation("Main").querySelectorAll("a")].map(text)).toContain("Reminders");
  }, 20_000);

  it("cannot be opened by anybody else", async () => {
    for (const role of ["practitioner", "nurse", "billing", "patient"] as const) {
      backend.me = makeMe({ roles: [role], primary_role: role });
      mounted = await mountApp("/schedule/reminders", backend);
      expect(mounted.router.currentRoute.value.path).not.toBe("/schedule/reminders");
      expect([...navigation("Main").querySelectorAll("a")].map(text)).not.toContain("Reminders");
      mounted.unmount();
    }
    mounted = null;
    expect(fake.healthCalls()).toHaveLength(0);
  }, 20_000);

  it("shows the period's totals with the delivery rate, and each day and channel newest first", async () => {
    await openPage();
    expect(Object.fromEntries(fake.healthCalls().at(-1) ?? [])).toEqual({ days: "14" });
    expect(select("Period").value).toBe("14");
    expect(total("sent")).toBe("65");
    expect(total("delivered")).toBe("57");
    expect(total("delivery_rate")).toBe("87.7%");
    expect(total("failed")).toBe("3");
    expect(total("fell_back")).toBe("3");
    expect(document.querySelector('[data-total="failed"]')?.classList.contains("total--error")).toBe(true);

    expect(dayRows()).toEqual(["2026-03-04 sms", "2026-03-04 email", "2026-03-03 sms"]);
    // Day, channel, queued, sent, delivered, failed, undeliverable, fallen back, rate.
    expect(dayCells("2026-03-04", "sms")).toEqual([formatDate("2026-03-04"), "Text message", "0", "40", "37", "2", "1", "3", "92.5%"]);
    expect(dayCells("2026-03-04", "email")).toEqual([formatDate("2026-03-04"), "Email", "2", "5", "0", "0", "0", "0", "No receipts"]);
    // A day with failures is marked beyond colour; the bar is decoration only.
    expect(document.querySelector('tr[data-date="2026-03-04"][data-channel="sms"]')?.classList.contains("flagged")).toBe(true);
    expect(document.querySelector('tr[data-date="2026-03-03"]')?.classList.contains("flagged")).toBe(false);
    expect(document.querySelector('tr[data-date="2026-03-04"] .bar')?.getAttribute("aria-hidden")).toBe("true");
    expect(text(document.querySelector('[data-testid="reminders-updated"]'))).toMatch(/^Updated at /);
  });

  it("asks for 7 or 30 days when the period changes", async () => {
    await openPage();
    choose(select("Period"), "Last 30 days");
    await settle();
    expect(Object.fromEntries(fake.healthCalls().at(-1) ?? [])).toEqual({ days: "30" });
    expect(total("sent")).toBe("165");
    expect(dayRows()).toContain("2026-02-10 sms");

    choose(select("Period"), "Last 7 days");
    await settle();
    expect(Object.fromEntries(fake.healthCalls().at(-1) ?? [])).toEqual({ days: "7" });
    expect(total("sent")).toBe("65");
    expect(dayRows()).not.toContain("2026-02-10 sms");
  });

  it("says so when there were no messages", async () => {
    fake.days = [];
    fake.failures = [];
    await openPage();
    expect(total("sent")).toBe("0");
    expect(total("delivery_rate")).toBe("—");
    expect(text(document.querySelector("#reminder-days-caption")?.closest("table")?.querySelector("td.empty"))).toBe(
      "No messages in the last 14 days.",
    );
    expect(failureCount()).toBe("0 messages failed");
    expect(text(document.querySelector("#reminder-failures-caption")?.closest("table")?.querySelector("td.empty"))).toBe(
      "No failed messages. Every message was sent or is on its way.",
    );
  });

  it("lists the failed messages with what is known about each, and a Resend on those that may be resent", async () => {
    // A patient the viewer may not read: the API leaves the name empty.
    const hidden = fake.addFailure(
      makeFailure({ id: "6f1c2a52-0000-4000-8000-000000000004", patient_name: "", created_at: "2026-03-02T08:00:00Z" }),
    );
    await openPage();
    expect(failureCount()).toBe("4 messages failed");
    expect(failureCells(hidden.id)[1]).toBe("Name not shown •••••••0042");
    // The masked recipient is under the patient's name.
    expect(failureCells(FAILED_SMS).slice(1)).toEqual([
      "Ada Abbott •••••••0042",
      "Reminder",
      "Text message",
      "Failed",
      "3",
      "30003",
      "Email",
      "Resend",
    ]);
    expect(failureCells(UNDELIVERABLE_EMAIL).slice(1)).toEqual([
      "Ben Brown b•••@example.test",
      "Check-in link",
      "Email",
      "Undeliverable",
      "1",
      "—",
      "—",
      "Resend",
    ]);
    expect(failureCells(RESENT_BEFORE).slice(1, 3)).toEqual(["Staff member •••••••0042", "Staff alert"]);
    expect(failureCells(RESENT_BEFORE).at(-1)).toBe("Resent already");
    expect(queryButton("Resend", failureRow(RESENT_BEFORE))).toBeUndefined();
    // The button's description names the row it acts on.
    const resend = button("Resend", failureRow(FAILED_SMS));
    expect(resend.getAttribute("aria-describedby")).toBe(`failure-${FAILED_SMS}`);
  });

  it("resends a message, shows the new message's state in the row, says so, and updates the figures", async () => {
    await openPage();
    const healthBefore = fake.healthCalls().length;
    button("Resend", failureRow(FAILED_SMS)).click();
    await settle();

    expect(backend.calls(`POST /api/v1/notifications/messages/${FAILED_SMS}/resend/`)).toHaveLength(1);
    expect(text(failureRow(FAILED_SMS).querySelector('[data-testid="resend-state"]'))).toBe("Resent: Queued");
    expect(queryButton("Resend", failureRow(FAILED_SMS))).toBeUndefined();
    expect(text(document.querySelector('[data-testid="resend-announcement"]'))).toBe(
      "Reminder (Text message) to Ada Abbott resent: Queued.",
    );
    expect(byRole("status").map(text)).toContain("Reminder (Text message) to Ada Abbott resent: Queued.");
    expect(fake.healthCalls().length).toBe(healthBefore + 1);
    // The other rows keep their button.
    expect(queryButton("Resend", failureRow(UNDELIVERABLE_EMAIL))).toBeTruthy();

    // After a refresh the server says the row was resent.
    button("Refresh").click();
    await settle();
    expect(failureCells(FAILED_SMS).at(-1)).toBe("Resent already");
  });

  /** Open the page and its live stream, with faked timers from just before the stream is confirmed (so the page's
   * trailing fetches run on faked time; the fake backend answers on zero-delay timers, which
   * advanceTimersByTimeAsync runs too). The caller restores real timers. */
  async function openLive(): Promise<MountedApp> {
    await openPage();
    const page = mounted!;
    page.socket().open();
    page.socket().hello({ "user:5": 0 });
    await waitFor(
      () => page.socket().sent.some((f) => JSON.stringify(f) === JSON.stringify({ kind: "subscribe", stream: HEALTH_STREAM })),
      "the health stream subscription",
    );
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    page.socket().receive({ kind: "subscribed", stream: HEALTH_STREAM, seq: 0 });
    await vi.advanceTimersByTimeAsync(50);
    expect(document.querySelector('[data-testid="reminders-live"]')).not.toBeNull();
    return page;
  }

  it("follows the live stream: fetches again on a change and once more after the server's window", async () => {
    try {
      const page = await openLive();
      expect(total("sent")).toBe("65");
      const before = fake.healthCalls().length;
      fake.days[0] = makeHealthDay({ date: "2026-03-04", channel: "sms", sent: 41, delivered: 38, failed: 2, undeliverable: 1, fell_back: 3 });
      page.socket().push({ stream: HEALTH_STREAM, seq: 1, type: "notifications.health_changed", data: { window_seconds: 2 }, at: new Date().toISOString() });
      await vi.advanceTimersByTimeAsync(50);
      expect(fake.healthCalls().length).toBe(before + 1);
      expect(total("sent")).toBe("66");

      // A change inside the window, after the event went out: the trailing fetch shows it.
      fake.days[0] = makeHealthDay({ date: "2026-03-04", channel: "sms", sent: 42, delivered: 39, failed: 2, undeliverable: 1, fell_back: 3 });
      await vi.advanceTimersByTimeAsync(2_800);
      expect(fake.healthCalls().length).toBe(before + 1);
      await vi.advanceTimersByTimeAsync(300);
      expect(fake.healthCalls().length).toBe(before + 2);
      expect(total("sent")).toBe("67");
    } finally {
      vi.useRealTimers();
    }
  });

  it("fetches once more a window after joining the stream: a change held back by an earlier window still shows", async () => {
    try {
      await openLive();
      const before = fake.healthCalls().length;
      // The server's window opened (its event went out) before the page joined: a change committed now, inside
      // that window, sends no event of its own.
      fake.days[0] = makeHealthDay({ date: "2026-03-04", channel: "sms", sent: 41, delivered: 38, failed: 2, undeliverable: 1, fell_back: 3 });
      await vi.advanceTimersByTimeAsync(2_800);
      expect(fake.healthCalls().length).toBe(before);
      expect(total("sent")).toBe("65");
      await vi.advanceTimersByTimeAsync(300);
      expect(fake.healthCalls().length).toBe(before + 1);
      expect(total("sent")).toBe("66");
    } finally {
      vi.useRealTimers();
    }
  });

  it("shows in the row why a resend was refused, and keeps the button", async () => {
    await openPage();
    // Someone else resent it from another desk meanwhile.
    fake.resent.set(UNDELIVERABLE_EMAIL, "elsewhere");
    button("Resend", failureRow(UNDELIVERABLE_EMAIL)).click();
    await settle();
    expect(text(failureRow(UNDELIVERABLE_EMAIL).querySelector(".field-error"))).toBe("This message was resent already.");
    expect(failureRow(UNDELIVERABLE_EMAIL).querySelector('[data-testid="resend-state"]')).toBeNull();
  });

  it("does not send a second resend while the first is on its way", async () => {
    let release: () => void = () => undefined;
    backend.on(`POST /api/v1/notifications/messages/${FAILED_SMS}/resend/`, () =>
      new Promise((resolve) => {
        release = () => resolve({ status: 201, body: { id: "new-1", state: "sending" } });
      }),
    );
    await openPage();
    const resend = button("Resend", failureRow(FAILED_SMS));
    resend.click();
    await settle();
    expect(text(resend)).toBe("Resending…");
    expect(resend.disabled).toBe(true);
    resend.click();
    release();
    await settle();
    expect(backend.calls(`POST /api/v1/notifications/messages/${FAILED_SMS}/resend/`)).toHaveLength(1);
    expect(text(failureRow(FAILED_SMS).querySelector('[data-testid="resend-state"]'))).toBe("Resent: Sending");
  });

  it("pages through many failures, 25 at a time", async () => {
    fake.failures = [];
    for (let i = 0; i < 30; i++) {
      fake.addFailure(
        makeFailure({ id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`, created_at: new Date(Date.UTC(2026, 2, 4, 12, 0, 0) - i * 60_000).toISOString() }),
      );
    }
    await openPage();
    expect(failureCount()).toBe("30 messages failed");
    expect(document.querySelectorAll("tr[data-message-id]")).toHaveLength(25);
    expect(text(navigation("Pages of failed messages"))).toContain("Page 1 of 2");
    button("Next page").click();
    await settle();
    expect(Object.fromEntries(fake.failureCalls().at(-1) ?? [])).toEqual({ page: "2" });
    expect(document.querySelectorAll("tr[data-message-id]")).toHaveLength(5);
    expect(button("Next page").disabled).toBe(true);
    button("Previous page").click();
    await settle();
    expect(Object.fromEntries(fake.failureCalls().at(-1) ?? [])).toEqual({});
  });

  it("refreshes both the figures and the failures", async () => {
    await openPage();
    const [health, failures] = [fake.healthCalls().length, fake.failureCalls().length];
    fake.days.push(makeHealthDay({ date: "2026-03-04", channel: "voice", sent: 5, delivered: 5, failed: 0, fell_back: 0 }));
    fake.addFailure(makeFailure({ id: "6f1c2a52-0000-4000-8000-000000000009", patient_name: "Cara Cole" }));
    button("Refresh").click();
    await settle();
    expect(fake.healthCalls()).toHaveLength(health + 1);
    expect(fake.failureCalls()).toHaveLength(failures + 1);
    expect(total("sent")).toBe("70");
    expect(dayRows()).toContain("2026-03-04 voice");
    expect(failureCount()).toBe("4 messages failed");
  });

  it("shows a failure to load in an alert", async () => {
    backend.on("GET /api/v1/notifications/health/", () => ({
      status: 500,
      body: { code: "server_error", detail: "The server had a problem." },
    }));
    mounted = await mountApp("/schedule/reminders", backend);
    await waitFor(
      () => byRole("alert").map(text).includes("The server had a problem."),
      "the alert",
      LOAD_TIMEOUT_MS,
    );
    // The failures still load.
    expect(failureCount()).toBe("3 messages failed");
  });
});
