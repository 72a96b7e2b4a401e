// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { StreamEvent } from "./api/types";
import { mountApp, settle, waitFor, type MountedApp } from "./testing/app";
import { FakeBackend, makeMe, makeUserRow } from "./testing/backend";
import { button, byRole, field, fill, heading, link, navigation, queryButton, text } from "./testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;

async function open(path: string): Promise<MountedApp> {
  mounted = await mountApp(path, backend);
  return mounted;
}

function event(stream: string, seq: number, type: string, data: Record<string, unknown>): StreamEvent {
  return { stream, seq, type, data, at: "2026-03-04T10:20:30Z" };
}

function connectionText(): string {
  return text(document.querySelector('[data-testid="connection-status"]'));
}

beforeEach(() => {
  backend = new FakeBackend();
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
});

describe("sign-in", () => {
  it("sends an anonymous visitor to the sign-in page, remembering where they were going", async () => {
    const { router } = await open("/clinic");
    expect(router.currentRoute.value.path).toBe("/login");
    expect(router.currentRoute.value.query.next).toBe("/clinic");
    expect(heading()).toBe("Sign in to Consulta");
    expect(field("Username")).toBeTruthy();
    expect(field("Password").type).toBe("password");
  });

  it("says when the username or password is wrong, without saying which", async () => {
    backend.account("drgrey", "right", makeMe());
    await open("/login");
    fill(field("Username"), "drgrey");
    fill(field("Password"), "wrong");
    button("Sign in").click();
    await settle();

    expect(byRole("alert").map(text)).toEqual(["Wrong username or password."]);
    expect(button("Sign in").disabled).toBe(false);
    expect(field("Password").value).toBe("");
  });

  it("says to wait after too many failed attempts", async () => {
    backend.on("POST /api/v1/auth/login/", () => ({
      status: 429,
      body: { code: "too_many_attempts", detail: "Locked for 15 minutes." },
    }));
    await open("/login");
    fill(field("Username"), "drgrey");
    fill(field("Password"), "x");
    button("Sign in").click();
    await settle();
    expect(byRole("alert").map(text)).toEqual(["Too many failed attempts. Try again later."]);
  });

  it("shows the server's detail for other errors and asks for empty fields without calling it", async () => {
    backend.on("POST /api/v1/auth/login/", () => ({ status: 500, body: { code: "server_error", detail: "Try later." } }));
    await open("/login");
    button("Sign in").click();
    await settle();
    expect(byRole("alert").map(text)).toEqual(["Enter your username and password."]);
    expect(backend.calls("POST /api/v1/auth/login/")).toHaveLength(0);

    fill(field("Username"), "a");
    fill(field("Password"), "b");
    button("Sign in").click();
    await settle();
    expect(byRole("alert").map(text)).toEqual(["Try later."]);
  });

  it("disables the button while signing in", async () => {
    let release: () => void = () => undefined;
    backend.account("drgrey", "right", makeMe());
    backend.on("POST /api/v1/auth/login/", () => {
      return new Promise((resolve) => {
        release = () => resolve({ status: 400, body: { code: "invalid_credentials", detail: "" } });
      });
    });
    await open("/login");
    fill(field("Username"), "drgrey");
    fill(field("Password"), "right");
    button("Sign in").click();
    await settle();
    expect(button("Sign in").disabled).toBe(true);
    release();
    await settle();
    expect(button("Sign in").disabled).toBe(false);
  });

  it("signs in with a CSRF token, then opens the page the user was going to", async () => {
    backend.account("drgrey", "right", makeMe({ roles: ["practitioner", "billing"] }));
    const { router } = await open("/billing");
    fill(field("Username"), "drgrey");
    fill(field("Password"), "right");
    button("Sign in").click();
    await waitFor(() => heading() === "Billing", "the billing page");

    expect(backend.calls("GET /api/v1/auth/csrf/")).toHaveLength(1);
    expect(backend.calls("POST /api/v1/auth/login/")[0]?.headers["X-CSRFToken"]).toBe("token-1");
    expect(router.currentRoute.value.path).toBe("/billing");
    expect(heading()).toBe("Billing");
  });

  it("goes to the role's home instead of an outside `next`", async () => {
    backend.account("pat", "right", makeMe({ roles: ["patient"], primary_role: "patient" }));
    const { router } = await open("/login?next=//evil.example/");
    fill(field("Username"), "pat");
    fill(field("Password"), "right");
    button("Sign in").click();
    await waitFor(() => heading() === "My health", "the patient home");
    expect(router.currentRoute.value.path).toBe("/patient");
    expect(heading()).toBe("My health");
  });
});

