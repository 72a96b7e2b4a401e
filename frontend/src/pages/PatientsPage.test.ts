// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { Role } from "../api/types";
import { formatDate } from "../format";
import { mountApp, settle, waitFor, type MountedApp } from "../testing/app";
import { FakeBackend, makeMe, makePatient } from "../testing/backend";
import { button, byRole, choose, field, fill, heading, link, navigation, select, text } from "../testing/dom";

let mounted: MountedApp | null = null;
let backend: FakeBackend;

function signInAs(role: Role): void {
  backend.me = makeMe({ id: 5, username: role, display_name: "Sam Whitfield", roles: [role], primary_role: role });
}

async function open(path: string, title: string): Promise<MountedApp> {
  mounted = await mountApp(path, backend);
  await waitFor(() => heading() === title, `the page "${title}"`);
  return mounted;
}

function searchCalls(): Record<string, string>[] {
  return backend.calls("GET /api/v1/ehr/patients/").map((call) => Object.fromEntries(call.query));
}

function rows(): string[][] {
  return [...document.querySelectorAll("tbody tr[data-patient-id]")].map((tr) => [...tr.querySelectorAll("th, td")].map(text));
}

function countText(): string {
  return text(document.querySelector('[data-testid="patients-count"]'));
}

async function search(): Promise<void> {
  button("Search").click();
  await settle();
}

function registerCalls(): Record<string, unknown>[] {
  return backend.calls("POST /api/v1/ehr/patients/").map((call) => call.body as Record<string, unknown>);
}

async function fillRequired(given = "Ada", family = "Abbott", birth = "1985-03-02"): Promise<void> {
  fill(field("Given name"), given);
  fill(field("Family name"), family);
  fill(field("Birth date"), birth);
  choose(select("Sex"), "Female");
  await settle(2);
}

beforeEach(() => {
  backend = new FakeBackend();
  signInAs("scheduler");
  document.cookie = `csrftoken=${backend.csrfToken}; path=/`;
  backend.addPatient(makePatient({ id: 42, mrn: "MRN00000042", given_name: "Ada", family_name: "Abbott", birth_date: "1985-03-02" }));
  backend.addPatient(
    makePatient({ id: 43, mrn: "MRN00000043", given_name: "Adam", family_name: "Stone", birth_date: "1970-11-20", sex: "male" }),
  );
  backend.addPatient(
    makePatient({ id: 44, mrn: "MRN00000044", given_name: "Zoe", family_name: "Park", birth_date: "1990-06-15", sex: "other" }),
  );
});

afterEach(() => {
  mounted?.unmount();
  mounted = null;
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
});

