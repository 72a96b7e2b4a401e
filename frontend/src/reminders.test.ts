import { describe, expect, it } from "vitest";

import { channelLabel, channelsFor, dayBar, firstChannel, formatRate, kindLabel, sortHealthDays } from "./reminders";
import { makeHealthDay } from "./testing/notificationsBackend";

describe("reminder words and sums", () => {
  it("shows a delivery rate as a percentage with at most one decimal, and a dash without one", () => {
    expect(formatRate(0.954)).toBe("95.4%");
    expect(formatRate(1)).toBe("100%");
    expect(formatRate(0)).toBe("0%");
    expect(formatRate(2 / 3)).toBe("66.7%");
    expect(formatRate(null)).toBe("—");
  });

  it("names known kinds and channels, and makes words of unknown ones", () => {
    expect(kindLabel("checkin_link")).toBe("Check-in link");
    expect(kindLabel("waiting_too_long")).toBe("Waiting too long");
    expect(channelLabel("sms")).toBe("Text message");
    expect(channelLabel(null)).toBe("—");
    expect(channelLabel("fax")).toBe("fax");
  });

  it("splits a day's messages for its bar without counting delivered ones twice", () => {
    expect(dayBar(makeHealthDay({ queued: 2, sent: 10, delivered: 7, failed: 1, undeliverable: 2 }))).toEqual({
      delivered: 7,
      sentOnly: 3,
      failed: 3,
      queued: 2,
      total: 15,
    });
  });

  it("orders days newest first and channels text, email, voice within a day", () => {
    const days = [
      makeHealthDay({ date: "2026-03-03", channel: "email" }),
      makeHealthDay({ date: "2026-03-04", channel: "voice" }),
      makeHealthDay({ date: "2026-03-04", channel: "sms" }),
      makeHealthDay({ date: "2026-03-03", channel: "sms" }),
    ];
    expect(sortHealthDays(days).map((d) => `${d.date} ${d.channel}`)).toEqual([
      "2026-03-04 sms",
      "2026-03-04 voice",
      "2026-03-03 sms",
      "2026-03-03 email",
    ]);
  });

  it("turns the first channel into a whole order with the other as fallback, and back", () => {
    expect(channelsFor("sms")).toEqual(["sms", "email"]);
    expect(channelsFor("email")).toEqual(["email", "sms"]);
    expect(firstChannel(["email"])).toBe("email");
    expect(firstChannel(["sms", "email"])).toBe("sms");
    expect(firstChannel([])).toBe("sms");
  });
});
