import { defineComponent } from "vue";
import {
  createRouter,
  createWebHistory,
  type RouteLocationNormalized,
  type RouteComponent,
  type RouteLocationRaw,
  type RouteRecordRaw,
  type Router,
  type RouterHistory,
} from "vue-router";

import AppShell from "../components/AppShell.vue";
import { PAGES, canOpen, homePathFor, type PageName } from "../navigation";
import { useSessionStore } from "../stores/session";
import { isInternalPath } from "./paths";

declare module "vue-router" {
  interface RouteMeta {
    /** Reachable without signing in. */
    public?: boolean;
    /** Entry of the navigation table: decides who may open the route. */
    page?: PageName;
    /** Document title (pages from the table use their title). */
    title?: string;
  }
}

/** `/` never renders: the guard sends it to the user's home. */
const RoleHomeRedirect = defineComponent({ name: "RoleHomeRedirect", render: () => null });

type LazyPage = () => Promise<{ default: RouteComponent }>;

function pageRoute(name: PageName, component: LazyPage): RouteRecordRaw {
  return { path: PAGES[name].path, name, component, meta: { page: name, title: PAGES[name].title } };
}

export const routes: RouteRecordRaw[] = [
  {
    path: "/login",
    name: "login",
    component: () => import("../pages/LoginPage.vue"),
    meta: { public: true, title: "Sign in" },
  },
  {
    path: "/",
    component: AppShell,
    children: [
      { path: "", name: "root", component: RoleHomeRedirect },
      pageRoute("patientHome", () => import("../pages/PatientHomePage.vue")),
      pageRoute("patientAppointments", () => import("../pages/PatientAppointmentsPage.vue")),
      pageRoute("patientBooking", () => import("../pages/PatientBookingPage.vue")),
      pageRoute("patientRecord", () => import("../pages/PatientRecordPage.vue")),
      pageRoute("patientAccessLog", () => import("../pages/AccessLogPage.vue")),
      pageRoute("patientNotifications", () => import("../pages/NotificationPreferencesPage.vue")),
      pageRoute("clinicHome", () => import("../pages/ClinicHomePage.vue")),
      pageRoute("schedulingHome", () => import("../pages/SchedulingHomePage.vue")),
      pageRoute("billingHome", () => import("../pages/BillingHomePage.vue")),
      pageRoute("adminHome", () => import("../pages/AdminHomePage.vue")),
      pageRoute("patients", () => import("../pages/PatientsPage.vue")),
      pageRoute("patientNew", () => import("../pages/PatientRegisterPage.vue")),
      pageRoute("patientDetail", () => import("../pages/PatientDetailPage.vue")),
      pageRoute("virtualClinic", () => import("../pages/VirtualClinicPage.vue")),
      pageRoute("visitCheckIn", () => import("../pages/VisitCheckInPage.vue")),
      pageRoute("visitWaiting", () => import("../pages/VisitWaitingRoomPage.vue")),
      pageRoute("visitSummary", () => import("../pages/VisitSummaryPage.vue")),
      pageRoute("videoVisit", () => import("../pages/VideoVisitPage.vue")),
      pageRoute("scheduleBoard", () => import("../pages/SchedulerBoardPage.vue")),
      pageRoute("schedulerCalendar", () => import("../pages/SchedulerCalendarPage.vue")),
      pageRoute("schedulerAvailability", () => import("../pages/AvailabilityPage.vue")),
      pageRoute("scheduleReminders", () => import("../pages/RemindersHealthPage.vue")),
      pageRoute("adminUsers", () => import("../pages/AdminUsersPage.vue")),
      pageRoute("adminAudit", () => import("../pages/AdminAuditPage.vue")),
      pageRoute("adminStatus", () => import("../pages/SystemStatusPage.vue")),
      pageRoute("adminBreakGlass", () => import("../pages/AdminBreakGlassPage.vue")),
      pageRoute("visitQuality", () => import("../pages/VisitQualityPage.vue")),
    ],
  },
  {
    // A signed single-use check-in link (from a reminder): consumed at once, then replaced by the check-in page.
    path: "/check-in/link/:token",
    name: "checkInLink",
    component: () => import("../pages/CheckInLinkPage.vue"),
    meta: { public: true, title: "Check in" },
  },
  {
    // A guest's invitation link (issue 7): consumed at once, then the address becomes /visit/guest.
    path: "/visit/join/:token",
    name: "guestJoin",
    component: () => import("../pages/GuestJoinPage.vue"),
    meta: { public: true, title: "Video visit" },
  },
  {
    path: "/visit/guest",
    name: "guestVisit",
    component: () => import("../pages/GuestJoinPage.vue"),
    meta: { public: true, title: "Video visit" },
  },
  {
    path: "/:pathMatch(.*)*",
    name: "notFound",
    component: () => import("../pages/NotFoundPage.vue"),
    meta: { public: true, title: "Page not found" },
  },
];

export async function sessionGuard(to: RouteLocationNormalized): Promise<true | RouteLocationRaw> {
  const session = useSessionStore();
  if (!session.loaded) await session.load();
  const me = session.me;

  if (to.name === "login") return me ? homePathFor(me) : true;
  if (to.meta.public) return true;
  if (!me) {
    const next = to.fullPath !== "/" && isInternalPath(to.fullPath) ? to.fullPath : undefined;
    return { name: "login", query: next ? { next } : {} };
  }
  if (to.name === "root") return homePathFor(me);
  if (to.meta.page && !canOpen(to.meta.page, me.roles)) return homePathFor(me);
  return true;
}

export function createAppRouter(history: RouterHistory = createWebHistory()): Router {
  const router = createRouter({
    history,
    routes,
    scrollBehavior: (_to, _from, saved) => saved ?? { top: 0 },
  });
  router.beforeEach(sessionGuard);
  router.afterEach((to) => {
    document.title = to.meta.title ? `${to.meta.title} · Consulta` : "Consulta";
  });
  return router;
}
