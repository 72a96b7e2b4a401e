// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { formatDateTime } from "../format";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { ACCESS_LOG_PAGE_SIZE, FakeBackend, makeAccessLogRow, makeMe } from "../testing/backend";
import { button, byRole, heading, link, navigation, queryButton, text } from "../testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;

function rows(): HTMLTableRowElement[] {
  return [...document.querySelectorAll<HTMLTableRowElement>("tbody tr")];
}

function cells(row: HTMLTableRowElement | undefined): string[] {
  return [...(row?.querySelectorAll("th, td") ?? [])].map(text);
}

async function openLog(): Promise<MountedApp> {
  mounted = await mountApp("/patient/access-log", backend);
  await waitFor(
    () => heading() === "Who opened my record" && backend.calls("GET /api/v1/ehr/me/access-log/").length > 0,
    "the access log",
  );
  await settle();
  return mounted;
}

function recentCard(): HTMLElement {
  const card = document.querySelector<HTMLElement>('[data-testid="recent-access"]');
  if (!card) throw new Error("no Recent access card");
  return card;
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
  });
  backend.accessLog = [
    makeAccessLogRow({
      occurred_at: "2026-03-05T08:00:00Z",
      who: "Dana Okafor",
      role: "Doctor",
      what: "opened your record in an emergency (break-the-glass)",
      purpose: "Emergency access",
      emergency: true,
    }),
    makeAccessLogRow({ occurred_at: "2026-03-04T10:20:30Z", who: "Sam Whitfield", role: "Front desk", what: "updated your details" }),
    makeAccessLogRow({ occurred_at: "2026-03-03T09:00:00Z", who: "Bea Kowalski", role: "Billing", purpose: "Payment or insurance" }),
    makeAccessLogRow({
      occurred_at: "2026-03-01T09:00:00Z",
      who: "Alex Admin",
      role: "Administrator",
      what: "registered you as a patient",
      purpose: "",
    }),
  ];
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
});

