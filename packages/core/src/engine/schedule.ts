// When a regular checkpoint is due: every `interval` steps counted from `saveBegin`,
// and at the last step with `saveLast` (the reference's `every_n_epochs` /
// `every_n_train_iters` and `is_last_train_epoch` / `is_last_train_iter`). (ours) Also:
// when `saveIntervalMs` of wall-clock time has passed since the last save (that time
// travels in runtime info, so it counts across resumes), at `saveAtSteps`, and when
// `shouldSave` says so.
import type { Runner } from './runner.js';

export interface SaveSchedule {
  interval: number;
  saveBegin: number;
  saveLast: boolean;
  saveIntervalMs?: number | undefined;
  saveAtSteps?: readonly number[];
  shouldSave?: ((step: number, runner: Runner) => boolean) | undefined;
}

/** (ours) Runtime-info key: when the run last saved a regular checkpoint (ms since the epoch). */
export const LAST_SAVE_AT_KEY = 'last_save_at';
/** (ours) Runtime-info key: when the run started (ms since the epoch), kept across resumes. */
export const RUN_STARTED_AT_KEY = 'run_started_at';

/** What the clock-driven triggers need: now, and when the last save was. */
export interface ScheduleClock {
  nowMs: number;
  lastSaveAtMs: number | undefined;
}

/** Which trigger makes a save due at `step`, or undefined when none does. */
export function saveTrigger(
  schedule: SaveSchedule,
  step: number,
  lastStep: number,
  clock?: ScheduleClock,
  runner?: Runner,
): string | undefined {
  const { interval, saveBegin, saveLast } = schedule;
  if (interval > 0 && step >= saveBegin && (step - saveBegin) % interval === 0) return 'interval';
  if (saveLast && step === lastStep) return 'last';
  if (schedule.saveAtSteps?.includes(step)) return 'saveAtSteps';
  if (schedule.saveIntervalMs !== undefined && clock) {
    const since = clock.lastSaveAtMs;
    if (since !== undefined && clock.nowMs - since >= schedule.saveIntervalMs) return 'saveIntervalMs';
  }
  if (schedule.shouldSave && runner && schedule.shouldSave(step, runner) === true) return 'shouldSave';
  return undefined;
}

export function isSaveDue(schedule: SaveSchedule, step: number, lastStep: number): boolean {
  return saveTrigger(schedule, step, lastStep) !== undefined;
}

/** A time read back from runtime info (hostile input): a finite number of ms, or undefined. */
export function parseTime(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}
