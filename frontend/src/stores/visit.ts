import { defineStore } from "pinia";
import { ref, shallowRef } from "vue";

import { telehealth } from "../api/endpoints";
import type { IceConfig, VisitDetail, VisitStatus } from "../api/types";
import { mediaEnv } from "../telehealth/env";
import {
  VisitSocket,
  type AnyRole,
  type MediaMode,
  type RosterEntry,
  type VisitSocketStatus,
} from "../telehealth/visitSocket";

/** How long the socket and camera stay open after the last page let go, so the next page can take them over. */
export const VISIT_LINGER_MS = 3000;
/** How long a visit detail handed over by the page that admitted the patient is taken as current. */
export const HANDED_DETAIL_MS = 10_000;
/** A prefetched ICE configuration is handed to a call only with at least this much of its lifetime left. */
export const ICE_FRESH_MARGIN_MS = 120_000;

/** ICE servers fetched ahead of a call (clinicians may fetch them without a visit), with when they arrived. */
export interface PrefetchedIce {
  config: IceConfig;
  fetchedAt: number;
}

/** Until when (ms since the epoch) a fetched configuration's TURN credentials are valid. */
export function iceValidUntil(ice: PrefetchedIce): number {
  const expires = Date.parse(ice.config.expiresAt);
  const byTtl = ice.fetchedAt + ice.config.ttlSeconds * 1000;
  return Number.isNaN(expires) ? byTtl : Math.min(expires, byTtl);
}

/**
 * The tab's presence in one visit: its signaling socket and the camera/microphone stream, shared by the waiting
 * room and the visit page so that moving from one to the other neither drops the patient's presence (the server's
 * grace period starts at a disconnect) nor restarts the camera. Pages `acquire` on mount and `release` on unmount;
 * everything closes shortly after the last release.
 */
export const useVisitStore = defineStore("visit", () => {
  const visitId = ref<string | null>(null);
  const socketStatus = ref<VisitSocketStatus>("idle");
  /** From the socket: welcome, visit-state, or 4410 (finished). */
  const visitStatus = ref<VisitStatus | null>(null);
  const peers = ref<Record<string, AnyRole>>({});
  /** The visit's media mode and roster, from the socket (multi-party visits). */
  const mode = ref<MediaMode>("direct");
  const roster = ref<RosterEntry[]>([]);
  /** The close code that ended the socket for good (4401 not signed in, 4403 not a participant, 4410 ended). */
  const finalCode = ref<number | null>(null);
  const localStream = shallowRef<MediaStream | null>(null);

  let socket: VisitSocket | null = null;
  let holders = 0;
  let linger: ReturnType<typeof setTimeout> | null = null;
  let unlisten: (() => void)[] = [];
  /** The admit's answer, for the visit page to start the call without fetching the visit first. */
  let handed: { detail: VisitDetail; at: number } | null = null;
  let ice: PrefetchedIce | null = null;
  let iceInFlight: Promise<PrefetchedIce | null> | null = null;

  function sync(): void {
    if (!socket) return;
    socketStatus.value = socket.status;
    visitStatus.value = socket.visitStatus;
    peers.value = Object.fromEntries(socket.peers);
    mode.value = socket.mode;
    roster.value = socket.roster;
    finalCode.value = socket.finalCode;
  }

  function close(): void {
    for (const stop of unlisten) stop();
    unlisten = [];
    socket?.stop();
    socket = null;
    visitId.value = null;
    socketStatus.value = "idle";
    visitStatus.value = null;
    peers.value = {};
    mode.value = "direct";
    roster.value = [];
    finalCode.value = null;
    setLocalStream(null);
  }

  /** The visit's socket, opened if needed; call `release` when the page goes. */
  function acquire(id: string): VisitSocket {
    if (linger) {
      clearTimeout(linger);
      linger = null;
    }
    if (socket && visitId.value !== id) close();
    holders += 1;
    if (!socket) {
      const env = mediaEnv();
      socket = new VisitSocket({ url: env.visitSocketUrl(id), createSocket: (url) => env.createSocket(url) });
      visitId.value = id;
      unlisten = [socket.subscribe(sync), socket.onStatus(sync)];
      socket.start();
    }
    sync();
    return socket;
  }

  function release(): void {
    holders = Math.max(0, holders - 1);
    if (holders > 0 || linger) return;
    linger = setTimeout(() => {
      linger = null;
      if (holders === 0) close();
    }, VISIT_LINGER_MS);
  }

  /** Closes at once (the visit ended, or the patient left the queue). */
  function leave(): void {
    if (linger) clearTimeout(linger);
    linger = null;
    holders = 0;
    close();
  }

  /** Keeps the camera/microphone stream for the next page of this visit (stops the one it replaces). */
  function setLocalStream(stream: MediaStream | null): void {
    const previous = localStream.value;
    if (previous && previous !== stream) for (const track of previous.getTracks()) track.stop();
    localStream.value = stream;
  }

  /** The page that admitted the patient leaves the visit's detail (as the admit returned it) for the visit page. */
  function handOver(detail: VisitDetail): void {
    handed = { detail, at: Date.now() };
  }

  /** The handed-over detail of this visit, once (null if none, another visit's, or older than `HANDED_DETAIL_MS`). */
  function takeHandedDetail(id: string): VisitDetail | null {
    const taken = handed;
    handed = null;
    if (!taken || taken.detail.id !== id || Date.now() - taken.at > HANDED_DETAIL_MS) return null;
    return taken.detail;
  }

  function iceFresh(candidate: PrefetchedIce | null): candidate is PrefetchedIce {
    return candidate !== null && iceValidUntil(candidate) - Date.now() > ICE_FRESH_MARGIN_MS;
  }

  /**
   * Clinicians only (the API refuses others without a visit): fetch ICE servers ahead of the next call, unless a
   * fresh configuration is already kept or on its way. Failures are quiet; the call fetches its own then.
   */
  function prefetchIce(): Promise<PrefetchedIce | null> {
    if (iceFresh(ice)) return Promise.resolve(ice);
    if (iceInFlight) return iceInFlight;
    const pending = telehealth
      .iceServers(null)
      .then((config) => {
        ice = { config, fetchedAt: Date.now() };
        return ice;
      })
      .catch(() => null)
      .finally(() => {
        if (iceInFlight === pending) iceInFlight = null;
      });
    iceInFlight = pending;
    return pending;
  }

  /**
   * The prefetched configuration for a call if it is fresh, or the prefetch on its way (resolving to null if it
   * failed or came back stale); null when there is none: the call fetches its own.
   */
  function prefetchedIce(): Promise<PrefetchedIce | null> | null {
    if (iceFresh(ice)) return Promise.resolve(ice);
    const pending = iceInFlight;
    if (!pending) return null;
    return pending.then((got) => (iceFresh(got) ? got : null));
  }

  function $reset(): void {
    leave();
    handed = null;
    ice = null;
    iceInFlight = null;
  }

  return {
    visitId,
    socketStatus,
    visitStatus,
    peers,
    mode,
    roster,
    finalCode,
    localStream,
    acquire,
    release,
    leave,
    setLocalStream,
    handOver,
    takeHandedDetail,
    prefetchIce,
    prefetchedIce,
    $reset,
  };
});
