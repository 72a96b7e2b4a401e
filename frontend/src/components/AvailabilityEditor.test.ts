// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApp, type App } from "vue";

import { setFetch } from "../api/client";
import type { Availability } from "../api/types";
import type { WeeklyRule } from "../calendar/calendarEvents";
import { settle } from "../testing/app";
import { button, fill, text } from "../testing/dom";
import AvailabilityEditor from "./AvailabilityEditor.vue";

interface Sent {
  method: string;
  url: string;
  body: unknown;
}

let app: App | null = null;
let root: HTMLElement;
let sent: Sent[];
let reply: (body: { rules: WeeklyRule[] }) => { status: number; body: unknown };
let saved: Availability[];

const RULES: WeeklyRule[] = [
  { weekday: 0, start_time: "09:00", end_time: "17:00", effective_from: "2031-01-01", effective_until: null },
  { weekday: 1, start_time: "09:00", end_time: "17:00", effective_from: "2031-01-01", effective_until: null },
];

function availability(rules: WeeklyRule[]): Availability {
  return { schedule_id: 5, time_zone: "America/New_York", rules, exceptions: [] } as Availability;
}

function mount(rules: WeeklyRule[] = RULES): void {
  root = document.createElement("div");
  document.body.append(root);
  app = createApp(AvailabilityEditor, {
    scheduleId: 5,
    scheduleName: "Dr Meredith Grey",
    timeZone: "America/New_York",
    rules,
    onSaved: (value: Availability) => saved.push(value),
  });
  app.mount(root);
}

function input(label: string): HTMLInputElement | HTMLSelectElement {
  const found = root.querySelector<HTMLInputElement | HTMLSelectElement>(`[aria-label="${label}"]`);
  if (!found) throw new Error(`no control "${label}"`);
  return found;
}

function rowError(row: number): string {
  return text(root.querySelector(`[data-testid="rule-error-${row}"]`));
}

async function save(): Promise<void> {
  button("Save weekly hours", root).click();
  await settle();
}

beforeEach(() => {
  sent = [];
  saved = [];
  reply = (body) => ({ status: 200, body: availability(body.rules) });
  setFetch(async (url, init) => {
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    sent.push({ method: init?.method ?? "GET", url, body });
    const answer = reply(body);
    return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { "Content-Type": "application/json" } });
  });
});

afterEach(() => {
  app?.unmount();
  app = null;
  root.remove();
});

describe("the weekly hours editor", () => {
  it("shows each rule as a row with its weekday and hours", async () => {
    mount();
    await settle();
    expect((input("Weekday, row 1") as HTMLSelectElement).selectedOptions[0]?.textContent?.trim()).toBe("Monday");
    expect(input("From, row 2").value).toBe("09:00");
    expect(input("To, row 2").value).toBe("17:00");
  });

  it("marks the rows it cannot save, says why on each, and sends nothing", async () => {
    mount();
    await settle();
    fill(input("To, row 1") as HTMLInputElement, "08:00");
    button("Add hours", root).click();
    await settle();
    const weekday = input("Weekday, row 3") as HTMLSelectElement;
    weekday.value = "1";
    weekday.dispatchEvent(new Event("change", { bubbles: true }));
    fill(input("From, row 3") as HTMLInputElement, "16:00");
    fill(input("To, row 3") as HTMLInputElement, "18:00");
    await save();

    expect(sent).toEqual([]);
    expect(rowError(1)).toBe("Row 1: The start must be before the end.");
    expect(rowError(2)).toBe("");
    expect(rowError(3)).toBe("Row 3: Overlaps row 2 (Tuesday 09:00–17:00).");
    expect(input("From, row 1").getAttribute("aria-invalid")).toBe("true");
    expect(input("From, row 2").getAttribute("aria-invalid")).toBeNull();
    expect(text(root.querySelector('[data-testid="availability-error"]'))).toBe("Fix the rows marked below, then save again.");
  });

  it("saves the rows as the whole weekly rule set", async () => {
    mount();
    await settle();
    fill(input("To, row 2") as HTMLInputElement, "13:00");
    button("Remove row 1", root).click();
    await settle();
    await save();

    expect(sent).toEqual([
      {
        method: "PUT",
        url: "/api/v1/scheduling/schedules/5/availability/",
        body: { rules: [{ weekday: 1, start_time: "09:00", end_time: "13:00", effective_from: "2031-01-01", effective_until: null }] },
      },
    ]);
    expect(saved).toHaveLength(1);
    expect(text(root.querySelector('[data-testid="availability-saved"]'))).toBe("Weekly hours of Dr Meredith Grey saved.");
  });

  it("shows the API's refusal on the row it names, keeping what was typed", async () => {
    reply = () => ({
      status: 400,
      body: { code: "invalid", detail: "Some fields are not valid.", fields: { "rules[1]": ["Overlaps rules[0] on the same weekday."] } },
    });
    mount();
    await settle();
    fill(input("From, row 2") as HTMLInputElement, "10:00");
    await save();

    expect(sent).toHaveLength(1);
    expect(rowError(2)).toBe("Row 2: Overlaps rules[0] on the same weekday.");
    expect(input("From, row 2").value).toBe("10:00");
    expect(saved).toEqual([]);
  });
});
