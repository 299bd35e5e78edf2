// What the policy engine needs from a training loop. Any loop can implement it;
// `ReferenceTrainer` (reference-trainer.ts) is a plain one.
import type { Checkpoint } from '../format/tensor.js';
import type { RuntimeInfo } from './runtime-info.js';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug?(message: string): void;
}

export interface Runner {
  /** Where the run lives: a local path or a store URI. The pointer `last_checkpoint` is written here. */
  readonly workDir: string;
  /** Completed epochs at the moment of the call (the hook is called after the counters move). */
  readonly epoch: number;
  /** Completed iterations at the moment of the call. */
  readonly iter: number;
  readonly maxEpochs: number;
  readonly maxIters: number;
  /** State that travels inside every checkpoint and comes back on resume. */
  readonly runtimeInfo: RuntimeInfo;
  readonly logger: Logger;
  /** 0 for the main process. Only rank 0 writes, deletes, moves the pointer and publishes. */
  readonly rank: number;
  /**
   * Model weights: a tree whose leaves are typed arrays/tensors. May be async (TensorFlow.js
   * reads optimizer weights asynchronously); the hook awaits it before the save point returns.
   */
  modelState(): Record<string, unknown> | Promise<Record<string, unknown>>;
  optimizerState?(): Record<string, unknown> | Promise<Record<string, unknown>>;
  schedulerState?(): Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Extra fields for the checkpoint's `meta` (seed, experiment name...). Must be JSON. */
  extraMeta?(): Record<string, unknown>;
}

/** The checkpoint tree a save writes: `meta` (with the counters), the weights, runtime info, and optimizer and scheduler state when asked. */
export async function checkpointOf(runner: Runner, include: { optimizer: boolean; scheduler: boolean }): Promise<Checkpoint> {
  const checkpoint: Checkpoint = {
    meta: { ...(runner.extraMeta?.() ?? {}), epoch: runner.epoch, iter: runner.iter },
    state_dict: await runner.modelState(),
    message_hub: { runtime_info: runner.runtimeInfo.toJSON() },
  };
  if (include.optimizer && runner.optimizerState) checkpoint.optimizer = await runner.optimizerState();
  if (include.scheduler && runner.schedulerState) checkpoint.param_schedulers = await runner.schedulerState();
  return checkpoint;
}
