/**
 * Who sees which page: the one table behind the router's access rules, each role's
 * home, and the main navigation. Add a page here and in router/index.ts together.
 */
import type { Me, Role } from "./api/types";

export const ROLES = ["patient", "practitioner", "nurse", "scheduler", "billing", "admin"] as const satisfies readonly Role[];

// Compile-time check that ROLES lists every Role of the API schema.
type MissingRole = Exclude<Role, (typeof ROLES)[number]>;
const _allRolesListed: MissingRole extends never ? true : never = true;
void _allRolesListed;

export interface PageEntry {
  path: string;
  /** The page's h1, also the document title and (unless `navLabel` is set) the nav link's text. */
  title: string;
  /** A shorter text for the nav link than the page's h1. */
  navLabel?: string;
  /** Roles allowed to open the page (a user needs any one of them). */
  roles: readonly Role[];
  /** Shown in the main navigation. */
  inNav: boolean;
}

/** Everyone who works at a clinic (not patients). */
export const STAFF_ROLES = ["practitioner", "nurse", "scheduler", "billing", "admin"] as const satisfies readonly Role[];

// The nav lists pages in this order, so a page meant to follow each role's home comes after all the homes.
export const PAGES = {
  patientHome: { path: "/patient", title: "My health", roles: ["patient"], inNav: true },
  patientAppointments: { path: "/patient/appointments", title: "My appointments", roles: ["patient"], inNav: true },
  patientBooking: {
    path: "/patient/book",
    title: "Book an appointment",
    navLabel: "Book",
    roles: ["patient"],
    inNav: true,
  },
  patientRecord: { path: "/patient/record", title: "My record", roles: ["patient"], inNav: true },
  patientAccessLog: {
    path: "/patient/access-log",
    title: "Who opened my record",
    navLabel: "Access log",
    roles: ["patient"],
    inNav: true,
  },
  patientNotifications: {
    path: "/patient/notifications",
    title: "Notification preferences",
    navLabel: "Notifications",
    roles: ["patient"],
    inNav: true,
  },
  clinicHome: { path: "/clinic", title: "My clinic", roles: ["practitioner", "nurse"], inNav: true },
  schedulingHome: { path: "/schedule", title: "Scheduling", roles: ["scheduler"], inNav: true },
  billingHome: { path: "/billing", title: "Billing", roles: ["billing"], inNav: true },
  adminHome: { path: "/admin-console", title: "Administration", roles: ["admin"], inNav: true },
  patients: { path: "/patients", title: "Patients", roles: STAFF_ROLES, inNav: true },
  patientNew: { path: "/patients/new", title: "Register a patient", roles: STAFF_ROLES, inNav: false },
  // The page sets the document title to the patient's name once the record is loaded.
  patientDetail: { path: "/patients/:id(\\d+)", title: "Patient", roles: STAFF_ROLES, inNav: false },
  virtualClinic: { path: "/clinic/virtual", title: "Virtual clinic", roles: ["practitioner", "nurse"], inNav: true },
  // Telehealth (issue 5). Paths hold ids only: never a name or anything else about the patient.
  visitCheckIn: {
    path: "/visits/check-in/:appointmentId(\\d+)",
    title: "Check in for your video visit",
    roles: ["patient"],
    inNav: false,
  },
  visitWaiting: { path: "/visits/:visitId/waiting", title: "Waiting room", roles: ["patient"], inNav: false },
  visitSummary: {
    path: "/visits/:visitId/summary",
    title: "Visit summary",
    roles: ["patient", "practitioner", "nurse"],
    inNav: false,
  },
  // The page sets the document title to "Video visit" for both sides.
  videoVisit: { path: "/visits/:visitId", title: "Video visit", roles: ["patient", "practitioner", "nurse"], inNav: false },
  scheduleBoard: { path: "/schedule/board", title: "Live board", roles: ["scheduler", "admin", "nurse"], inNav: true },
  schedulerCalendar: { path: "/schedule/calendar", title: "Calendar", roles: ["scheduler", "admin"], inNav: true },
  schedulerAvailability: { path: "/schedule/availability", title: "Availability", roles: ["scheduler", "admin"], inNav: true },
  scheduleReminders: {
    path: "/schedule/reminders",
    title: "Reminder health",
    navLabel: "Reminders",
    roles: ["scheduler", "admin"],
    inNav: true,
  },
  adminUsers: { path: "/admin-console/users", title: "Users", roles: ["admin"], inNav: true },
  adminAudit: { path: "/admin-console/audit", title: "Audit log", roles: ["admin"], inNav: true },
  adminStatus: { path: "/admin-console/status", title: "System status", roles: ["admin"], inNav: true },
  adminBreakGlass: { path: "/admin-console/break-glass", title: "Emergency access", roles: ["admin"], inNav: true },
  visitQuality: { path: "/admin-console/visit-quality", title: "Call quality", roles: ["admin"], inNav: true },
} as const satisfies Record<string, PageEntry>;

export type PageName = keyof typeof PAGES;

export interface RoleEntry {
  label: string;
  home: PageName;
}

export const ROLE_TABLE: Record<Role, RoleEntry> = {
  patient: { label: "Patient", home: "patientHome" },
  practitioner: { label: "Practitioner", home: "clinicHome" },
  nurse: { label: "Nurse", home: "clinicHome" },
  scheduler: { label: "Scheduler", home: "schedulingHome" },
  billing: { label: "Billing staff", home: "billingHome" },
  admin: { label: "Administrator", home: "adminHome" },
};

export interface NavItem {
  name: PageName;
  path: string;
  label: string;
}

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

export function roleLabel(role: Role): string {
  return ROLE_TABLE[role].label;
}

/** Home page of a signed-in user: the primary role's, else the first known role's. */
export function homePageFor(me: Pick<Me, "primary_role" | "roles">): PageName {
  if (isRole(me.primary_role)) return ROLE_TABLE[me.primary_role].home;
  const first = me.roles.find(isRole);
  return first ? ROLE_TABLE[first].home : "patientHome";
}

export function homePathFor(me: Pick<Me, "primary_role" | "roles">): string {
  return PAGES[homePageFor(me)].path;
}

export function canOpen(page: PageName, roles: readonly Role[]): boolean {
  return PAGES[page].roles.some((role) => roles.includes(role));
}

/** The main navigation: the union over the user's roles, in the table's order, without duplicates. */
export function navItemsFor(roles: readonly Role[]): NavItem[] {
  return (Object.keys(PAGES) as PageName[])
    .filter((name) => PAGES[name].inNav && canOpen(name, roles))
    .map((name) => {
      const page: PageEntry = PAGES[name];
      return { name, path: page.path, label: page.navLabel ?? page.title };
    });
}
