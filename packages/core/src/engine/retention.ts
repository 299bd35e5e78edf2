// Which regular checkpoints a run keeps: the newest `maxKeepCkpts` steps, as the
// reference's `keep_ckpt_ids` deque. One module decides it, for a save and for a
// resume that finds more than the limit.
import type { RunLayout } from '../run/layout.js';
import type { Run } from '../run/run.js';
import type { Logger } from './runner.js';
import type { RuntimeInfo } from './runtime-info.js';

/** (ours) Runtime-info key: names the save that carries it deletes after committing; re-issued on resume. */
export const PENDING_REMOVALS_KEY = 'pending_removals';

/** What the run keeps between saves: the steps of its regular checkpoints, and the last one saved. */
export interface RetentionState {
  keepCkptIds: number[];
  /** The name of the last regular checkpoint of this run (the reference's `last_ckpt`). */
  lastCkpt: string | undefined;
}

/**
 * The keep list after saving `step`, and the steps it drops. A step already at the end
 * (a re-save of the same step, as after a new best) is not added twice. `maxKeep <= 0` keeps all.
 */
export function rotate(keep: readonly number[], step: number, maxKeep: number): { keep: number[]; dropped: number[] } {
  if (maxKeep <= 0) return { keep: [...keep], dropped: [] };
  const ids = [...keep];
  const dropped: number[] = [];
  if (!(ids.length > 0 && ids[ids.length - 1] === step)) {
    if (ids.length === maxKeep) dropped.push(ids.shift() as number);
    ids.push(step);
  }
  return { keep: ids, dropped };
}

/** A keep list read back on resume, cut to `maxKeep` (oldest first out). */
export function trimKept(keep: readonly number[], maxKeep: number): { keep: number[]; dropped: number[] } {
  const ids = [...keep];
  const dropped: number[] = [];
  while (maxKeep > 0 && ids.length > maxKeep) dropped.push(ids.shift() as number);
  return { keep: ids, dropped };
}

/** The steps of a stored `keep_ckpt_ids`, or undefined when it is not a list of steps. */
export function parseKeptSteps(value: unknown): number[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value.every((id) => Number.isSafeInteger(id) && id >= 0) ? [...value] : undefined;
}

/** Deletes a checkpoint the run no longer keeps, saying what it was; a folder that only looks like one is kept. */
export async function removeLogged(run: Run, logger: Logger, name: string, what: string): Promise<void> {
  const path = run.layout.pathOf(name);
  const result = await run.remove(name);
  if (result === 'removed') logger.info(`The ${what} ${path} is removed`);
  else if (result === 'not-a-checkpoint') {
    logger.warn(`${path} is named like a checkpoint of this run but is a folder holding other files: it is kept.`);
  }
}

/** (ours) Deletes the tensor objects no kept checkpoint names, saying how many; a manifest that does not read stops it (said). */
export async function collectLogged(run: Run, logger: Logger): Promise<void> {
  const report = await run.collectGarbage();
  if (report.skipped) logger.warn(`Unreferenced tensor objects are kept: ${report.skipped}.`);
  else if (report.removed > 0) {
    logger.info(`${report.removed} tensor objects (${report.removedBytes} bytes) no kept checkpoint names are removed`);
  }
}

/**
 * Records a regular save of `step` in the run's state and runtime info, before it is
 * written: the keep list, `last_ckpt`, and (ours) the names this save deletes once it
 * has committed, carried inside the checkpoint so a resume finishes them after a crash.
 */
export function recordRegularSave(
  state: RetentionState,
  info: RuntimeInfo,
  layout: RunLayout,
  step: number,
  options: { maxKeepCkpts: number; extraRemovals: readonly string[] },
): { name: string; removals: string[] } {
  const { keep, dropped } = rotate(state.keepCkptIds, step, options.maxKeepCkpts);
  const removals = [...options.extraRemovals, ...dropped.map((s) => layout.regularName(s))];
  if (options.maxKeepCkpts > 0) info.set('keep_ckpt_ids', keep);
  const name = layout.regularName(step);
  info.set('last_ckpt', name);
  info.set(PENDING_REMOVALS_KEY, removals);
  state.keepCkptIds = keep;
  state.lastCkpt = name;
  return { name, removals };
}
