import { defineStore } from "pinia";
import { ref, shallowRef } from "vue";

import type { VisitStatus } from "../api/types";
import { mediaEnv } from "../telehealth/env";
import { VisitSocket, type ParticipantRole, type VisitSocketStatus } from "../telehealth/visitSocket";

/** How long the socket and camera stay open after the last page let go, so the next page can take them over. */
export const VISIT_LINGER_MS = 3000;

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
  const peers = ref<Record<string, ParticipantRole>>({});
  /** The close code that ended the socket for good (4401 not signed in, 4403 not a participant, 4410 ended). */
  const finalCode = ref<number | null>(null);
  const localStream = shallowRef<MediaStream | null>(null);

  let socket: VisitSocket | null = null;
  let holders = 0;
  let linger: ReturnType<typeof setTimeout> | null = null;
  let unlisten: (() => void)[] = [];

  function sync(): void {
    if (!socket) return;
    socketStatus.value = socket.status;
    visitStatus.value = socket.visitStatus;
    peers.value = Object.fromEntries(socket.peers);
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

  function $reset(): void {
    leave();
  }

  return {
    visitId,
    socketStatus,
    visitStatus,
    peers,
    finalCode,
    localStream,
    acquire,
    release,
    leave,
    setLocalStream,
    $reset,
  };
});
