/**
 * The device and network check before a video visit: camera and microphone (getUserMedia, with a live level meter),
 * speaker (a test tone the patient confirms hearing), and whether the TURN relay is reachable (a peer connection
 * limited to relay candidates must gather one within `turnTimeoutMs`). Each failure comes with help in plain words.
 *
 * The result is what the API records (POST visits/{id}/device-check/): camera/microphone/speaker/turn, each
 * "pass" | "fail" | "skipped". The patient is ready when camera and microphone pass; a TURN failure is a warning
 * (most home networks connect directly).
 */
import { computed, getCurrentScope, onScopeDispose, ref, shallowRef, type Ref, type ShallowRef } from "vue";

import { telehealth } from "../api/endpoints";
import type { DeviceCheckOutcome, DeviceCheckResult, IceConfig, IceServer } from "../api/types";
import { describeMediaError, mediaEnv, type MediaEnv } from "../telehealth/env";

export type CheckState = "idle" | "checking" | DeviceCheckOutcome;
export type SpeakerState = "idle" | "playing" | "asking" | DeviceCheckOutcome;

export interface DeviceCheckOptions {
  /** The visit being checked for (its participants get TURN credentials); a getter when it is known only later. */
  visitId: string | null | (() => string | null);
  env?: MediaEnv;
  iceConfig?: (visitId: string | null) => Promise<IceConfig>;
  turnTimeoutMs?: number;
  toneMs?: number;
  meterIntervalMs?: number;
}

/** Above this RMS level (0..1) the microphone is picking up sound. */
export const SOUND_LEVEL = 0.02;

function hasTurn(servers: IceServer[]): boolean {
  return servers.some((server) =>
    (Array.isArray(server.urls) ? server.urls : [server.urls]).some((url) => /^turns?:/i.test(url)),
  );
}

function isRelay(candidate: RTCIceCandidate): boolean {
  return candidate.type === "relay" || / typ relay( |$)/.test(candidate.candidate);
}

