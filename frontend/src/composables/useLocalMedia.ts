/**
 * This side's camera, microphone and screen in a call: opening them, mute, camera off, switching camera or
 * microphone, screen share and audio-only, with the state the controls show. Shared by the direct call
 * (useVisitCall) and the relay call (useRelayCall), which differ only in where a track goes on the wire and how
 * the others are told.
 *
 * A change of track never renegotiates: the call's `replaceTrack` puts the track this side should send now (see
 * `outgoing`) on its sender(s) of that kind, and every change the others should know about is announced with
 * `announce`.
 */
import { ref, shallowRef, type Ref, type ShallowRef } from "vue";

import { describeMediaError, type MediaEnv } from "../telehealth/env";

export type MediaKind = "audio" | "video";

export interface DeviceOption {
  deviceId: string;
  label: string;
}

/** What this side tells the others it sends (the `media` frame's body). */
export interface LocalMediaState {
  audio: boolean;
  video: boolean;
  screen: boolean;
}

export interface LocalMediaOptions {
  env: MediaEnv;
  /** A camera/microphone stream already open; otherwise `openMedia` opens one. */
  localStream?: MediaStream | null;
  /**
   * Puts `track` (null: nothing) on the call's sender(s) of `kind`. Does nothing while there is no connection: the
   * next one starts with `outgoing(kind)`.
   */
  replaceTrack: (kind: MediaKind, track: MediaStreamTrack | null) => Promise<void>;
  /** Tells the others what this side sends now. */
  announce: (state: LocalMediaState) => void;
  /** The camera constraints when the call opens its own stream. */
  video: MediaTrackConstraints;
  /** Who will not hear or see this side when no microphone opens ("The other side", "The others"). */
  audience: string;
  /** Take `muted`/`cameraOff` from a passed-in stream's enabled tracks (the stream was already in use). */
  adoptTrackState?: boolean;
  /**
   * While true, the microphone is off the wire and the user cannot unmute (the practitioner muted this
   * participant in a relay call). Whoever sets it calls `setMuted(true)` and `putOnAir("audio")`.
   */
  micLocked?: Readonly<Ref<boolean>>;
}