describe("patient search", () => {
  it("is in every staff role's navigation, after the home page, and not a patient's", async () => {
    await open("/schedule", "Scheduling");
    expect([...navigation("Main").querySelectorAll("a")].map(text).slice(0, 2)).toEqual(["Scheduling", "Patients"]);
    link("Patients", navigation("Main")).click();
    await waitFor(() => heading() === "Patients", "the patients page");
    expect(mounted?.router.currentRoute.value.path).toBe("/patients");
    expect(document.title).toBe("Patients · Consulta");
    expect(link("Register a patient").getAttribute("href")).toBe("/patients/new");
    // Nothing is searched (and audited) until the user asks.
    expect(searchCalls()).toHaveLength(0);
    mounted?.unmount();

    backend.me = makeMe({ roles: ["patient"], primary_role: "patient" });
    mounted = await mountApp("/patients", backend);
    expect(mounted.router.currentRoute.value.path).toBe("/patient");
    mounted.unmount();
    mounted = await mountApp("/patients/42", backend);
    expect(mounted.router.currentRoute.value.path).toBe("/patient");
    expect(backend.calls("GET /api/v1/ehr/patients/42/")).toHaveLength(0);
  });

  it("finds patients by name and links each to their record", async () => {
    const app = await open("/patients", "Patients");
    fill(field("Search patients"), "  ada ");
    await search();

    expect(searchCalls().at(-1)).toEqual({ q: "ada", limit: "25" });
    expect(app.router.currentRoute.value.query).toEqual({ q: "ada" });
    expect(countText()).toBe("2 patients found.");
    expect(rows()).toEqual([
      ["Ada Abbott", "MRN00000042", formatDate("1985-03-02"), "Female", "Active"],
      ["Adam Stone", "MRN00000043", formatDate("1970-11-20"), "Male", "Active"],
    ]);
    expect(link("Ada Abbott").getAttribute("href")).toBe("/patients/42");

    link("Ada Abbott").click();
    await waitFor(() => heading() === "Ada Abbott", "the patient page");
    expect(app.router.currentRoute.value.path).toBe("/patients/42");
  });

  it("searches by birth date and MRN too, and says when nothing matches", async () => {
    await open("/patients", "Patients");
    fill(field("Birth date"), "1990-06-15");
    await search();
    expect(searchCalls().at(-1)).toEqual({ birth_date: "1990-06-15", limit: "25" });
    expect(rows().map((r) => r[0])).toEqual(["Zoe Park"]);
    expect(countText()).toBe("1 patient found.");

    fill(field("Birth date"), "");
    fill(field("MRN"), "43");
    await search();
    expect(searchCalls().at(-1)).toEqual({ mrn: "43", limit: "25" });
    expect(rows().map((r) => r[0])).toEqual(["Adam Stone"]);

    fill(field("MRN"), "");
    fill(field("Search patients"), "nobody");
    await search();
    expect(countText()).toBe("No patients found.");
    expect(text(document.querySelector("td.empty"))).toContain("No patients match your search.");
  });

  it("shows the API's message next to the search box when there is nothing to search by", async () => {
    await open("/patients", "Patients");
    await search();
    expect(searchCalls()).toHaveLength(1);
    const box = field("Search patients");
    expect(box.getAttribute("aria-invalid")).toBe("true");
    expect(box.getAttribute("aria-describedby")).toBe("patient-search-hint patient-search-error");
    const error = document.getElementById("patient-search-error");
    expect(error?.getAttribute("role")).toBe("alert");
    expect(text(error)).toBe("Give a name, birth date, MRN or identifier to search by.");
    expect(document.activeElement).toBe(box);
    expect(rows()).toEqual([]);

    fill(box, "zoe");
    await search();
    expect(document.getElementById("patient-search-error")).toBeNull();
    expect(box.hasAttribute("aria-invalid")).toBe(false);
    expect(rows().map((r) => r[0])).toEqual(["Zoe Park"]);
  });

  it("runs the search in the URL on arrival (so Back from a patient returns to the results)", async () => {
    await open("/patients?q=stone", "Patients");
    await waitFor(() => rows().length === 1, "the results");
    expect(field("Search patients").value).toBe("stone");
    expect(searchCalls()).toEqual([{ q: "stone", limit: "25" }]);
  });

  it("shows other failures in an alert", async () => {
    backend.on("GET /api/v1/ehr/patients/", () => ({ status: 500, body: { code: "server_error", detail: "The server had a problem." } }));
    await open("/patients", "Patients");
    fill(field("Search patients"), "ada");
    await search();
    expect(byRole("alert").map(text)).toContain("The server had a problem.");
  });
});

