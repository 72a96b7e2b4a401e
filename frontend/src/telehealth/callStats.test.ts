import { describe, expect, it } from "vitest";

import { connectedStats } from "../testing/fakeRtc";
import { describeCandidateType, summarizeStats } from "./callStats";

describe("summarizeStats", () => {
  it("reads the selected pair's candidate types and rtt, video frames, and loss since the last sample", () => {
    const first = summarizeStats(connectedStats({ localType: "host", remoteType: "prflx", framesDecoded: 3, packetsReceived: 50, packetsLost: 50 }), 0, null, false);
    expect(first.summary).toMatchObject({
      local_candidate_type: "host",
      remote_candidate_type: "prflx",
      relay: false,
      rtt_ms: 12,
      frames_decoded: 3,
      frames_per_second: 30,
      packet_loss_pct: 50,
      bitrate_in_kbps: null,
      jitter_ms: 4,
      audio_only: false,
    });
    const second = summarizeStats(
      connectedStats({ framesDecoded: 33, bytesReceived: 250_000, bytesSent: 125_000, packetsReceived: 148, packetsLost: 52 }),
      2000,
      first.counters,
      true,
    );
    expect(second.summary).toMatchObject({ bitrate_in_kbps: 1000, bitrate_out_kbps: 500, packet_loss_pct: 2, audio_only: true });
  });

  it("falls back to a nominated succeeded pair, and says none before ICE connects", () => {
    const report = connectedStats({ localType: "relay" });
    report.delete("T1");
    expect(summarizeStats(report, 0, null, false).summary.local_candidate_type).toBe("relay");
    const empty = summarizeStats(new Map(), 0, null, false).summary;
    expect(empty).toMatchObject({ local_candidate_type: null, rtt_ms: null, frames_decoded: 0, packet_loss_pct: null });
    expect(describeCandidateType(null)).toBe("not connected");
    expect(describeCandidateType("relay")).toBe("relayed (TURN server)");
  });
});
