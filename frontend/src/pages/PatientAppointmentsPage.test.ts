// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { StreamEvent } from "../api/types";
import { viewerTimeZone } from "../patientBooking";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe } from "../testing/backend";
import { FakeBooking, makeAppointment, startIn } from "../testing/bookingBackend";
import { button, byRole, heading, link, navigation, queryButton, text } from "../testing/dom";

const S = "/api/v1/scheduling";

let mounted: MountedApp | null = null;
let backend: FakeBackend;
let booking: FakeBooking;

function byTestId(id: string, root: ParentNode = document): HTMLElement | null {
  return root.querySelector<HTMLElement>(`[data-testid="${id}"]`);
}

function card(id: number): HTMLElement {
  const found = document.querySelector<HTMLElement>(`[data-testid="appointment"][data-appointment-id="${id}"]`);
  if (!found) throw new Error(`no appointment ${id}`);
  return found;
}

function ids(section: string): number[] {
  return [...(byTestId(section)?.querySelectorAll<HTMLElement>('[data-testid="appointment"]') ?? [])].map((el) =>
    Number(el.dataset.appointmentId),
  );
}

function alertText(): string {
  return byRole("alert")
    .map((el) => text(el))
    .join(" ");
}

function typeReason(root: HTMLElement, value: string): void {
  const area = root.querySelector("textarea")!;
  area.value = value;
  area.dispatchEvent(new Event("input", { bubbles: true }));
}

function event(stream: string, seq: number, type: string, data: Record<string, unknown>): StreamEvent {
  return { stream, seq, type, data, at: new Date().toISOString() };
}

async function openAppointments(): Promise<MountedApp> {
  mounted = await mountApp("/patient/appointments", backend);
  await waitFor(() => heading() === "My appointments", "the appointments page");
  await waitFor(() => byTestId("upcoming-appointments") !== null, "the list");
  return mounted;
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
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
});

