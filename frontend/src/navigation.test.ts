import { describe, expect, it } from "vitest";

import type { Role } from "./api/types";
import { PAGES, ROLES, ROLE_TABLE, canOpen, homePathFor, isRole, navItemsFor, roleLabel } from "./navigation";

const me = (primary_role: Role, roles: Role[] = [primary_role]) => ({ primary_role, roles });

describe("navigation table", () => {
  it("sends every role to its own home", () => {
    expect(Object.fromEntries(ROLES.map((role) => [role, homePathFor(me(role))]))).toEqual({
      patient: "/patient",
      practitioner: "/clinic",
      nurse: "/clinic",
      scheduler: "/schedule",
      billing: "/billing",
      admin: "/admin-console",
    });
  });

  it("uses the primary role for the home of a user with several roles", () => {
    expect(homePathFor(me("scheduler", ["admin", "scheduler"]))).toBe("/schedule");
    expect(homePathFor(me("admin", ["admin", "scheduler"]))).toBe("/admin-console");
  });

  it("lets each role open its home page", () => {
    for (const role of ROLES) {
      expect(canOpen(ROLE_TABLE[role].home, [role])).toBe(true);
    }
  });

  it("keeps other roles out of a role's pages", () => {
    expect(canOpen("adminUsers", ["practitioner", "nurse", "scheduler", "billing", "patient"])).toBe(false);
    expect(canOpen("adminAudit", ["practitioner", "nurse", "scheduler", "billing", "patient"])).toBe(false);
    expect(canOpen("clinicHome", ["patient"])).toBe(false);
    expect(canOpen("patientHome", ["practitioner"])).toBe(false);
    expect(canOpen("billingHome", ["scheduler"])).toBe(false);
    expect(canOpen("patientAccessLog", ["practitioner", "nurse", "scheduler", "billing", "admin"])).toBe(false);
    expect(canOpen("patientNotifications", ["practitioner", "nurse", "scheduler", "billing", "admin"])).toBe(false);
    expect(canOpen("scheduleReminders", ["practitioner", "nurse", "billing", "patient"])).toBe(false);
    expect(canOpen("scheduleReminders", ["scheduler"])).toBe(true);
    expect(canOpen("scheduleReminders", ["admin"])).toBe(true);
  });

  it("lets every staff role, and no patient, find and register patients", () => {
    for (const page of ["patients", "patientNew", "patientDetail"] as const) {
      for (const role of ["practitioner", "nurse", "scheduler", "billing", "admin"] as const) {
        expect(canOpen(page, [role])).toBe(true);
      }
      expect(canOpen(page, ["patient"])).toBe(false);
    }
  });

  it("builds the nav for one role", () => {
    expect(navItemsFor(["patient"])).toEqual([
      { name: "patientHome", path: "/patient", label: "My health" },
      { name: "patientAppointments", path: "/patient/appointments", label: "My appointments" },
      { name: "patientBooking", path: "/patient/book", label: "Book" },
      { name: "patientRecord", path: "/patient/record", label: "My record" },
      // The nav's text is shorter than the page's h1 ("Who opened my record").
      { name: "patientAccessLog", path: "/patient/access-log", label: "Access log" },
      { name: "patientNotifications", path: "/patient/notifications", label: "Notifications" },
    ]);
    expect(navItemsFor(["nurse"])).toEqual([
      { name: "clinicHome", path: "/clinic", label: "My clinic" },
      { name: "patients", path: "/patients", label: "Patients" },
      { name: "virtualClinic", path: "/clinic/virtual", label: "Virtual clinic" },
      { name: "scheduleBoard", path: "/schedule/board", label: "Live board" },
    ]);
    for (const [role, home] of [
      ["practitioner", "My clinic"],
      ["scheduler", "Scheduling"],
      ["billing", "Billing"],
      ["admin", "Administration"],
    ] as const) {
      expect(navItemsFor([role]).map((i) => i.label).slice(0, 2)).toEqual([home, "Patients"]);
    }
    expect(navItemsFor(["admin"]).map((i) => i.path)).toEqual([
      "/admin-console",
      "/patients",
      "/schedule/board",
      "/schedule/calendar",
      "/schedule/availability",
      "/schedule/reminders",
      "/admin-console/users",
      "/admin-console/audit",
      "/admin-console/status",
      "/admin-console/break-glass",
      "/admin-console/visit-quality",
    ]);
  });

  it("builds the nav for several roles as a union without duplicates", () => {
    expect(navItemsFor(["practitioner", "nurse", "billing"]).map((i) => i.label)).toEqual([
      "My clinic",
      "Billing",
      "Patients",
      "Virtual clinic",
      "Live board",
    ]);
    expect(navItemsFor(["billing", "scheduler"]).map((i) => i.label)).toEqual([
      "Scheduling",
      "Billing",
      "Patients",
      "Live board",
      "Calendar",
      "Availability",
      "Reminders",
    ]);
  });

  it("has no nav for a user without roles", () => {
    expect(navItemsFor([])).toEqual([]);
  });

  it("labels roles for people", () => {
    expect(roleLabel("admin")).toBe("Administrator");
    expect(roleLabel("billing")).toBe("Billing staff");
  });

  it("recognises roles and nothing else", () => {
    expect(ROLES.every(isRole)).toBe(true);
    expect(isRole("superuser")).toBe(false);
    expect(isRole(undefined)).toBe(false);
  });

  it("has unique page paths", () => {
    const paths = Object.values(PAGES).map((p) => p.path);
    expect(new Set(paths).size).toBe(paths.length);
  });
});
