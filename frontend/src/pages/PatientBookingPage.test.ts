// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { FreeSlot } from "../api/types";
import { formatClockTime, localDateKey, viewerTimeZone } from "../patientBooking";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { FakeBooking, makeAppointment, makePractitionerSchedule, startIn } from "../testing/bookingBackend";
import { button, byRole, heading, link, navigation, queryButton, text } from "../testing/dom";

const S = "/api/v1/scheduling";
const ZONE = viewerTimeZone();

let mounted: MountedApp | null = null;
let backend: FakeBackend;
let booking: FakeBooking;

function slot(start: string, practitionerId = 5, name = "Dr Meredith Grey"): FreeSlot {
  return {
    start,
    end: new Date(Date.parse(start) + 30 * 60_000).toISOString(),
    practitioner_id: practitionerId,
    practitioner_display_name: name,
    location_id: 1,
    resources: [],
  };
}

function byTestId(id: string): HTMLElement | null {
  return document.querySelector<HTMLElement>(`[data-testid="${id}"]`);
}

function slotButtons(): HTMLButtonElement[] {
  return [...document.querySelectorAll<HTMLButtonElement>('[data-testid="slot"]')];
}

function alertText(): string {
  return byRole("alert")
    .map((el) => text(el))
    .join(" ");
}

async function openBooking(path = "/patient/book"): Promise<MountedApp> {
  mounted = await mountApp(path, backend);
  await waitFor(() => heading() === "Book an appointment", "the booking page");
  await settle();
  return mounted;
}

async function chooseType(name = "Video consultation"): Promise<void> {
  const label = [...document.querySelectorAll("label.type-option")].find((l) => text(l).includes(name));
  const input = label?.querySelector("input");
  if (!input) throw new Error(`no type ${name}`);
  input.click();
  await waitFor(() => slotButtons().length > 0 || byTestId("no-slots") !== null, "the free times");
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
    patient_id: 42,
  });
  booking = new FakeBooking(backend);
  booking.types.push({ ...booking.types[0]!, id: 4, code: "clinic-follow-up", name: "Follow-up at the clinic", modality: "in-person" });
  booking.schedules.push(makePractitionerSchedule({ id: 12, name: "Dr Cristina Yang", practitioner_id: 6 }));
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
});

