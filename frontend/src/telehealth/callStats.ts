/**
 * One call-quality summary from RTCPeerConnection.getStats(): what the Connection panel shows and what the browser
 * reports to the API (POST visits/{id}/quality/). Bitrates and packet loss are measured since the previous sample;
 * the first sample's loss is cumulative and its bitrates are null.
 */
import type { CallQualityStats, CandidateType } from "../api/types";

type Stat = Record<string, unknown>;

/** What the next summary needs from this one (counters at this moment). */
export interface StatsCounters {
  at: number;
  bytesIn: number;
  bytesOut: number;
  packetsLost: number;
  packetsReceived: number;
}

export interface StatsSample {
  summary: CallQualityStats;
  counters: StatsCounters;
}

/** The part of RTCStatsReport this reads (a Map of stats objects). */
export interface StatsReportLike {
  forEach(callback: (value: Stat) => void): void;
  get(id: string): Stat | undefined;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

const CANDIDATE_TYPES = new Set<string>(["host", "srflx", "prflx", "relay"]);

function candidateType(value: unknown): CandidateType | null {
  return typeof value === "string" && CANDIDATE_TYPES.has(value) ? (value as CandidateType) : null;
}

function round(value: number | null, digits = 0): number | null {
  if (value === null) return null;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** The candidate pair carrying media: the transport's selected pair, else a nominated succeeded one. */
function selectedPair(report: StatsReportLike): Stat | null {
  let pairId: string | null = null;
  let fallback: Stat | null = null;
  report.forEach((stat) => {
    if (stat.type === "transport" && typeof stat.selectedCandidatePairId === "string") pairId ??= stat.selectedCandidatePairId;
    if (stat.type === "candidate-pair") {
      if (stat.selected === true) fallback = stat;
      else if (!fallback && stat.nominated === true && stat.state === "succeeded") fallback = stat;
    }
  });
  return (pairId !== null ? report.get(pairId) : undefined) ?? fallback;
}

export function summarizeStats(
  report: StatsReportLike,
  at: number,
  previous: StatsCounters | null,
  audioOnly: boolean,
): StatsSample {
  let framesDecoded = 0;
  let fps: number | null = null;
  let width: number | null = null;
  let height: number | null = null;
  let jitter: number | null = null;
  let bytesIn = 0;
  let bytesOut = 0;
  let lost = 0;
  let received = 0;
  let remoteRtt: number | null = null;

  report.forEach((stat) => {
    if (stat.type === "inbound-rtp") {
      bytesIn += num(stat.bytesReceived) ?? 0;
      lost += Math.max(0, num(stat.packetsLost) ?? 0);
      received += num(stat.packetsReceived) ?? 0;
      const statJitter = num(stat.jitter);
      if (statJitter !== null) jitter = Math.max(jitter ?? 0, statJitter);
      if (stat.kind === "video") {
        framesDecoded += num(stat.framesDecoded) ?? 0;
        fps = num(stat.framesPerSecond) ?? fps;
        width = num(stat.frameWidth) ?? width;
        height = num(stat.frameHeight) ?? height;
      }
    } else if (stat.type === "outbound-rtp") {
      bytesOut += num(stat.bytesSent) ?? 0;
    } else if (stat.type === "remote-inbound-rtp") {
      remoteRtt = num(stat.roundTripTime) ?? remoteRtt;
    }
  });

  const pair = selectedPair(report);
  const local = pair ? report.get(String(pair.localCandidateId)) : undefined;
  const remote = pair ? report.get(String(pair.remoteCandidateId)) : undefined;
  const localType = candidateType(local?.candidateType);
  const remoteType = candidateType(remote?.candidateType);
  const rttSeconds = num(pair?.currentRoundTripTime) ?? remoteRtt;

  const seconds = previous ? (at - previous.at) / 1000 : 0;
  const rate = (now: number, before: number) =>
    previous && seconds > 0 ? round(Math.max(0, now - before) * 8 / 1000 / seconds, 1) : null;
  const lostDelta = previous ? lost - previous.packetsLost : lost;
  const receivedDelta = previous ? received - previous.packetsReceived : received;
  const expected = Math.max(0, lostDelta) + Math.max(0, receivedDelta);

  const summary: CallQualityStats = {
    rtt_ms: rttSeconds === null ? null : round(rttSeconds * 1000, 1),
    jitter_ms: jitter === null ? null : round((jitter as number) * 1000, 1),
    packet_loss_pct: expected > 0 ? round((Math.max(0, lostDelta) / expected) * 100, 2) : null,
    bitrate_in_kbps: rate(bytesIn, previous?.bytesIn ?? 0),
    bitrate_out_kbps: rate(bytesOut, previous?.bytesOut ?? 0),
    frames_decoded: framesDecoded,
    frames_per_second: fps,
    frame_width: width,
    frame_height: height,
    local_candidate_type: localType,
    remote_candidate_type: remoteType,
    relay: localType === "relay" || remoteType === "relay",
    audio_only: audioOnly,
  };
  return { summary, counters: { at, bytesIn, bytesOut, packetsLost: lost, packetsReceived: received } };
}

/** "relay", "srflx", "host" or "prflx" for people: how the media travels. */
export function describeCandidateType(type: string | null): string {
  switch (type) {
    case "host":
      return "direct (same network)";
    case "srflx":
    case "prflx":
      return "direct (through the internet)";
    case "relay":
      return "relayed (TURN server)";
    default:
      return "not connected";
  }
}