describe("PatientAppointmentsPage", () => {
  it("is in the patient's navigation", async () => {
    await openAppointments();
    expect(link("My appointments", navigation("Main")).getAttribute("href")).toBe("/patient/appointments");
    expect(link("Book an appointment").getAttribute("href")).toBe("/patient/book");
  });

  it("lists upcoming appointments soonest first and past ones with status badges, in the patient's zone", async () => {
    booking.addAppointment(makeAppointment({ id: 1, start: startIn(5) }));
    booking.addAppointment(makeAppointment({ id: 2, start: startIn(2), status: "cancelled", cancel_reason: "Ill" }));
    booking.addAppointment(makeAppointment({ id: 3, start: startIn(-10), status: "fulfilled" }));
    booking.addAppointment(makeAppointment({ id: 4, start: startIn(-3), status: "noshow" }));
    booking.addAppointment(makeAppointment({ id: 5, start: startIn(3), status: "entered-in-error" }));
    await openAppointments();

    expect(ids("upcoming-appointments")).toEqual([2, 1]);
    expect(ids("past-appointments")).toEqual([4, 3]);
    const badge = (id: number) => text(byTestId("appointment-status", card(id)));
    expect([badge(1), badge(2), badge(3), badge(4)]).toEqual(["Booked", "Cancelled", "Attended", "Missed"]);
    expect(text(card(2))).toContain("Reason: Ill");
    expect(text(document.querySelector(".page-lead"))).toContain(`Times are shown in your time zone, ${viewerTimeZone()}`);
    // Only booked, upcoming appointments can be changed.
    expect(queryButton("Cancel appointment", card(2))).toBeUndefined();
    expect(queryButton("Cancel appointment", card(3))).toBeUndefined();
    expect(link("Reschedule", card(1)).getAttribute("href")).toBe("/patient/book?reschedule=1");
  });

  it("cancels with a reason, sending the version as If-Match, and shows it cancelled", async () => {
    booking.addAppointment(makeAppointment({ id: 1, start: startIn(5), version: 2 }));
    await openAppointments();

    button("Cancel appointment", card(1)).click();
    await settle();
    button("Confirm cancellation", card(1)).click();
    await settle();
    expect(text(card(1))).toContain("Please tell the clinic why");
    expect(backend.calls(`POST ${S}/appointments/1/cancel/`)).toHaveLength(0);

    typeReason(card(1), "Feeling better");
    button("Confirm cancellation", card(1)).click();
    await waitFor(() => text(byTestId("appointment-status", card(1))) === "Cancelled", "the cancelled badge");
    const [call] = backend.calls(`POST ${S}/appointments/1/cancel/`);
    expect(call?.headers["If-Match"]).toBe('"2"');
    expect(call?.body).toEqual({ reason: "Feeling better" });
    expect(text(byTestId("appointments-notice"))).toContain("is cancelled");
    expect(text(card(1))).toContain("Reason: Feeling better");
  });

  it("tells the patient to call the clinic inside the cancellation window", async () => {
    booking.addAppointment(makeAppointment({ id: 1, start: startIn(0, 3) }));
    await openAppointments();
    expect(text(byTestId("call-clinic", card(1)))).toContain("Online changes close 12 hours before the start");
    expect(queryButton("Cancel appointment", card(1))).toBeUndefined();
  });

  it("shows the API's too_late nicely when the window closed while the page was open", async () => {
    booking.addAppointment(makeAppointment({ id: 1, start: startIn(5) }));
    await openAppointments();
    booking.types = [{ ...booking.types[0]!, cancellation_window_minutes: 10 * 24 * 60 }];

    button("Cancel appointment", card(1)).click();
    await settle();
    typeReason(card(1), "Feeling better");
    button("Confirm cancellation", card(1)).click();
    await waitFor(() => alertText().includes("call the clinic"), "the too-late message");
    expect(booking.appointment(1).status).toBe("booked");
  });

  it("reloads and says so when the clinic changed the appointment meanwhile (412)", async () => {
    booking.addAppointment(makeAppointment({ id: 1, start: startIn(5) }));
    await openAppointments();
    booking.changeElsewhere(1, { start: startIn(6) });

    button("Cancel appointment", card(1)).click();
    await settle();
    typeReason(card(1), "Feeling better");
    button("Confirm cancellation", card(1)).click();
    await waitFor(() => alertText().includes("changed by the clinic"), "the conflict message");
    await waitFor(() => backend.calls(`GET ${S}/me/appointments/`).length >= 2, "the reload");
    await settle();
    expect(alertText()).toContain("changed by the clinic");
    expect(booking.appointment(1).status).toBe("booked");
    // The fresh copy (version 2) can be cancelled.
    button("Cancel appointment", card(1)).click();
    await settle();
    typeReason(card(1), "Feeling better");
    button("Confirm cancellation", card(1)).click();
    await waitFor(() => text(byTestId("appointment-status", card(1))) === "Cancelled", "the cancelled badge");
    expect(backend.calls(`POST ${S}/appointments/1/cancel/`).at(-1)?.headers["If-Match"]).toBe('"2"');
  });

  it("accepts a waitlist offer, and says when someone else took one first", async () => {
    booking.entries.push({
      id: 9,
      patient_id: 42,
      appointment_type_id: 3,
      practitioner_id: null,
      earliest: startIn(1),
      latest: startIn(8),
      status: "active",
      created_at: new Date().toISOString(),
    });
    const offer = (id: string, start: string) => ({
      id,
      appointment_type_id: 3,
      practitioner_id: 5,
      start,
      end: new Date(Date.parse(start) + 30 * 60_000).toISOString(),
      status: "open",
      expires_at: startIn(0, 2),
    });
    booking.addOffer(offer("offer-a", startIn(3)));
    booking.addOffer(offer("offer-b", startIn(4)));
    booking.offersTaken.add("offer-b");
    await openAppointments();

    const waitlist = byTestId("waitlist")!;
    expect(text(byTestId("waitlist-entry", waitlist))).toContain("Video consultation with any practitioner");
    const offers = () => [...waitlist.querySelectorAll<HTMLElement>('[data-testid="waitlist-offer"]')];
    expect(offers()).toHaveLength(2);
    expect(text(offers()[0])).toContain("Video consultation");
    expect(text(offers()[0])).toContain("Dr Meredith Grey");

    button("Accept", offers()[1]).click();
    await waitFor(() => alertText().includes("someone else took that time"), "the taken message");
    await waitFor(() => offers().length === 1, "the taken offer gone");

    button("Accept", offers()[0]).click();
    await waitFor(() => ids("upcoming-appointments").length === 1, "the new appointment");
    expect(text(byTestId("appointments-notice"))).toContain("Booked: Video consultation");
  });

  it("refreshes when the clinic changes an appointment or a time is offered (live pushes)", async () => {
    booking.addAppointment(makeAppointment({ id: 1, start: startIn(5) }));
    const app = await openAppointments();
    app.socket().open();
    app.socket().hello({ "user:20": 0 });
    await settle();

    booking.changeElsewhere(1, { status: "cancelled", cancel_reason: "Doctor unwell" });
    app.socket().push(event("user:20", 1, "appointment.changed", { id: 1, status: "cancelled", version: 2 }));
    await waitFor(() => text(byTestId("appointment-status", card(1))) === "Cancelled", "the pushed change");

    booking.addOffer({
      id: "offer-c",
      appointment_type_id: 3,
      practitioner_id: 5,
      start: startIn(2),
      end: startIn(2, 0.5),
      status: "open",
      expires_at: startIn(0, 2),
    });
    app.socket().push(event("user:20", 2, "waitlist.offered", { offer_id: "offer-c" }));
    await waitFor(() => byTestId("waitlist-offer") !== null, "the pushed offer");
    expect(text(byTestId("appointments-notice"))).toContain("A time you were waiting for has become free");
  });
});