describe("PatientBookingPage", () => {
  it("is in the patient's navigation and linked from the home page's next-appointment card", async () => {
    mounted = await mountApp("/patient", backend);
    await waitFor(() => heading() === "My health", "the home page");
    await waitFor(() => text(byTestId("next-appointment")).includes("no upcoming"), "the next appointment");
    expect(link("Book", navigation("Main")).getAttribute("href")).toBe("/patient/book");
    expect(link("Book an appointment", byTestId("next-appointment")!).getAttribute("href")).toBe("/patient/book");
    expect(link("See my appointments").getAttribute("href")).toBe("/patient/appointments");
  });

  it("books: choose a type, see free times by local day in the patient's zone, hold with a countdown, confirm", async () => {
    const first = startIn(2, 3);
    const second = startIn(2, 5);
    // A day later than `first` on any clock (26 hours on), so it never shares the first day's list.
    const laterDay = new Date(Date.parse(first) + 26 * 3600_000).toISOString();
    booking.slots = [slot(first), slot(second), slot(second, 6, "Dr Cristina Yang"), slot(laterDay, 6, "Dr Cristina Yang")];
    await openBooking();

    await chooseType();
    expect(text(byTestId("time-zone"))).toBe(`Times are shown in your time zone, ${ZONE}.`);
    const [slotsCall] = backend.calls(`GET ${S}/slots/`);
    expect(slotsCall?.query.get("appointment_type")).toBe("3");
    expect(Date.parse(slotsCall?.query.get("end") ?? "") - Date.parse(slotsCall?.query.get("start") ?? "")).toBeGreaterThan(
      6 * 24 * 3600_000,
    );

    // The first day with free times is open; a start two practitioners share is offered once.
    const firstDay = localDateKey(first, ZONE);
    const shown = slotButtons();
    expect(shown.every((b) => localDateKey(b.dataset.start ?? "", ZONE) === firstDay)).toBe(true);
    expect(shown.map((b) => b.dataset.start)).toEqual(
      localDateKey(second, ZONE) === firstDay ? [first, second] : [first],
    );
    expect(text(shown[0])).toContain(formatClockTime(first, ZONE));
    expect(text(shown[0])).toContain("Dr Meredith Grey");

    shown[0]!.click();
    await waitFor(() => byTestId("hold-panel") !== null, "the confirmation step");
    const [holdCall] = backend.calls(`POST ${S}/holds/`);
    expect(holdCall?.body).toEqual({ appointment_type_id: 3, start: first, practitioner_id: 5 });
    expect(text(byTestId("hold-countdown"))).toMatch(/^[45]:\d\d$/);
    expect(text(byTestId("hold-panel"))).toContain("Dr Meredith Grey");

    button("Confirm booking").click();
    await waitFor(() => byTestId("booking-done") !== null, "the booked message");
    expect(text(byTestId("booking-done"))).toContain("Your appointment is booked");
    expect(text(byTestId("booking-done"))).toContain("Video consultation with Dr Meredith Grey");
    expect(booking.appointments.map((a) => [a.start, a.status])).toEqual([[first, "booked"]]);
    expect(link("See my appointments").getAttribute("href")).toBe("/patient/appointments");
  });

  it("says a time was taken between listing and holding, and shows the free times again without it", async () => {
    const gone = startIn(2, 3);
    const other = startIn(2, 4);
    booking.slots = [slot(gone), slot(other)];
    await openBooking();
    await chooseType();
    const listed = backend.calls(`GET ${S}/slots/`).length;

    booking.taken.add(gone);
    slotButtons().find((b) => b.dataset.start === gone)!.click();
    await waitFor(() => alertText().includes("just been taken"), "the taken message");
    await waitFor(() => backend.calls(`GET ${S}/slots/`).length > listed, "the free times again");
    await waitFor(() => !slotButtons().some((b) => b.dataset.start === gone), "the taken time gone");
    expect(byTestId("hold-panel")).toBeNull();
    expect(slotButtons().map((b) => b.dataset.start)).toContain(other);
  });

  it("gives the held time back with Back", async () => {
    booking.slots = [slot(startIn(2, 3))];
    await openBooking();
    await chooseType();
    slotButtons()[0]!.click();
    await waitFor(() => byTestId("hold-panel") !== null, "the confirmation step");
    const holdId = [...booking.holds.keys()][0]!;

    button("Back").click();
    await waitFor(() => slotButtons().length === 1, "the free times");
    expect(backend.calls(`DELETE ${S}/holds/${holdId}/`)).toHaveLength(1);
    expect(booking.holds.get(holdId)?.status).toBe("released");
  });

  it("asks to choose again when the hold ran out before confirming", async () => {
    booking.slots = [slot(startIn(2, 3))];
    await openBooking();
    await chooseType();
    slotButtons()[0]!.click();
    await waitFor(() => byTestId("hold-panel") !== null, "the confirmation step");
    const holdId = [...booking.holds.keys()][0]!;
    // The server's clock says the hold is over (the tab's countdown still runs): confirm answers 409 hold_expired.
    const held = booking.holds.get(holdId)!;
    booking.holds.set(holdId, { ...held, expires_at: new Date(Date.now() - 1000).toISOString() });

    button("Confirm booking").click();
    await waitFor(() => alertText().includes("ran out"), "the expiry message");
    await waitFor(() => slotButtons().length === 1, "the free times again");
    expect(byTestId("hold-panel")).toBeNull();
    expect(booking.appointments).toHaveLength(0);
  });

  it("ends the hold by itself when the countdown reaches zero", async () => {
    booking.slots = [slot(startIn(2, 3))];
    booking.holdTtlMs = 1500;
    await openBooking();
    await chooseType();
    slotButtons()[0]!.click();
    await waitFor(() => byTestId("hold-panel") !== null, "the confirmation step");

    await waitFor(() => alertText().includes("ran out"), "the expiry message", 4000);
    expect(byTestId("hold-panel")).toBeNull();
    expect(booking.appointments).toHaveLength(0);
  });

  it("narrows the free times to one practitioner", async () => {
    booking.slots = [slot(startIn(2, 3)), slot(startIn(2, 4), 6, "Dr Cristina Yang")];
    await openBooking();
    await chooseType();
    const select = document.querySelector<HTMLSelectElement>("#booking-practitioner")!;
    const option = [...select.options].find((o) => text(o) === "Dr Cristina Yang (Riverside Clinic)")!;
    select.value = option.value;
    select.dispatchEvent(new Event("change", { bubbles: true }));
    await waitFor(() => backend.calls(`GET ${S}/slots/`).at(-1)?.query.get("practitioner") === "6", "the filtered search");
    await waitFor(() => slotButtons().length === 1, "one practitioner's times");
    expect(text(slotButtons()[0])).not.toContain("Dr Cristina Yang"); // the name is the filter's, not repeated
  });

  it("moves between weeks and offers the waitlist for a week with no free times", async () => {
    booking.slots = [slot(startIn(2, 3))];
    await openBooking();
    await chooseType();
    const firstWeek = backend.calls(`GET ${S}/slots/`).at(-1)!;
    expect(button("Previous week").disabled).toBe(true);

    button("Next week").click();
    await waitFor(() => byTestId("no-slots") !== null, "the empty week");
    const nextWeek = backend.calls(`GET ${S}/slots/`).at(-1)!;
    expect(nextWeek.query.get("start")).toBe(firstWeek.query.get("end"));

    button("Join the waitlist").click();
    await waitFor(() => byTestId("waitlist-joined") !== null, "the waitlist confirmation");
    const [join] = backend.calls(`POST ${S}/waitlist/`);
    expect(join?.body).toEqual({
      appointment_type_id: 3,
      practitioner_id: null,
      earliest: nextWeek.query.get("start"),
      latest: nextWeek.query.get("end"),
    });
    expect(queryButton("Join the waitlist")).toBeUndefined();
  });

  it("reschedules an appointment to a new time of the same type with If-Match", async () => {
    const current = booking.addAppointment(makeAppointment({ id: 77, start: startIn(4), version: 3 }));
    const target = startIn(5, 2);
    booking.slots = [slot(target)];
    await openBooking("/patient/book?reschedule=77");
    await waitFor(() => slotButtons().length === 1, "the free times of the same type");
    expect(text(byTestId("moving"))).toContain("Video consultation");
    expect(document.querySelector("label.type-option")).toBeNull();
    expect(backend.calls(`GET ${S}/slots/`)[0]?.query.get("appointment_type")).toBe(String(current.appointment_type_id));

    slotButtons()[0]!.click();
    await waitFor(() => byTestId("move-panel") !== null, "the move step");
    expect(backend.calls(`POST ${S}/holds/`)).toHaveLength(0);
    button("Move appointment").click();
    await settle();
    expect(text(document.querySelector("#move-reason-error"))).toContain("why");

    const reason = document.querySelector<HTMLTextAreaElement>("#move-reason")!;
    reason.value = "Work meeting";
    reason.dispatchEvent(new Event("input", { bubbles: true }));
    button("Move appointment").click();
    await waitFor(() => byTestId("booking-done") !== null, "the moved message");
    const [call] = backend.calls(`POST ${S}/appointments/77/reschedule/`);
    expect(call?.headers["If-Match"]).toBe('"3"');
    expect(call?.body).toEqual({ start: target, practitioner_id: 5, reason: "Work meeting" });
    expect(text(byTestId("booking-done"))).toContain("Your appointment has been moved");
  });
});