export function useDeviceCheck(options: DeviceCheckOptions) {
  const env = options.env ?? mediaEnv();
  const turnTimeoutMs = options.turnTimeoutMs ?? 5000;
  const toneMs = options.toneMs ?? 1000;
  const meterIntervalMs = options.meterIntervalMs ?? 100;
  const fetchIce = options.iceConfig ?? ((id: string | null) => telehealth.iceServers(id));

  const stream: ShallowRef<MediaStream | null> = shallowRef(null);
  const camera = ref<CheckState>("idle");
  const microphone = ref<CheckState>("idle");
  const speaker = ref<SpeakerState>("idle");
  const turn = ref<CheckState>("idle");
  const cameraHelp = ref("");
  const microphoneHelp = ref("");
  const speakerHelp = ref("");
  const turnHelp = ref("");
  /** The microphone's level now, 0..1. */
  const level = ref(0);
  /** The microphone picked up some sound since the check started. */
  const heardSound = ref(false);
  const running = ref(false);

  let audio: AudioContext | null = null;
  let meterTimer: ReturnType<typeof setInterval> | null = null;
  let probe: RTCPeerConnection | null = null;

  const ready = computed(() => camera.value === "pass" && microphone.value === "pass");
  const done = computed(
    () => !running.value && camera.value !== "idle" && microphone.value !== "idle" && turn.value !== "idle",
  );
  const result: Ref<DeviceCheckResult> = computed(() => ({
    camera: outcome(camera.value),
    microphone: outcome(microphone.value),
    speaker: outcome(speaker.value),
    turn: outcome(turn.value),
  }));

  function outcome(state: CheckState | SpeakerState): DeviceCheckOutcome {
    return state === "pass" || state === "fail" ? state : "skipped";
  }

  function context(): AudioContext | null {
    if (!audio) {
      try {
        audio = env.createAudioContext();
      } catch {
        audio = null;
      }
    }
    if (audio && audio.state === "suspended") void audio.resume().catch(() => undefined);
    return audio;
  }

  function stopMeter(): void {
    if (meterTimer) clearInterval(meterTimer);
    meterTimer = null;
    level.value = 0;
  }

  function startMeter(media: MediaStream): void {
    stopMeter();
    const ctx = context();
    if (!ctx || media.getAudioTracks().length === 0) return;
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    ctx.createMediaStreamSource(media).connect(analyser);
    const samples = new Uint8Array(analyser.fftSize);
    meterTimer = setInterval(() => {
      analyser.getByteTimeDomainData(samples);
      let sum = 0;
      for (const value of samples) {
        const centred = (value - 128) / 128;
        sum += centred * centred;
      }
      const rms = Math.sqrt(sum / samples.length);
      level.value = Math.min(1, rms * 4);
      if (rms > SOUND_LEVEL) heardSound.value = true;
    }, meterIntervalMs);
  }

  function releaseStream(): void {
    for (const track of stream.value?.getTracks() ?? []) track.stop();
    stream.value = null;
  }

  /** Camera and microphone together; when that fails, each alone, to say which one is the problem. */
  async function checkCameraAndMicrophone(): Promise<void> {
    camera.value = "checking";
    microphone.value = "checking";
    cameraHelp.value = "";
    microphoneHelp.value = "";
    releaseStream();
    try {
      stream.value = await env.getUserMedia({ audio: true, video: true });
    } catch {
      const tracks: MediaStreamTrack[] = [];
      try {
        tracks.push(...(await env.getUserMedia({ video: true })).getVideoTracks());
      } catch (error) {
        cameraHelp.value = describeMediaError(error, "camera");
      }
      try {
        tracks.push(...(await env.getUserMedia({ audio: true })).getAudioTracks());
      } catch (error) {
        microphoneHelp.value = describeMediaError(error, "microphone");
      }
      stream.value = tracks.length ? env.createMediaStream(tracks) : null;
    }
    const media = stream.value;
    const live = (tracks: MediaStreamTrack[]) => tracks.some((t) => t.readyState === "live");
    camera.value = media && live(media.getVideoTracks()) ? "pass" : "fail";
    microphone.value = media && live(media.getAudioTracks()) ? "pass" : "fail";
    if (camera.value === "fail" && !cameraHelp.value) cameraHelp.value = describeMediaError(null, "camera");
    if (microphone.value === "fail" && !microphoneHelp.value) microphoneHelp.value = describeMediaError(null, "microphone");
    if (media) startMeter(media);
  }

  /** Can this browser reach the TURN relay? Gathers relay candidates only; one within the time limit is a pass. */
  async function checkTurn(): Promise<void> {
    turn.value = "checking";
    turnHelp.value = "";
    let config: IceConfig;
    try {
      config = await fetchIce(typeof options.visitId === "function" ? options.visitId() : options.visitId);
    } catch {
      turn.value = "fail";
      turnHelp.value = "The connection test could not start. Check your internet connection.";
      return;
    }
    if (!hasTurn(config.iceServers)) {
      turn.value = "skipped";
      turnHelp.value = "This clinic has no relay server configured; your visit will connect directly.";
      return;
    }
    const passed = await new Promise<boolean>((resolve) => {
      let settled = false;
      const finish = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false), turnTimeoutMs);
      try {
        const pc = env.createPeerConnection({ iceServers: config.iceServers, iceTransportPolicy: "relay" });
        probe = pc;
        pc.onicecandidate = (event) => {
          if (event.candidate && isRelay(event.candidate)) finish(true);
        };
        pc.onicegatheringstatechange = () => {
          if (pc.iceGatheringState === "complete") finish(false);
        };
        pc.createDataChannel("probe");
        void pc
          .createOffer()
          .then((offer) => pc.setLocalDescription(offer))
          .catch(() => finish(false));
      } catch {
        finish(false);
      }
    });
    probe?.close();
    probe = null;
    turn.value = passed ? "pass" : "fail";
    if (!passed) {
      turnHelp.value =
        "Our relay server could not be reached. Your visit may still work; if video does not connect, try another " +
        "network (for example your phone's data instead of a work or hotel Wi-Fi).";
    }
  }

  /** Runs the camera, microphone and relay checks (the speaker test is the patient's to start). */
  async function run(): Promise<void> {
    if (running.value) return;
    running.value = true;
    heardSound.value = false;
    context();
    try {
      await Promise.all([checkCameraAndMicrophone(), checkTurn()]);
    } finally {
      running.value = false;
    }
  }

  /** Plays a short tone; the patient then says whether they heard it (`confirmSpeaker`). */
  function playTone(): void {
    speakerHelp.value = "";
    const ctx = context();
    if (!ctx) {
      speaker.value = "skipped";
      speakerHelp.value = "This browser cannot play a test sound; check your volume before the visit.";
      return;
    }
    const oscillator = ctx.createOscillator();
    const gain = ctx.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = 440;
    gain.gain.value = 0.2;
    oscillator.connect(gain).connect(ctx.destination);
    speaker.value = "playing";
    oscillator.onended = () => {
      if (speaker.value === "playing") speaker.value = "asking";
    };
    oscillator.start();
    oscillator.stop(ctx.currentTime + toneMs / 1000);
  }

  function confirmSpeaker(heard: boolean): void {
    speaker.value = heard ? "pass" : "fail";
    speakerHelp.value = heard
      ? ""
      : "Turn your volume up, unmute this tab, or connect headphones, then play the sound again.";
  }

  /** Hands the camera/microphone stream over (to the waiting room or the call); the check no longer owns it. */
  function takeStream(): MediaStream | null {
    const media = stream.value;
    stream.value = null;
    stopMeter();
    return media;
  }

  function stop(): void {
    stopMeter();
    releaseStream();
    probe?.close();
    probe = null;
    if (audio) void audio.close().catch(() => undefined);
    audio = null;
  }

  if (getCurrentScope()) onScopeDispose(stop);

  return {
    stream,
    camera,
    microphone,
    speaker,
    turn,
    cameraHelp,
    microphoneHelp,
    speakerHelp,
    turnHelp,
    level,
    heardSound,
    running,
    ready,
    done,
    result,
    run,
    playTone,
    confirmSpeaker,
    takeStream,
    stop,
  };
}

export type DeviceCheck = ReturnType<typeof useDeviceCheck>;