describe("shell and routing", () => {
  it("redirects / to the primary role's home and another role's page back home", async () => {
    backend.me = makeMe({ roles: ["patient"], primary_role: "patient" });
    const { router } = await open("/");
    expect(router.currentRoute.value.path).toBe("/patient");

    await router.push("/admin-console/users");
    await settle();
    expect(router.currentRoute.value.path).toBe("/patient");
    expect(heading()).toBe("My health");
  });

  it("shows the union of the roles' pages in the main navigation, and who is signed in", async () => {
    backend.me = makeMe({ roles: ["practitioner", "billing"], primary_role: "practitioner" });
    await open("/");
    expect(heading()).toBe("My clinic");
    const nav = navigation("Main");
    expect([...nav.querySelectorAll("a")].map(text)).toEqual(["My clinic", "Billing", "Patients", "Virtual clinic"]);
    expect(text(document.querySelector('[data-testid="signed-in-user"]'))).toBe("Dr Meredith Grey, Practitioner");
    expect(queryButton("Sign out")).toBeTruthy();
  });

  it("gives every role a home page with its own heading", async () => {
    const homes = [
      ["patient", "My health"],
      ["practitioner", "My clinic"],
      ["nurse", "My clinic"],
      ["scheduler", "Scheduling"],
      ["billing", "Billing"],
      ["admin", "Administration"],
    ] as const;
    for (const [role, title] of homes) {
      backend = new FakeBackend();
      backend.me = makeMe({ roles: [role], primary_role: role });
      await open("/");
      expect(heading()).toBe(title);
      mounted?.unmount();
      mounted = null;
    }
  });

  it("shows a not-found page for unknown addresses", async () => {
    backend.me = makeMe();
    await open("/no/such/page");
    expect(heading()).toBe("Page not found");
    expect(link("Go to your home page").getAttribute("href")).toBe("/clinic");
  });

  it("signs out and lands on the sign-in page with a notice", async () => {
    backend.me = makeMe();
    const { router } = await open("/clinic");
    document.cookie = "csrftoken=token-1; path=/";
    button("Sign out").click();
    await waitFor(() => heading() === "Sign in to Consulta", "the sign-in page");

    expect(backend.calls("POST /api/v1/auth/logout/")).toHaveLength(1);
    expect(router.currentRoute.value.path).toBe("/login");
    expect(text(document.querySelector('[data-testid="login-notice"]'))).toBe("You have been signed out.");
  });
});

describe("realtime in the shell", () => {
  it("shows the connection state", async () => {
    backend.me = makeMe();
    const app = await open("/clinic");
    expect(connectionText()).toBe("Connecting…");
    app.socket().open();
    app.socket().hello({ "user:7": 0, "session:sess-here": 0 });
    await settle();
    expect(connectionText()).toBe("Live");
    app.socket().serverClose(1012);
    await settle(1);
    expect(connectionText()).toBe("Reconnecting…");
  });

  it("tells the user when their account signs in elsewhere, and lists the event", async () => {
    backend.me = makeMe();
    const app = await open("/clinic");
    app.socket().open();
    app.socket().hello({ "user:7": 4 });
    app.socket().push(
      event("user:7", 5, "session.signed_in_elsewhere", {
        session: "sess-other",
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        at: "2026-03-04T10:20:30Z",
      }),
    );
    // The same session signing in (this tab) is not news.
    app.socket().push(event("user:7", 6, "session.signed_in_elsewhere", { session: "sess-here", user_agent: "x", at: "" }));
    await settle();

    const notices = document.querySelector('[data-testid="session-notices"]');
    expect(notices?.getAttribute("role")).toBe("status");
    expect(text(notices)).toContain("Your account was signed in on another device (Chrome on Linux,");
    expect(notices?.querySelectorAll("p")).toHaveLength(1);
    const activity = document.querySelectorAll('[data-testid="live-activity"] li');
    expect([...activity].map((li) => text(li.querySelector("code")))).toEqual([
      "session.signed_in_elsewhere",
      "session.signed_in_elsewhere",
    ]);

    button("Dismiss").click();
    await settle();
    expect(notices?.querySelectorAll("p")).toHaveLength(0);
  });

  it("signs the tab out when the account is deactivated", async () => {
    backend.me = makeMe();
    const app = await open("/clinic");
    app.socket().open();
    app.socket().hello({ "session:sess-here": 0 });
    app.socket().push(event("session:sess-here", 1, "session.revoked", { reason: "deactivated" }));
    app.socket().serverClose(4403);
    await waitFor(() => heading() === "Sign in to Consulta", "the sign-in page");

    expect(app.router.currentRoute.value.path).toBe("/login");
    expect(text(document.querySelector('[data-testid="login-notice"]'))).toBe("Your account was deactivated.");
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(app.sockets).toHaveLength(1);
  });

  it("signs the tab out when the session ends elsewhere", async () => {
    backend.me = makeMe();
    const app = await open("/clinic");
    app.socket().open();
    app.socket().hello({ "session:sess-here": 0 });
    app.socket().serverClose(4401);
    await waitFor(() => heading() === "Sign in to Consulta", "the sign-in page");
    expect(app.router.currentRoute.value.path).toBe("/login");
    expect(text(document.querySelector('[data-testid="login-notice"]'))).toBe("You have been signed out.");
  });
});

