/**
 * The patient's side of the scheduling API as an in-memory fake (docs/scheduling.md), installed on a FakeBackend:
 * appointment types, practitioners, free slots, holds with expiry, the patient's appointments with versions and
 * If-Match, the cancellation window (`too_late`), and the waitlist with offers (`offer_unavailable`).
 */
import type {
  Appointment,
  AppointmentType,
  FreeSlot,
  Hold,
  Schedule,
  WaitlistEntry,
  WaitlistOffer,
} from "../api/types";
import type { FakeBackend, FakeReply, FakeRequest } from "./backend";

const S = "/api/v1/scheduling";
const MINUTE = 60_000;

export function makeAppointmentType(overrides: Partial<AppointmentType> = {}): AppointmentType {
  return {
    id: 3,
    code: "video-consult",
    name: "Video consultation",
    modality: "video",
    duration_minutes: 30,
    buffer_before_minutes: 0,
    buffer_after_minutes: 0,
    slot_interval_minutes: 15,
    min_notice_minutes: 30,
    horizon_days: 90,
    cancellation_window_minutes: 12 * 60,
    patient_bookable: true,
    requirements: [],
    ...overrides,
  };
}

export function makePractitionerSchedule(overrides: Partial<Schedule> = {}): Schedule {
  return {
    id: 11,
    kind: "practitioner",
    name: "Dr Meredith Grey",
    category: "",
    practitioner_id: 5,
    location_id: 1,
    location_name: "Riverside Clinic",
    time_zone: "America/New_York",
    ...overrides,
  };
}

export function makeAppointment(overrides: Partial<Appointment> = {}): Appointment {
  const start = overrides.start ?? new Date(Date.now() + 3 * 24 * 60 * MINUTE).toISOString();
  return {
    id: 100,
    patient_id: 42,
    patient_display_name: "Ada Abbott",
    patient_mrn: "MRN00000042",
    appointment_type_id: 3,
    appointment_type_name: "Video consultation",
    practitioner_id: 5,
    practitioner_display_name: "Dr Meredith Grey",
    location_id: 1,
    location_name: "Riverside Clinic",
    modality: "video",
    status: "booked",
    start,
    end: new Date(Date.parse(start) + 30 * MINUTE).toISOString(),
    resources: [],
    encounter_id: 900,
    series_id: null,
    comment: "",
    cancel_reason: "",
    override_reason: "",
    arrived_at: null,
    checked_in_at: null,
    visit_started_at: null,
    fulfilled_at: null,
    version: 1,
    created_at: "2031-01-01T09:00:00Z",
    updated_at: "2031-01-01T09:00:00Z",
    ...overrides,
  };
}

/** A start `days` days and `hours` hours from now, on a quarter hour. */
export function startIn(days: number, hours = 0): string {
  const at = Date.now() + (days * 24 + hours) * 60 * MINUTE;
  return new Date(Math.ceil(at / (15 * MINUTE)) * 15 * MINUTE).toISOString();
}

const error = (status: number, code: string, detail: string, extra: Record<string, unknown> = {}): FakeReply => ({
  status,
  body: { code, detail, ...extra },
});

export class FakeBooking {
  types: AppointmentType[] = [makeAppointmentType()];
  schedules: Schedule[] = [makePractitionerSchedule()];
  /** Free slots the API would list (before holds, bookings and `taken` are removed). */
  slots: FreeSlot[] = [];
  appointments: Appointment[] = [];
  entries: WaitlistEntry[] = [];
  offers: WaitlistOffer[] = [];
  holds = new Map<string, Hold & { status: "active" | "consumed" | "released" }>();
  /** Starts someone else booked after the patient listed them: the next hold on them gets 409. */
  taken = new Set<string>();
  /** Offer ids another patient accepted first. */
  offersTaken = new Set<string>();
  holdTtlMs = 5 * MINUTE;
  private nextId = 500;

  constructor(private readonly backend: FakeBackend) {
    backend.on(`GET ${S}/appointment-types/`, () => ({ status: 200, body: { results: this.types } }));
    backend.on(`GET ${S}/schedules/`, () => ({ status: 200, body: { results: this.schedules } }));
    backend.on(`GET ${S}/slots/`, (request) => this.slotList(request));
    backend.on(`POST ${S}/holds/`, (request) => this.holdCreate(request));
    backend.on(`GET ${S}/me/appointments/`, () => ({
      status: 200,
      body: { results: [...this.appointments].sort((a, b) => Date.parse(b.start) - Date.parse(a.start)) },
    }));
    backend.on(`GET ${S}/me/waitlist/`, () => ({ status: 200, body: { entries: this.entries, offers: this.offers } }));
    backend.on(`POST ${S}/waitlist/`, (request) => this.waitlistJoin(request));
  }

