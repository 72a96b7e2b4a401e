// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";

import { ApiError, NETWORK_ERROR, api, buildUrl, readCookie, setFetch } from "./client";
import { conflictVersion, duplicateCandidates } from "./endpoints";

interface Seen {
  url: string;
  init: RequestInit | undefined;
}

function stubFetch(status: number, body: unknown, seen: Seen[] = [], headers: Record<string, string> = {}) {
  setFetch(async (url, init) => {
    seen.push({ url, init });
    const text = body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body);
    return new Response(status === 204 ? null : text, { status, headers });
  });
  return seen;
}

afterEach(() => {
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT";
});

describe("api client", () => {
  it("sends the csrftoken cookie as X-CSRFToken on unsafe requests, read at send time", async () => {
    const seen = stubFetch(200, { ok: true });
    document.cookie = "csrftoken=first";
    await api.post("/api/v1/x/", { a: 1 });
    document.cookie = "csrftoken=rotated";
    await api.post("/api/v1/x/");

    const headers = seen.map((s) => s.init?.headers as Record<string, string>);
    expect(headers[0]?.["X-CSRFToken"]).toBe("first");
    expect(headers[1]?.["X-CSRFToken"]).toBe("rotated");
    expect(headers[0]?.["Content-Type"]).toBe("application/json");
    expect(seen[0]?.init?.body).toBe('{"a":1}');
    expect(seen.every((s) => s.init?.credentials === "same-origin")).toBe(true);
  });

  it("does not send the CSRF header on GET", async () => {
    const seen = stubFetch(200, {});
    document.cookie = "csrftoken=abc";
    await api.get("/api/v1/auth/me/");
    expect((seen[0]?.init?.headers as Record<string, string>)["X-CSRFToken"]).toBeUndefined();
  });

  it("turns error bodies into ApiError with code, detail and fields", async () => {
    stubFetch(400, { code: "invalid", detail: "Check the fields.", fields: { username: ["Required."] } });
    const error = await api.post("/api/v1/auth/login/", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 400, code: "invalid", detail: "Check the fields.", fields: { username: ["Required."] } });
  });

  it("gives a code to errors without a JSON body", async () => {
    stubFetch(502, "<html>Bad gateway</html>");
    await expect(api.get("/api/v1/health/")).rejects.toMatchObject({ status: 502, code: "http_502" });
  });

  it("reports a network failure as status 0", async () => {
    setFetch(async () => {
      throw new TypeError("Failed to fetch");
    });
    await expect(api.get("/api/v1/auth/me/")).rejects.toMatchObject({ status: 0, code: NETWORK_ERROR });
  });

  it("returns the body of an accepted non-2xx status", async () => {
    stubFetch(503, { status: "degraded" });
    await expect(api.get("/api/v1/health/", { acceptStatuses: [503] })).resolves.toEqual({ status: "degraded" });
  });

  it("returns undefined for 204", async () => {
    stubFetch(204, undefined);
    await expect(api.post("/api/v1/auth/logout/")).resolves.toBeUndefined();
  });
});

describe("versioned calls (ETag / If-Match)", () => {
  it("returns the body with the ETag header as received", async () => {
    stubFetch(200, { id: 1, version: 3 }, [], { ETag: '"3"' });
    await expect(api.versioned.get("/api/v1/ehr/patients/1/")).resolves.toEqual({ data: { id: 1, version: 3 }, etag: '"3"' });
  });

  it("gives a null etag when the answer has none", async () => {
    stubFetch(201, { id: 2 });
    await expect(api.versioned.post("/api/v1/ehr/patients/", {})).resolves.toEqual({ data: { id: 2 }, etag: null });
  });

  it("sends extra headers such as If-Match with a PATCH, and the CSRF token", async () => {
    const seen = stubFetch(200, { id: 1, version: 4 }, [], { ETag: '"4"' });
    document.cookie = "csrftoken=abc";
    const result = await api.versioned.patch("/api/v1/ehr/patients/1/", { city: "Lisbon" }, { headers: { "If-Match": '"3"' } });
    expect(result.etag).toBe('"4"');
    expect(seen[0]?.init?.method).toBe("PATCH");
    const headers = seen[0]?.init?.headers as Record<string, string>;
    expect(headers["If-Match"]).toBe('"3"');
    expect(headers["X-CSRFToken"]).toBe("abc");
    expect(seen[0]?.init?.body).toBe('{"city":"Lisbon"}');
  });

  it("keeps the whole error body: the current version of a 412, the candidates of a 409", async () => {
    stubFetch(412, { code: "version_conflict", detail: "Changed.", current_version: 5 });
    const conflict = await api.patch("/api/v1/ehr/patients/1/", {}).catch((e: unknown) => e);
    expect(conflict).toMatchObject({ status: 412, code: "version_conflict", body: { current_version: 5 } });
    expect(conflictVersion(conflict)).toBe(5);
    expect(duplicateCandidates(conflict)).toBeNull();

    const candidate = { id: 9, mrn: "MRN00000009", name: "Ada Abbott", birth_date: "1985-03-02" };
    stubFetch(409, { code: "duplicate_suspected", detail: "Maybe.", candidates: [candidate, { junk: true }] });
    const duplicate = await api.post("/api/v1/ehr/patients/", {}).catch((e: unknown) => e);
    expect(duplicateCandidates(duplicate)).toEqual([candidate]);
    expect(conflictVersion(duplicate)).toBeNull();
  });
});

describe("helpers", () => {
  it("reads one cookie among several", () => {
    expect(readCookie("csrftoken", "sessionid=x; csrftoken=a%3Db; other=1")).toBe("a=b");
    expect(readCookie("csrftoken", "sessionid=x")).toBeNull();
  });

  it("builds query strings without empty values", () => {
    expect(buildUrl("/u/", { search: "ann lee", page: 2, empty: "", none: undefined })).toBe("/u/?search=ann+lee&page=2");
    expect(buildUrl("/u/", {})).toBe("/u/");
  });
});