export function useLocalMedia(options: LocalMediaOptions) {
  const env = options.env;
  const micLocked = options.micLocked ?? ref(false);

  const localStream: ShallowRef<MediaStream | null> = shallowRef(options.localStream ?? null);
  const muted = ref(false);
  const cameraOff = ref(false);
  const sharing = ref(false);
  const audioOnly = ref(false);
  /** A sentence for people about the camera/microphone; empty when all is well. */
  const mediaError = ref("");
  const cameras = ref<DeviceOption[]>([]);
  const microphones = ref<DeviceOption[]>([]);
  const cameraId = ref("");
  const microphoneId = ref("");
  let screenTrack: MediaStreamTrack | null = null;

  function track(kind: MediaKind): MediaStreamTrack | null {
    const stream = localStream.value;
    if (!stream) return null;
    return (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks())[0] ?? null;
  }

  /**
   * The track a sender of `kind` should carry now (null: nothing on the wire): no microphone while it is locked;
   * the screen while sharing, else the camera, none in audio-only.
   */
  function outgoing(kind: MediaKind): MediaStreamTrack | null {
    if (kind === "audio") return micLocked.value ? null : track("audio");
    if (sharing.value && screenTrack) return screenTrack;
    if (audioOnly.value) return null;
    return track("video");
  }

  async function openMedia(): Promise<void> {
    if (localStream.value) {
      audioOnly.value = localStream.value.getVideoTracks().length === 0;
      if (options.adoptTrackState) {
        const mic = track("audio");
        if (mic) muted.value = !mic.enabled;
        const camera = track("video");
        if (camera) cameraOff.value = !camera.enabled;
      }
      return;
    }
    try {
      localStream.value = await env.getUserMedia({ audio: true, video: options.video });
      return;
    } catch (error) {
      mediaError.value = describeMediaError(error, "camera");
    }
    try {
      localStream.value = await env.getUserMedia({ audio: true });
      audioOnly.value = true;
      mediaError.value = `${mediaError.value} The visit continues with sound only.`;
    } catch (error) {
      mediaError.value = `${describeMediaError(error)} ${options.audience} will not hear or see you.`;
      audioOnly.value = true;
    }
  }

  async function refreshDevices(): Promise<void> {
    let devices: MediaDeviceInfo[];
    try {
      devices = await env.enumerateDevices();
    } catch {
      return;
    }
    const option = (d: MediaDeviceInfo, i: number, word: string) => ({
      deviceId: d.deviceId,
      label: d.label || `${word} ${i + 1}`,
    });
    cameras.value = devices.filter((d) => d.kind === "videoinput").map((d, i) => option(d, i, "Camera"));
    microphones.value = devices.filter((d) => d.kind === "audioinput").map((d, i) => option(d, i, "Microphone"));
    cameraId.value = track("video")?.getSettings().deviceId ?? cameraId.value;
    microphoneId.value = track("audio")?.getSettings().deviceId ?? microphoneId.value;
  }

  /** Puts what this side should send of `kind` now on the call's sender(s). */
  async function putOnAir(kind: MediaKind): Promise<void> {
    await options.replaceTrack(kind, outgoing(kind));
  }

  function announceMedia(): void {
    options.announce({
      audio: Boolean(outgoing("audio")) && !muted.value,
      video: Boolean(outgoing("video")) && (sharing.value || !cameraOff.value),
      screen: sharing.value,
    });
  }

  function setMuted(on: boolean): void {
    muted.value = on;
    for (const t of localStream.value?.getAudioTracks() ?? []) t.enabled = !on;
    announceMedia();
  }

  function toggleMute(): void {
    if (micLocked.value && muted.value) return;
    setMuted(!muted.value);
  }

  function toggleCamera(): void {
    cameraOff.value = !cameraOff.value;
    for (const t of localStream.value?.getVideoTracks() ?? []) t.enabled = !cameraOff.value;
    announceMedia();
  }

  /** Puts `fresh` in place of the local track of its kind (stopping the old one) and on the sender. */
  async function swapTrack(kind: MediaKind, fresh: MediaStreamTrack): Promise<void> {
    const old = track(kind);
    const tracks = (localStream.value?.getTracks() ?? []).filter((t) => t !== old);
    fresh.enabled = kind === "audio" ? !muted.value : !cameraOff.value;
    localStream.value = env.createMediaStream([...tracks, fresh]);
    old?.stop();
    await putOnAir(kind);
  }

  async function switchCamera(deviceId: string): Promise<void> {
    try {
      const stream = await env.getUserMedia({ video: { deviceId: { exact: deviceId } } });
      const fresh = stream.getVideoTracks()[0];
      if (!fresh) return;
      audioOnly.value = false;
      await swapTrack("video", fresh);
      cameraId.value = deviceId;
      mediaError.value = "";
      announceMedia();
    } catch (error) {
      mediaError.value = describeMediaError(error, "camera");
    }
  }

  async function switchMicrophone(deviceId: string): Promise<void> {
    try {
      const stream = await env.getUserMedia({ audio: { deviceId: { exact: deviceId } } });
      const fresh = stream.getAudioTracks()[0];
      if (!fresh) return;
      await swapTrack("audio", fresh);
      microphoneId.value = deviceId;
      mediaError.value = "";
    } catch (error) {
      mediaError.value = describeMediaError(error, "microphone");
    }
  }

  async function stopScreenShare(): Promise<void> {
    const shared = screenTrack;
    screenTrack = null;
    sharing.value = false;
    shared?.stop();
    await putOnAir("video");
    announceMedia();
  }

  async function startScreenShare(): Promise<void> {
    if (sharing.value) return;
    let stream: MediaStream;
    try {
      stream = await env.getDisplayMedia({ video: true, audio: false });
    } catch (error) {
      // Cancelling the browser's picker is not an error worth a message.
      if (error instanceof DOMException && error.name === "NotAllowedError") return;
      mediaError.value = "Your screen could not be shared.";
      return;
    }
    const shared = stream.getVideoTracks()[0];
    if (!shared) return;
    screenTrack = shared;
    sharing.value = true;
    // The browser's own "Stop sharing" ends the track: go back to the camera.
    shared.addEventListener("ended", () => {
      if (screenTrack === shared) void stopScreenShare();
    });
    await putOnAir("video");
    announceMedia();
  }

  /** Sound only (a poor connection, or no camera): the camera stops; `false` opens it again. */
  async function setAudioOnly(on: boolean): Promise<void> {
    if (on) {
      audioOnly.value = true;
      const camera = track("video");
      if (camera) {
        localStream.value = env.createMediaStream((localStream.value?.getTracks() ?? []).filter((t) => t !== camera));
        camera.stop();
      }
      await putOnAir("video");
      announceMedia();
      return;
    }
    try {
      const stream = await env.getUserMedia({ video: cameraId.value ? { deviceId: cameraId.value } : true });
      const fresh = stream.getVideoTracks()[0];
      if (!fresh) return;
      audioOnly.value = false;
      await swapTrack("video", fresh);
      mediaError.value = "";
      announceMedia();
    } catch (error) {
      mediaError.value = describeMediaError(error, "camera");
    }
  }

  /** The call is over: the screen share stops (nothing is put on air or announced). */
  function dropScreenShare(): void {
    screenTrack?.stop();
    screenTrack = null;
    sharing.value = false;
  }

  return {
    localStream,
    muted,
    cameraOff,
    sharing,
    audioOnly,
    mediaError,
    cameras,
    microphones,
    cameraId,
    microphoneId,
    track,
    outgoing,
    openMedia,
    refreshDevices,
    putOnAir,
    announceMedia,
    setMuted,
    toggleMute,
    toggleCamera,
    switchCamera,
    switchMicrophone,
    startScreenShare,
    stopScreenShare,
    setAudioOnly,
    dropScreenShare,
  };
}

export type LocalMedia = ReturnType<typeof useLocalMedia>;