  /** Adds an appointment of the signed-in patient (and its routes). */
  addAppointment(appointment: Appointment): Appointment {
    this.appointments.push(appointment);
    const id = appointment.id;
    this.backend.on(`GET ${S}/appointments/${id}/`, () => {
      const row = this.appointment(id);
      return { status: 200, body: row, headers: { ETag: `"${row.version}"` } };
    });
    this.backend.on(`POST ${S}/appointments/${id}/cancel/`, (request) => this.cancel(id, request));
    this.backend.on(`POST ${S}/appointments/${id}/reschedule/`, (request) => this.reschedule(id, request));
    return appointment;
  }

  addOffer(offer: WaitlistOffer): void {
    this.offers.push(offer);
    this.backend.on(`POST ${S}/waitlist/offers/${offer.id}/accept/`, () => this.accept(offer.id));
    this.backend.on(`POST ${S}/waitlist/offers/${offer.id}/decline/`, () => {
      this.setOffer(offer.id, "declined");
      return { status: 204 };
    });
  }

  /** Staff change an appointment elsewhere (a new version). */
  changeElsewhere(id: number, changes: Partial<Appointment>): Appointment {
    const row = { ...this.appointment(id), ...changes };
    row.version += 1;
    this.replace(row);
    return row;
  }

  appointment(id: number): Appointment {
    const row = this.appointments.find((a) => a.id === id);
    if (!row) throw new Error(`no appointment ${id}`);
    return row;
  }

  private replace(row: Appointment): void {
    this.appointments = this.appointments.map((a) => (a.id === row.id ? row : a));
  }

  private setOffer(id: string, status: string): void {
    this.offers = this.offers.map((o) => (o.id === id ? { ...o, status } : o));
  }

  private busyStarts(): Set<string> {
    const busy = new Set(this.taken);
    for (const hold of this.holds.values()) {
      if (hold.status === "active" && Date.parse(hold.expires_at) > Date.now()) busy.add(hold.start);
    }
    for (const a of this.appointments) if (a.status === "booked") busy.add(a.start);
    return busy;
  }

  private slotList(request: FakeRequest): FakeReply {
    const start = Date.parse(request.query.get("start") ?? "");
    const end = Date.parse(request.query.get("end") ?? "");
    const type = Number(request.query.get("appointment_type"));
    if (Number.isNaN(start) || Number.isNaN(end) || !this.types.some((t) => t.id === type)) {
      return error(400, "invalid", "Some fields are not valid.", { fields: { start: ["Required."] } });
    }
    const practitioner = request.query.get("practitioner");
    const busy = this.busyStarts();
    const results = this.slots.filter(
      (s) =>
        Date.parse(s.start) >= start &&
        Date.parse(s.start) < end &&
        (practitioner === null || s.practitioner_id === Number(practitioner)) &&
        !busy.has(s.start),
    );
    return { status: 200, body: { results } };
  }

  private holdCreate(request: FakeRequest): FakeReply {
    const body = request.body as { appointment_type_id: number; start: string; practitioner_id: number };
    const slot = this.slots.find((s) => s.start === body.start && s.practitioner_id === body.practitioner_id);
    if (!slot) return error(422, "outside_availability", "Dr Meredith Grey is not available then.");
    if (this.busyStarts().has(body.start)) {
      return error(409, "slot_unavailable", "Dr Meredith Grey is already booked then.", {
        conflicting_resource: { schedule_id: 11, name: "Dr Meredith Grey" },
      });
    }
    const id = `hold-${this.nextId++}`;
    const hold = {
      id,
      patient_id: 42,
      appointment_type_id: body.appointment_type_id,
      practitioner_id: body.practitioner_id,
      location_id: slot.location_id,
      start: slot.start,
      end: slot.end,
      expires_at: new Date(Date.now() + this.holdTtlMs).toISOString(),
      resources: [],
      status: "active" as const,
    };
    this.holds.set(id, hold);
    this.backend.on(`POST ${S}/holds/${id}/confirm/`, (confirm) => this.holdConfirm(id, confirm));
    this.backend.on(`DELETE ${S}/holds/${id}/`, () => {
      const held = this.holds.get(id);
      if (held?.status === "active") this.holds.set(id, { ...held, status: "released" });
      return { status: 204 };
    });
    const wire: Hold = {
      id,
      patient_id: hold.patient_id,
      appointment_type_id: hold.appointment_type_id,
      practitioner_id: hold.practitioner_id,
      location_id: hold.location_id,
      start: hold.start,
      end: hold.end,
      expires_at: hold.expires_at,
      resources: [],
    };
    return { status: 201, body: wire };
  }

