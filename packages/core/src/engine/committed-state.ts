// (ours) What the run has committed, so a failed save point never leaves the engine
// believing in a file that was not written. The engine's state (keep list, last
// checkpoint, best scores and names, in the hook and in runtime info) moves when a
// save point is planned, before its files exist. When a save point fails, that state
// goes back to what the last committed save point recorded: the next save's runtime
// info names only checkpoints that exist, and a best whose upload failed is not a best
// (its score can win again).
import type { BestTracker } from './bests.js';
import { KEPT_FOREVER_KEY, PENDING_REMOVALS_KEY, type RetentionState } from './retention.js';
import type { RankedBest } from './retention-policy.js';
import type { RuntimeInfo } from './runtime-info.js';
import type { CommitTracker } from './save-queue.js';
import { LAST_SAVE_AT_KEY, RUN_STARTED_AT_KEY } from './schedule.js';

/** Runtime-info keys the engine owns (the user's own keys are never rolled back, nor carried by the pointer). */
export function isEngineKey(key: string): boolean {
  return (
    key === 'last_ckpt' ||
    key === 'keep_ckpt_ids' ||
    key === PENDING_REMOVALS_KEY ||
    key === KEPT_FOREVER_KEY ||
    key === LAST_SAVE_AT_KEY ||
    key === RUN_STARTED_AT_KEY ||
    key.startsWith('best_topk') ||
    key.startsWith('best_score') ||
    key.startsWith('best_ckpt')
  );
}

/** The engine's runtime-info keys as they are now: the bookkeeping the pointer carries when a checkpoint is not saved again. */
export function engineRuntimeInfo(info: RuntimeInfo): Record<string, unknown> {
  return Object.fromEntries(Object.entries(info.toJSON()).filter(([key]) => isEngineKey(key)));
}

export interface EngineSnapshot {
  info: Record<string, unknown>;
  state: RetentionState;
  bests: Map<string, string | undefined>;
  ranked: Map<string, RankedBest[]>;
}

export function captureEngineState(info: RuntimeInfo, state: RetentionState, bests: BestTracker): EngineSnapshot {
  const all = info.toJSON();
  return {
    info: Object.fromEntries(Object.entries(all).filter(([key]) => isEngineKey(key))),
    state: { keepCkptIds: [...state.keepCkptIds], lastCkpt: state.lastCkpt, kept: [...state.kept] },
    bests: new Map(bests.names),
    ranked: new Map([...bests.ranked].map(([metric, list]) => [metric, [...list]])),
  };
}

export function restoreEngineState(snapshot: EngineSnapshot, info: RuntimeInfo, state: RetentionState, bests: BestTracker): void {
  for (const key of Object.keys(info.toJSON())) if (isEngineKey(key) && !(key in snapshot.info)) info.delete(key);
  for (const [key, value] of Object.entries(snapshot.info)) info.set(key, value);
  state.keepCkptIds = [...snapshot.state.keepCkptIds];
  state.lastCkpt = snapshot.state.lastCkpt;
  state.kept = [...snapshot.state.kept];
  bests.names.clear();
  for (const [metric, name] of snapshot.bests) bests.names.set(metric, name);
  bests.ranked.clear();
  for (const [metric, list] of snapshot.ranked) bests.ranked.set(metric, [...list]);
}

/** The engine's state as of the last committed save point (or the resume). */
export class CommittedState {
  readonly #state: RetentionState;
  readonly #bests: BestTracker;
  #last: EngineSnapshot | undefined;

  constructor(state: RetentionState, bests: BestTracker) {
    this.#state = state;
    this.#bests = bests;
  }

  record(info: RuntimeInfo): void {
    this.#last = captureEngineState(info, this.#state, this.#bests);
  }

  /** What a save point reports to: its planned state becomes the committed one, or a failure restores the last. */
  tracker(info: RuntimeInfo): CommitTracker<EngineSnapshot> {
    const state = this.#state;
    const bests = this.#bests;
    return {
      capture: () => captureEngineState(info, state, bests),
      commit: (planned) => {
        this.#last = planned;
      },
      fail: () => {
        if (this.#last) restoreEngineState(this.#last, info, state, bests);
      },
    };
  }
}
