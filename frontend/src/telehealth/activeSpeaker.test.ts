import { describe, expect, it } from "vitest";

import { NO_SPEAKER, intervalLevel, nextSpeaker } from "./activeSpeaker";

describe("nextSpeaker", () => {
  it("picks the loudest above the threshold, keeps them through short pauses, lets them go after the hold", () => {
    let state = nextSpeaker({ a: 0.01, b: 0.03 }, NO_SPEAKER, 0);
    expect(state.current).toBeNull();
    state = nextSpeaker({ a: 0.2, b: 0.06 }, state, 100);
    expect(state.current).toBe("a");
    // b above "on" but not clearly louder than a: a keeps the highlight.
    state = nextSpeaker({ a: 0.1, b: 0.15 }, state, 200);
    expect(state.current).toBe("a");
    // A pause shorter than the hold.
    state = nextSpeaker({ a: 0.0, b: 0.0 }, state, 300);
    state = nextSpeaker({ a: 0.0, b: 0.0 }, state, 1500);
    expect(state.current).toBe("a");
    state = nextSpeaker({ a: 0.0, b: 0.0 }, state, 1900);
    expect(state.current).toBeNull();
  });

  it("hands over to a clearly louder voice at once, and forgets a participant who left", () => {
    let state = nextSpeaker({ a: 0.06, b: 0 }, NO_SPEAKER, 0);
    state = nextSpeaker({ a: 0.06, b: 0.3 }, state, 100);
    expect(state.current).toBe("b");
    state = nextSpeaker({ a: 0.2 }, state, 200);
    expect(state.current).toBe("a");
  });
});

describe("intervalLevel", () => {
  it("is the RMS over the interval from the energy counters, or the instant level without a previous sample", () => {
    expect(intervalLevel({ audioLevel: 0.03, totalAudioEnergy: 0.5, totalSamplesDuration: 10 }, null)).toBe(0.03);
    expect(
      intervalLevel({ audioLevel: 0, totalAudioEnergy: 0.04, totalSamplesDuration: 2 }, { totalAudioEnergy: 0, totalSamplesDuration: 1 }),
    ).toBeCloseTo(0.2);
  });
});
