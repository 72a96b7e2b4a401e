/**
 * The browser APIs a video visit uses, behind one injectable seam: pages and composables call these, the unit
 * tests replace them (`setMediaEnv`) with fakes, as `setFetch` does for HTTP. Nothing here logs.
 */
import type { WebSocketLike } from "../realtime/RealtimeClient";

export interface MediaEnv {
  getUserMedia(constraints: MediaStreamConstraints): Promise<MediaStream>;
  getDisplayMedia(constraints: DisplayMediaStreamOptions): Promise<MediaStream>;
  enumerateDevices(): Promise<MediaDeviceInfo[]>;
  /** Calls `listener` when devices come or go; returns the function that stops listening. */
  onDeviceChange(listener: () => void): () => void;
  createPeerConnection(config: RTCConfiguration): RTCPeerConnection;
  createMediaStream(tracks?: MediaStreamTrack[]): MediaStream;
  createSocket(url: string): WebSocketLike;
  /** Null when the browser has no Web Audio (the level meter and test tone are then unavailable). */
  createAudioContext(): AudioContext | null;
  /** The visit socket's URL for a visit, on this origin. */
  visitSocketUrl(visitId: string): string;
  now(): number;
}

function mediaDevices(): MediaDevices {
  const devices = globalThis.navigator?.mediaDevices;
  if (!devices) throw new DOMException("This browser cannot use a camera or microphone here.", "NotSupportedError");
  return devices;
}

const browserEnv: MediaEnv = {
  getUserMedia: (constraints) => mediaDevices().getUserMedia(constraints),
  getDisplayMedia: (constraints) => mediaDevices().getDisplayMedia(constraints),
  enumerateDevices: async () => (globalThis.navigator?.mediaDevices ? mediaDevices().enumerateDevices() : []),
  onDeviceChange(listener) {
    const devices = globalThis.navigator?.mediaDevices;
    if (!devices) return () => undefined;
    devices.addEventListener("devicechange", listener);
    return () => devices.removeEventListener("devicechange", listener);
  },
  createPeerConnection: (config) => new RTCPeerConnection(config),
  createMediaStream: (tracks = []) => new MediaStream(tracks),
  createSocket: (url) => new WebSocket(url),
  createAudioContext() {
    const Ctor = globalThis.AudioContext;
    return Ctor ? new Ctor() : null;
  },
  visitSocketUrl(visitId) {
    const scheme = globalThis.location?.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${globalThis.location?.host ?? "localhost"}/ws/v1/visits/${encodeURIComponent(visitId)}/`;
  },
  now: () => Date.now(),
};

let current: MediaEnv = browserEnv;

export function mediaEnv(): MediaEnv {
  return current;
}

/** For tests: replace some (or all) of the browser APIs; `resetMediaEnv` puts the browser's back. */
export function setMediaEnv(overrides: Partial<MediaEnv>): void {
  current = { ...browserEnv, ...overrides };
}

export function resetMediaEnv(): void {
  current = browserEnv;
}

/** A sentence for people about a getUserMedia / getDisplayMedia failure, with what to do about it. */
export function describeMediaError(error: unknown, device = "camera or microphone"): string {
  const name = error instanceof DOMException || error instanceof Error ? error.name : "";
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
      return `Your browser is not allowed to use your ${device}. Allow access (the camera icon in the address bar) and try again.`;
    case "NotFoundError":
    case "OverconstrainedError":
      return `No ${device} was found. Plug one in, or use another device such as your phone.`;
    case "NotReadableError":
    case "AbortError":
      return `Your ${device} is in use by another application. Close it (for example another video call) and try again.`;
    case "NotSupportedError":
      return "This browser cannot use a camera or microphone here. Use an up-to-date Chrome, Edge, Firefox or Safari.";
    default:
      return `Your ${device} could not be started. Try again, or restart your browser.`;
  }
}