describe("patient registration", () => {
  it("asks for the required fields, marked as such, and shows the API's field errors next to them", async () => {
    await open("/patients/new", "Register a patient");
    expect(document.title).toBe("Register a patient · Consulta");
    for (const label of ["Given name", "Family name", "Birth date"]) expect(field(label).required).toBe(true);
    expect(select("Sex").required).toBe(true);
    for (const label of [
      "Phone",
      "Email",
      "Address",
      "City",
      "Postal code",
      "Country",
      "Preferred language",
      "Emergency contact name",
      "Emergency contact phone",
      "National ID",
      "Insurance member ID",
    ]) {
      expect(field(label).required).toBe(false);
    }

    fill(field("Given name"), "Ada");
    fill(field("Phone"), "12");
    fill(field("City"), "Springfield");
    button("Register patient").click();
    await settle();

    // Empty fields are not sent: the API names the required ones.
    expect(registerCalls()).toEqual([{ allow_duplicate: false, given_name: "Ada", phone: "12", city: "Springfield" }]);
    const expected: Record<string, string> = {
      "register-family_name": "This field is required.",
      "register-birth_date": "This field is required.",
      "register-sex": "This field is required.",
      "register-phone": "Not a phone number (6 to 15 digits, optional leading +).",
    };
    for (const [id, message] of Object.entries(expected)) {
      const error = document.getElementById(`${id}-error`);
      expect(error?.getAttribute("role")).toBe("alert");
      expect(text(error)).toBe(message);
      expect(document.getElementById(id)?.getAttribute("aria-invalid")).toBe("true");
      expect(document.getElementById(id)?.getAttribute("aria-describedby")).toContain(`${id}-error`);
    }
    expect(document.getElementById("register-given_name-error")).toBeNull();
    expect(byRole("alert").map(text)).toContain("Check the highlighted fields.");
    expect(document.activeElement).toBe(field("Family name"));
    // Nothing typed is lost.
    expect(field("Given name").value).toBe("Ada");
    expect(field("Phone").value).toBe("12");
    expect(field("City").value).toBe("Springfield");
  });

  it("registers the patient and opens the new record", async () => {
    const app = await open("/patients/new", "Register a patient");
    await fillRequired("Nia", "Holm", "2001-09-09");
    fill(field("Phone"), "+1 555 000 1234");
    fill(field("Email"), "nia@example.test");
    fill(field("Country"), "pt");
    fill(field("National ID"), "AB-123456");
    button("Register patient").click();
    await waitFor(() => heading() === "Nia Holm", "the new patient's page");

    expect(registerCalls()).toEqual([
      {
        allow_duplicate: false,
        given_name: "Nia",
        family_name: "Holm",
        birth_date: "2001-09-09",
        sex: "female",
        phone: "+1 555 000 1234",
        email: "nia@example.test",
        country: "pt",
        national_id: "AB-123456",
      },
    ]);
    expect(app.router.currentRoute.value.path).toBe("/patients/1000");
    expect(text(document.querySelector('[data-testid="patient-notice"]'))).toBe("Patient registered.");
    expect(text(document.querySelector('[data-testid="patient-mrn"]'))).toBe("MRN00001000");
    expect(text(document.querySelector('dd[data-field="national_id"]'))).toBe("•••• 3456");
  });

  it("warns about a possible duplicate, keeps the form, and registers anyway when asked", async () => {
    const app = await open("/patients/new", "Register a patient");
    await fillRequired("Ada", "Abbott", "1985-03-02");
    fill(field("Phone"), "+15559990000");
    button("Register patient").click();
    await settle();

    const panel = document.querySelector<HTMLElement>('[data-testid="duplicate-warning"]');
    expect(panel?.getAttribute("role")).toBe("alert");
    expect(text(panel?.querySelector("h2"))).toBe("Possible duplicate");
    expect(document.activeElement?.id).toBe("duplicate-heading");
    expect(text(panel?.querySelector("li"))).toBe(`Ada Abbott MRN00000042 · born ${formatDate("1985-03-02")}`);
    expect(link("Ada Abbott", panel ?? document).getAttribute("href")).toBe("/patients/42");
    expect(field("Given name").value).toBe("Ada");
    expect(field("Phone").value).toBe("+15559990000");
    expect(app.router.currentRoute.value.path).toBe("/patients/new");

    button("Register anyway").click();
    await waitFor(() => app.router.currentRoute.value.path === "/patients/1000", "the new record");
    await waitFor(() => heading() === "Ada Abbott", "the new patient's page");
    expect(registerCalls().map((body) => body.allow_duplicate)).toEqual([false, true]);
    expect(registerCalls()[1]).toMatchObject({ given_name: "Ada", phone: "+15559990000" });
    expect(backend.patients.filter((p) => p.display_name === "Ada Abbott")).toHaveLength(2);
  });

  it("opens the existing record from the duplicate warning", async () => {
    const app = await open("/patients/new", "Register a patient");
    await fillRequired("Ada", "Abbott", "1985-03-02");
    button("Register patient").click();
    await settle();
    button("Open existing record").click();
    await waitFor(() => heading() === "Ada Abbott", "the existing record");
    expect(app.router.currentRoute.value.path).toBe("/patients/42");
    expect(registerCalls()).toHaveLength(1);
  });
});