describe("administration", () => {
  beforeEach(() => {
    backend.me = makeMe({ id: 1, username: "root", roles: ["admin"], primary_role: "admin" });
    backend.users = [
      makeUserRow({ id: 1, username: "root", display_name: "Ada Admin", roles: ["admin"] }),
      makeUserRow({ id: 11, username: "bob", display_name: "Bob Builder" }),
      makeUserRow({ id: 12, username: "carol", display_name: "Carol Kim", is_active: false, last_login: null }),
    ];
    document.cookie = "csrftoken=token-1; path=/";
  });

  it("links to the admin pages from the administration home", async () => {
    await open("/admin-console");
    expect(link("Manage users").getAttribute("href")).toBe("/admin-console/users");
    expect(link("View system status").getAttribute("href")).toBe("/admin-console/status");
  });

  it("deactivates a user after an inline confirmation", async () => {
    await open("/admin-console/users");
    expect(heading()).toBe("Users");
    expect(field("Search users").type).toBe("search");
    expect(document.querySelectorAll("tbody tr")).toHaveLength(3);

    button("Deactivate bob").click();
    await settle();
    expect(backend.calls("POST /api/v1/ehr/users/11/deactivate/")).toHaveLength(0);
    button("Confirm deactivation").click();
    await settle();

    expect(backend.calls("POST /api/v1/ehr/users/11/deactivate/")).toHaveLength(1);
    expect(queryButton("Deactivate bob")).toBeUndefined();
    expect(queryButton("Activate bob")).toBeTruthy();
    expect(text(document.querySelector('[data-testid="users-status"]'))).toBe("bob was deactivated.");
    expect(text(document.querySelector('tr[data-username="bob"]'))).toContain("Deactivated");
  });

  it("can cancel the confirmation, and activates without one", async () => {
    await open("/admin-console/users");
    button("Deactivate bob").click();
    await settle();
    button("Cancel").click();
    await settle();
    expect(queryButton("Confirm deactivation")).toBeUndefined();

    button("Activate carol").click();
    await settle();
    expect(backend.calls("POST /api/v1/ehr/users/12/activate/")).toHaveLength(1);
    expect(queryButton("Deactivate carol")).toBeTruthy();
  });

  it("explains that admins cannot deactivate themselves", async () => {
    await open("/admin-console/users");
    button("Deactivate root").click();
    await settle();
    button("Confirm deactivation").click();
    await settle();
    expect(byRole("alert").map(text)).toContain("You cannot deactivate your own account.");
  });

  it("searches as the admin types", async () => {
    await open("/admin-console/users");
    fill(field("Search users"), "car");
    await new Promise((resolve) => setTimeout(resolve, 350));
    await settle();
    const lastList = backend.calls("GET /api/v1/ehr/users/").at(-1);
    expect(lastList?.query.get("search")).toBe("car");
    expect([...document.querySelectorAll("tbody tr")].map((tr) => tr.getAttribute("data-username"))).toEqual(["carol"]);
  });

  it("shows the health of each service and refreshes on demand", async () => {
    let version = "1.0.0";
    backend.on("GET /api/v1/health/", () => ({
      status: 503,
      body: {
        status: "degraded",
        version,
        checks: {
          database: { status: "ok", latency_ms: 1.234 },
          redis: { status: "error", latency_ms: 2000, detail: "Connection refused" },
          celery: { status: "ok", workers: 2 },
        },
      },
    }));
    await open("/admin-console/status");
    expect(heading()).toBe("System status");
    expect(text(document.querySelector('[data-testid="overall-status"]'))).toContain("Degraded");
    expect(text(document.querySelector('[data-testid="check-database"]'))).toContain("1.2 ms");
    expect(text(document.querySelector('[data-testid="check-redis"]'))).toContain("Error");
    expect(text(document.querySelector('[data-testid="check-redis"]'))).toContain("Connection refused");
    expect(text(document.querySelector('[data-testid="check-celery"]'))).toMatch(/Workers\s*2/);

    version = "1.0.1";
    button("Refresh").click();
    await settle();
    expect(backend.calls("GET /api/v1/health/")).toHaveLength(2);
    expect(text(document.querySelector('[data-testid="overall-status"]'))).toContain("1.0.1");
  });
});
