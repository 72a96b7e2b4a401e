import { describe, expect, it } from "vitest";

import { describeUserAgent, formatDate, formatDateTime, formatTimestamp, localInputToIso } from "./format";

describe("describeUserAgent", () => {
  it.each([
    ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", "Chrome on Linux"],
    ["Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "Safari on iOS"],
    ["Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox on Windows"],
    ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0", "Edge on Windows"],
    ["Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", "Chrome on Android"],
    ["python-requests/2.31", "python-requests/2.31"],
    ["", "an unknown browser"],
  ])("%s → %s", (ua, expected) => {
    expect(describeUserAgent(ua)).toBe(expected);
  });

  it("shortens long unknown agents", () => {
    expect(describeUserAgent("x".repeat(100))).toHaveLength(58);
  });
});

describe("formatDateTime", () => {
  it("shows a dash for never", () => {
    expect(formatDateTime(null)).toBe("—");
  });
  it("passes through what it cannot parse", () => {
    expect(formatDateTime("soon")).toBe("soon");
  });
});

describe("formatTimestamp", () => {
  it("includes the seconds", () => {
    expect(formatTimestamp("2026-03-04T10:20:30Z", "en-GB")).toMatch(/:30$/);
  });
  it("passes through what it cannot parse", () => {
    expect(formatTimestamp("soon")).toBe("soon");
  });
});

describe("localInputToIso", () => {
  it("reads a datetime-local value in the browser's time zone", () => {
    expect(localInputToIso("2026-03-04T10:20")).toBe(new Date(2026, 2, 4, 10, 20).toISOString());
    expect(localInputToIso("2026-03-04T10:20:15")).toBe(new Date(2026, 2, 4, 10, 20, 15).toISOString());
  });
  it("can cover the whole minute, for an upper bound", () => {
    expect(localInputToIso("2026-03-04T10:20", true)).toBe(new Date(2026, 2, 4, 10, 20, 59, 999).toISOString());
    expect(localInputToIso("2026-03-04T10:20:15", true)).toBe(new Date(2026, 2, 4, 10, 20, 15).toISOString());
  });
  it("gives null for anything else", () => {
    expect(localInputToIso("")).toBeNull();
    expect(localInputToIso("yesterday")).toBeNull();
  });
});

describe("formatDate", () => {
  it("shows a calendar date as that day in every time zone", () => {
    expect(formatDate("1985-03-02", "en-GB")).toBe("2 Mar 1985");
    expect(formatDate("2000-12-31", "en-US")).toBe("Dec 31, 2000");
  });
  it("shows a dash for no date and passes through what it cannot parse", () => {
    expect(formatDate(null)).toBe("—");
    expect(formatDate("")).toBe("—");
    expect(formatDate("next week")).toBe("next week");
  });
});
