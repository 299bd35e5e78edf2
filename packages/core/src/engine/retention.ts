// The run's retention state and its bookkeeping: the reference's `keep_ckpt_ids` deque
// (the newest `maxKeepCkpts` steps), and (ours) the checkpoints kept forever. What is
// kept is decided by retention-policy.ts, for a save and for a resume that finds more
// than the limit; this module records it in the state and the runtime info.
import type { RunLayout } from '../run/layout.js';
import type { Run } from '../run/run.js';
import { decideRegular, type ForeverRule, type RetentionPolicy } from './retention-policy.js';
import type { Logger } from './runner.js';
import type { RuntimeInfo } from './runtime-info.js';

/** (ours) Runtime-info key: names the save that carries it deletes after committing; re-issued on resume. */
export const PENDING_REMOVALS_KEY = 'pending_removals';
/** (ours) Runtime-info key: the regular checkpoints kept forever (`{ step, at, rule }`), never rotated away. */
export const KEPT_FOREVER_KEY = 'kept_ckpts';

export interface KeptCheckpoint {
  step: number;
  /** When it was saved (ms since the epoch). */
  at: number;
  rule: ForeverRule;
}

/** What the run keeps between saves: the steps of its regular checkpoints, and the last one saved. */
export interface RetentionState {
  keepCkptIds: number[];
  /** The name of the last regular checkpoint of this run (the reference's `last_ckpt`). */
  lastCkpt: string | undefined;
  /** (ours) Regular checkpoints kept forever: not in `keepCkptIds`, never rotated away. */
  kept: KeptCheckpoint[];
}

/** Whether the policy keeps anything forever (only then is `kept_ckpts` written). */
export function keepsForever(policy: RetentionPolicy): boolean {
  return policy.keepPeriod !== undefined || policy.keepTimeIntervalMs !== undefined;
}

/**
 * The keep list after saving `step` at `savedAtMs`, and the steps it drops. A step already
 * kept (a re-save of the same step, as after a new best) is not added twice.
 */
export function rotate(
  state: Pick<RetentionState, 'keepCkptIds' | 'kept'>,
  step: number,
  policy: RetentionPolicy,
  savedAtMs: number,
  runStartMs: number | undefined,
): { keep: number[]; kept: KeptCheckpoint[]; dropped: number[] } {
  const forever = new Map(state.kept.map((k) => [k.step, k]));
  const known = new Set([...state.keepCkptIds, ...forever.keys()]);
  const candidates = [
    ...state.kept.map((k) => ({ step: k.step, savedAtMs: k.at, keptForever: k.rule })),
    ...state.keepCkptIds.filter((s) => !forever.has(s)).map((s) => ({ step: s })),
    ...(known.has(step) ? [] : [{ step, savedAtMs }]),
  ];
  const verdicts = decideRegular(candidates, policy, runStartMs);
  const kept: KeptCheckpoint[] = [];
  for (const v of verdicts) {
    if (!v.forever) continue;
    kept.push(forever.get(v.step) ?? { step: v.step, at: savedAtMs, rule: v.forever });
  }
  return {
    // Without a limit nothing rotates away: the reference keeps no list then.
    keep: policy.maxKeepCkpts > 0 ? verdicts.filter((v) => v.keep && !v.forever).map((v) => v.step) : [],
    kept,
    dropped: verdicts.filter((v) => !v.keep).map((v) => v.step),
  };
}

/** A keep list read back on resume, cut to `maxKeep` (oldest first out). */
export function trimKept(keep: readonly number[], policy: RetentionPolicy): { keep: number[]; dropped: number[] } {
  // Forever rules were applied when these were saved: only the newest-N cut applies here.
  const verdicts = decideRegular(
    keep.map((step) => ({ step })),
    { ...policy, keepPeriod: undefined, keepTimeIntervalMs: undefined },
    undefined,
  );
  return { keep: verdicts.filter((v) => v.keep).map((v) => v.step), dropped: verdicts.filter((v) => !v.keep).map((v) => v.step) };
}

/** The `kept_ckpts` read back on resume (hostile input): valid entries only. */
export function parseKeptForever(value: unknown): KeptCheckpoint[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: KeptCheckpoint[] = [];
  for (const item of value) {
    if (typeof item !== 'object' || item === null) return undefined;
    const { step, at, rule } = item as Record<string, unknown>;
    if (!Number.isSafeInteger(step) || (step as number) < 0 || typeof at !== 'number' || !Number.isFinite(at)) return undefined;
    if (rule !== 'keep-period' && rule !== 'keep-interval') return undefined;
    out.push({ step: step as number, at, rule });
  }
  return out;
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
  options: { policy: RetentionPolicy; extraRemovals: readonly string[]; savedAtMs: number; runStartMs: number | undefined },
): { name: string; removals: string[] } {
  const { policy } = options;
  const { keep, kept, dropped } = rotate(state, step, policy, options.savedAtMs, options.runStartMs);
  const removals = [...options.extraRemovals, ...dropped.map((s) => layout.regularName(s))];
  if (policy.maxKeepCkpts > 0) info.set('keep_ckpt_ids', keep);
  if (keepsForever(policy)) info.set(KEPT_FOREVER_KEY, kept);
  state.kept = kept;
  const name = layout.regularName(step);
  info.set('last_ckpt', name);
  info.set(PENDING_REMOVALS_KEY, removals);
  state.keepCkptIds = keep;
  state.lastCkpt = name;
  return { name, removals };
}
