/**
 * Who is speaking now, from the inbound audio levels of a multi-party visit (one level per remote participant,
 * 0..1, sampled from getStats). Hysteresis keeps the highlight from flickering between syllables and on noise: a
 * participant becomes the speaker above `on`, stays while above `off` or for `holdMs` after falling below it, and
 * only a clearly louder voice (above `on` and `takeOver` times the current speaker's level) takes over early.
 */

export interface SpeakerOptions {
  on: number;
  off: number;
  holdMs: number;
  takeOver: number;
}

export const SPEAKER_DEFAULTS: SpeakerOptions = { on: 0.05, off: 0.02, holdMs: 1500, takeOver: 2 };

export interface SpeakerState {
  current: string | null;
  /** When the current speaker fell below `off` (null while still speaking). */
  quietSince: number | null;
}

export const NO_SPEAKER: SpeakerState = { current: null, quietSince: null };

export function nextSpeaker(
  levels: Record<string, number>,
  state: SpeakerState,
  now: number,
  options: SpeakerOptions = SPEAKER_DEFAULTS,
): SpeakerState {
  let loudest: string | null = null;
  let loudestLevel = 0;
  for (const [id, level] of Object.entries(levels)) {
    if (level > loudestLevel) {
      loudest = id;
      loudestLevel = level;
    }
  }
  const challenger = loudest !== null && loudestLevel >= options.on ? loudest : null;
  const current = state.current !== null && state.current in levels ? state.current : null;
  if (current === null) return { current: challenger, quietSince: null };

  const currentLevel = levels[current] ?? 0;
  if (challenger !== null && challenger !== current && loudestLevel >= currentLevel * options.takeOver) {
    return { current: challenger, quietSince: null };
  }
  if (currentLevel >= options.off) return { current, quietSince: null };
  const quietSince = state.quietSince ?? now;
  if (now - quietSince < options.holdMs) return { current, quietSince };
  return { current: challenger, quietSince: null };
}

/**
 * The level (0..1) a participant's audio had over the last sampling interval: the RMS from the growth of
 * `totalAudioEnergy` over `totalSamplesDuration` when the browser reports them (robust to short sounds falling
 * between two samples), else the instantaneous `audioLevel`; the larger of the two.
 */
export function intervalLevel(
  now: { audioLevel?: number; totalAudioEnergy?: number; totalSamplesDuration?: number },
  before: { totalAudioEnergy?: number; totalSamplesDuration?: number } | null,
): number {
  const instant = typeof now.audioLevel === "number" ? now.audioLevel : 0;
  if (
    !before ||
    typeof now.totalAudioEnergy !== "number" ||
    typeof now.totalSamplesDuration !== "number" ||
    typeof before.totalAudioEnergy !== "number" ||
    typeof before.totalSamplesDuration !== "number"
  ) {
    return instant;
  }
  const duration = now.totalSamplesDuration - before.totalSamplesDuration;
  const energy = now.totalAudioEnergy - before.totalAudioEnergy;
  if (duration <= 0 || energy < 0) return instant;
  return Math.max(instant, Math.sqrt(energy / duration));
}
