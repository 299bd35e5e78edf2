// A save point's store operations, as data: write a checkpoint, move the pointer,
// delete what the commit dropped. The hook plans them; a step runner carries them out
// in order, stopping at the first failure (commit before delete). As data, a save
// point can be carried out on this thread (`runStepsHere`) or handed whole to the save
// worker (save-worker.ts), which carries it out while the training loop holds this one.
import type { Checkpoint, TypedArray } from '../format/tensor.js';
import type { CheckpointLayout, Run } from '../run/run.js';
import { AbortedError } from '../store/errors.js';
import { collectLogged, removeLogged } from './retention.js';
import type { Logger } from './runner.js';

export type SaveStep =
  | { kind: 'save'; name: string; checkpoint: Checkpoint }
  /** A checkpoint written as a copy of another, on the store's side (a best at the step of a regular checkpoint). */
  | { kind: 'copy'; from: string; name: string }
  /** The pointer moved to `name`; with `runtimeInfo`, carrying bookkeeping newer than the checkpoint's own. */
  | { kind: 'move'; name: string; runtimeInfo?: Record<string, unknown> | undefined }
  | { kind: 'remove'; name: string; what: string }
  /** (ours) Incremental checkpoints: delete the tensor objects no kept checkpoint names (after the removals). */
  | { kind: 'collect' };

/** Carries out a save point's steps, in order; the first failure stops it and is thrown. */
export interface StepRunner {
  /**
   * Resolves when every step has succeeded. A runner that moved the snapshot's buffers
   * elsewhere (a worker: they were transferred, not copied) resolves with them once they
   * may be reused; undefined means the buffers it was given were never moved.
   * Aborting `supersede` stops the save point if it has not committed yet (`runSteps`).
   */
  run(steps: readonly SaveStep[], supersede?: AbortSignal): Promise<readonly TypedArray[] | undefined>;
  /**
   * True when the steps run on another thread: the queue then hands a save point over
   * at once, since the training loop resuming first gains nothing and would hold the
   * hand-over back for a whole step.
   */
  readonly offThread: boolean;
  /** Stops the runner (a worker ends); the steps it was given have finished by then. */
  close(): Promise<void>;
}

/** Carries out one step with `run`, on this thread; `signal` reaches a write's store calls. */
export async function runStep(
  run: Run,
  logger: Logger,
  layout: CheckpointLayout,
  step: SaveStep,
  signal?: AbortSignal,
): Promise<void> {
  switch (step.kind) {
    case 'save':
      return run.save(step.name, step.checkpoint, layout, { signal });
    case 'copy':
      return run.copyCheckpoint(step.from, step.name, { signal });
    case 'move':
      return run.movePointer(step.name, { runtimeInfo: step.runtimeInfo });
    case 'remove':
      return removeLogged(run, logger, step.name, step.what);
    case 'collect':
      return collectLogged(run, logger);
  }
}

/**
 * (ours) Carries out a save point's steps in order. `supersede` stops it only before its
 * commit: it aborts the writes of the checkpoint (and of copies) and refuses to start
 * the pointer move, but once the pointer has moved, the deletions the move allows run
 * to their end. A superseded save point so leaves the store as a failed one does: the
 * previous checkpoint and the pointer whole.
 */
export async function runSteps(
  run: Run,
  logger: Logger,
  layout: CheckpointLayout,
  steps: readonly SaveStep[],
  supersede?: AbortSignal,
): Promise<void> {
  let committed = false;
  for (const step of steps) {
    if (step.kind === 'move') {
      if (supersede?.aborted) throw supersededError(supersede);
      committed = true;
    }
    await runStep(run, logger, layout, step, committed ? undefined : supersede);
  }
}

/** What a superseded save point fails with. */
export function supersededError(signal: AbortSignal): AbortedError {
  return new AbortedError('save superseded before it committed: a newer save point replaces it', { cause: signal.reason });
}

/** The step runner of this thread: what a synchronous save uses, and an async one when no worker can take it. */
export function runStepsHere(run: () => Run, logger: () => Logger, layout: CheckpointLayout): StepRunner {
  return {
    async run(steps, supersede) {
      await runSteps(run(), logger(), layout, steps, supersede);
      return undefined;
    },
    offThread: false,
    async close() {},
  };
}
