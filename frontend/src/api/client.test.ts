// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";

import { ApiError, NETWORK_ERROR, api, buildUrl, readCookie, setFetch } from "./client";

interface Seen {
  url: string;
  init: RequestInit | undefined;
}

function stubFetch(status: number, body: unknown, seen: Seen[] = []) {
  setFetch(async (url, init) => {
    seen.push({ url, init });
    const text = body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body);
    return new Response(status === 204 ? null : text, { status });
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