describe("who opened my record", () => {
  it("is in the patient's navigation as “Access log”, and only patients can open it", async () => {
    mounted = await mountApp("/patient", backend);
    expect([...navigation("Main").querySelectorAll("a")].map(text)).toEqual([
      "My health",
      "My appointments",
      "Book",
      "My record",
      "Access log",
      "Notifications",
    ]);
    link("Access log", navigation("Main")).click();
    await waitFor(() => heading() === "Who opened my record", "the access log");
    expect(mounted.router.currentRoute.value.path).toBe("/patient/access-log");
    expect(document.title).toBe("Who opened my record · Consulta");
    mounted.unmount();

    backend.me = makeMe({ roles: ["scheduler"], primary_role: "scheduler" });
    mounted = await mountApp("/patient/access-log", backend);
    expect(mounted.router.currentRoute.value.path).toBe("/schedule");
  });

  it("lists every access in plain language, newest first", async () => {
    await openLog();
    expect(text(document.querySelector(".page-lead"))).toContain("Every time someone opens your health record");
    expect(text(document.querySelector('[data-testid="access-count"]'))).toBe("4 times your record was opened.");
    expect(rows().map(cells)).toEqual([
      // The badge says "Emergency access"; the same purpose is not repeated beside it.
      [
        formatDateTime("2026-03-05T08:00:00Z"),
        "Dana Okafor",
        "Doctor",
        "opened your record in an emergency (break-the-glass)",
        "Emergency access",
      ],
      [formatDateTime("2026-03-04T10:20:30Z"), "Sam Whitfield", "Front desk", "updated your details", "Your care"],
      [formatDateTime("2026-03-03T09:00:00Z"), "Bea Kowalski", "Billing", "viewed your record", "Payment or insurance"],
      [formatDateTime("2026-03-01T09:00:00Z"), "Alex Admin", "Administrator", "registered you as a patient", "Not recorded"],
    ]);
    expect(rows()[0]?.querySelector("time")?.getAttribute("datetime")).toBe("2026-03-05T08:00:00Z");
  });

  it("marks emergency (break-the-glass) access with a badge in words, and explains it", async () => {
    await openLog();
    const [emergency, ordinary] = rows();
    expect(text(emergency?.querySelector(".badge"))).toBe("Emergency access");
    expect(emergency?.getAttribute("data-emergency")).toBe("true");
    expect(emergency?.classList.contains("emergency")).toBe(true);
    expect(ordinary?.querySelector(".badge")).toBeNull();
    expect(text(document.querySelector(".emergency-note"))).toContain("Emergency access means someone used the emergency option");

    backend.accessLog = backend.accessLog.slice(1);
    mounted?.unmount();
    await openLog();
    expect(document.querySelector(".emergency-note")).toBeNull();
  });

  it("says so when no one has opened the record", async () => {
    backend.accessLog = [];
    await openLog();
    expect(text(document.querySelector('[data-testid="access-empty"]'))).toBe("No one has opened your record yet.");
    expect(document.querySelector("table")).toBeNull();
  });

  it("pages through a long list", async () => {
    backend.accessLog = Array.from({ length: ACCESS_LOG_PAGE_SIZE + 5 }, (_, i) =>
      makeAccessLogRow({ occurred_at: new Date(Date.UTC(2026, 2, 5) - i * 60_000).toISOString(), who: `Person ${i}` }),
    );
    await openLog();
    expect(rows()).toHaveLength(ACCESS_LOG_PAGE_SIZE);
    expect(button("Previous page").disabled).toBe(true);
    button("Next page").click();
    await settle();
    expect(Object.fromEntries(backend.calls("GET /api/v1/ehr/me/access-log/").at(-1)?.query ?? [])).toEqual({ page: "2" });
    expect(rows()).toHaveLength(5);
    expect(cells(rows()[0])[1]).toBe(`Person ${ACCESS_LOG_PAGE_SIZE}`);
    expect(text(navigation("Pages of the access list"))).toContain("Page 2");
    expect(button("Next page").disabled).toBe(true);
  });

  it("shows failures in an alert", async () => {
    backend.on("GET /api/v1/ehr/me/access-log/", () => ({ status: 503, body: { code: "unavailable", detail: "Down." } }));
    await openLog();
    expect(byRole("alert").map(text)).toContain("We could not load this list right now. Try again in a moment.");
    expect(queryButton("Next page")).toBeUndefined();
  });
});

describe("recent access on the patient's home page", () => {
  it("shows the three newest accesses and links to the whole list", async () => {
    mounted = await mountApp("/patient", backend);
    await waitFor(() => recentCard().querySelectorAll("li").length > 0, "the recent accesses");
    const card = recentCard();
    expect(text(card.querySelector("h2"))).toBe("Recent access");
    const items = [...card.querySelectorAll("li")].map(text);
    expect(items).toEqual([
      `Emergency access Dana Okafor (Doctor) opened your record in an emergency (break-the-glass) ${formatDateTime("2026-03-05T08:00:00Z")}`,
      `Sam Whitfield (Front desk) updated your details ${formatDateTime("2026-03-04T10:20:30Z")} · Your care`,
      `Bea Kowalski (Billing) viewed your record ${formatDateTime("2026-03-03T09:00:00Z")} · Payment or insurance`,
    ]);
    link("See everyone who opened your record", card).click();
    await waitFor(() => heading() === "Who opened my record", "the access log");
  });

  it("says when the account has no record to show", async () => {
    backend.on("GET /api/v1/ehr/me/access-log/", () => ({
      status: 404,
      body: { code: "no_patient_record", detail: "Your account is not linked to a patient record." },
    }));
    mounted = await mountApp("/patient", backend);
    await waitFor(() => text(recentCard()).includes("not linked"), "the message");
    expect(text(recentCard())).toContain("Your account is not linked to a health record yet.");
  });

  it("says so when no one has opened the record", async () => {
    backend.accessLog = [];
    mounted = await mountApp("/patient", backend);
    await waitFor(() => text(recentCard()).includes("No one has opened your record yet."), "the empty state");
    expect(link("See everyone who opened your record", recentCard()).getAttribute("href")).toBe("/patient/access-log");
  });
});