  private holdConfirm(id: string, request: FakeRequest): FakeReply {
    const hold = this.holds.get(id);
    if (!hold) return error(404, "not_found", "Hold not found.");
    if (hold.status === "active" && Date.parse(hold.expires_at) <= Date.now()) {
      return error(409, "hold_expired", "The hold expired; choose the time again.");
    }
    if (hold.status !== "active") return error(409, "hold_not_active", `The hold is ${hold.status}.`);
    this.holds.set(id, { ...hold, status: "consumed" });
    const type = this.types.find((t) => t.id === hold.appointment_type_id);
    const practitioner = this.schedules.find((s) => s.practitioner_id === hold.practitioner_id);
    const appointment = this.addAppointment(
      makeAppointment({
        id: this.nextId++,
        appointment_type_id: hold.appointment_type_id,
        appointment_type_name: type?.name ?? "",
        modality: type?.modality ?? "video",
        practitioner_id: hold.practitioner_id,
        practitioner_display_name: practitioner?.name ?? "",
        start: hold.start,
        end: hold.end,
        comment: (request.body as { comment?: string } | undefined)?.comment ?? "",
      }),
    );
    return { status: 201, body: appointment, headers: { ETag: `"${appointment.version}"` } };
  }

  private ifMatch(id: number, request: FakeRequest): FakeReply | null {
    const header = request.headers["If-Match"];
    if (!header) return error(428, "precondition_required", "Send If-Match.");
    const current = this.appointment(id).version;
    if (header !== `"${current}"`) {
      return error(412, "version_conflict", "The appointment changed since you read it.", { current_version: current });
    }
    return null;
  }

  private tooLate(row: Appointment): FakeReply | null {
    const window = this.types.find((t) => t.id === row.appointment_type_id)?.cancellation_window_minutes ?? 0;
    if (Date.parse(row.start) - Date.now() < window * MINUTE) {
      return error(400, "too_late", "Too close to the start to change online; please call the clinic.");
    }
    return null;
  }

  private cancel(id: number, request: FakeRequest): FakeReply {
    const refused = this.ifMatch(id, request);
    if (refused) return refused;
    const reason = String((request.body as { reason?: string } | undefined)?.reason ?? "").trim();
    if (!reason) return error(400, "invalid", "Some fields are not valid.", { fields: { reason: ["Give a reason."] } });
    const row = this.appointment(id);
    const late = this.tooLate(row);
    if (late) return late;
    const updated = { ...row, status: "cancelled" as const, cancel_reason: reason, version: row.version + 1 };
    this.replace(updated);
    return { status: 200, body: updated, headers: { ETag: `"${updated.version}"` } };
  }

  private reschedule(id: number, request: FakeRequest): FakeReply {
    const refused = this.ifMatch(id, request);
    if (refused) return refused;
    const body = request.body as { start: string; practitioner_id?: number; reason?: string };
    if (!body.reason?.trim()) {
      return error(400, "invalid", "Some fields are not valid.", { fields: { reason: ["Give a reason."] } });
    }
    const row = this.appointment(id);
    const late = this.tooLate(row);
    if (late) return late;
    if (this.busyStarts().has(body.start)) {
      return error(409, "slot_unavailable", "Dr Meredith Grey is already booked then.");
    }
    const updated = {
      ...row,
      start: body.start,
      end: new Date(Date.parse(body.start) + 30 * MINUTE).toISOString(),
      practitioner_id: body.practitioner_id ?? row.practitioner_id,
      version: row.version + 1,
    };
    this.replace(updated);
    return { status: 200, body: updated, headers: { ETag: `"${updated.version}"` } };
  }

  private waitlistJoin(request: FakeRequest): FakeReply {
    const body = request.body as { appointment_type_id: number; practitioner_id?: number | null; earliest: string; latest: string };
    if (Date.parse(body.latest) <= Date.parse(body.earliest)) {
      return error(400, "invalid", "Some fields are not valid.", { fields: { latest: ["Latest after earliest."] } });
    }
    const entry: WaitlistEntry = {
      id: this.nextId++,
      patient_id: 42,
      appointment_type_id: body.appointment_type_id,
      practitioner_id: body.practitioner_id ?? null,
      earliest: body.earliest,
      latest: body.latest,
      status: "active",
      created_at: new Date().toISOString(),
    };
    this.entries.push(entry);
    return { status: 201, body: entry };
  }

  private accept(offerId: string): FakeReply {
    const offer = this.offers.find((o) => o.id === offerId);
    if (!offer || offer.status !== "open" || this.offersTaken.has(offerId)) {
      if (offer) this.setOffer(offerId, "taken");
      return error(409, "offer_unavailable", "Someone else accepted this time first.");
    }
    this.setOffer(offerId, "accepted");
    const appointment = this.addAppointment(
      makeAppointment({ id: this.nextId++, start: offer.start, end: offer.end, practitioner_id: offer.practitioner_id }),
    );
    return { status: 201, body: appointment, headers: { ETag: `"${appointment.version}"` } };
  }
}
