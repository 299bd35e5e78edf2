// A plain training loop that implements `Runner`: the loop the tests and the demo
// use, and a template for wiring savepoint into your own loop. Hooks are called
// after the counters move, so `epoch`/`iter` are always completed counts.

import type { CheckpointHook } from '../engine/hook.js';
import { readResumePoint } from '../engine/restore.js';
import type { Logger, Runner } from '../engine/runner.js';
import { RuntimeInfo } from '../engine/runtime-info.js';
import { absoluteWorkDir } from '../run/layout.js';
import { Run } from '../run/run.js';
import type { StorageBackend } from '../store/contract.js';
import { ConfigError } from '../store/errors.js';
import { type BackendArgs, uriScheme } from '../store/registry.js';
import { checkInteger } from '../store/validate.js';

export interface TrainableModel {
  /** One optimisation step on the next batch; returns the loss. */
  trainStep(position: { epoch: number; iter: number }): number | Promise<number>;
  /** Validation metrics, e.g. `{ acc: 0.91 }`. */
  evaluate?(position: { epoch: number; iter: number }): Record<string, number> | Promise<Record<string, number>>;
  stateDict(): Record<string, unknown>;
  loadStateDict(state: Record<string, unknown>): void;
  optimizerState?(): Record<string, unknown>;
  loadOptimizerState?(state: Record<string, unknown>): void;
  schedulerState?(): Record<string, unknown>;
  loadSchedulerState?(state: Record<string, unknown>): void;
}

export interface ReferenceTrainerOptions {
  workDir: string;
  model: TrainableModel;
  checkpointHook: CheckpointHook;
  /** Epoch mode: train this many epochs. */
  maxEpochs?: number;
  /** Iteration mode: train this many iterations (epochs then count `itersPerEpoch` each). */
  maxIters?: number;
  itersPerEpoch: number;
  /** Evaluate every N epochs (epoch mode) or iterations (iteration mode); 0 never. */
  valInterval?: number;
  logger?: Logger;
  rank?: number;
  /**
   * Resume from the work dir's `last_checkpoint` when there is one. It must name a
   * checkpoint of this run (in its checkpoint folder); anything else is refused.
   */
  resume?: boolean;
  /**
   * Start from the weights of any checkpoint (as the reference's `load_from`): loads
   * `state_dict` only, restores no counters or runtime info, deletes nothing. Used when
   * there is nothing to resume.
   */
  loadFrom?: string;
  /** Store of the work dir (the pointer); defaults to the hook's store or the registry's choice. */
  backend?: StorageBackend;
  backendArgs?: BackendArgs;
  /** Checked after every iteration: returning true stops training there (as a crash or preemption would). */
  shouldStop?: (position: { epoch: number; iter: number }) => boolean;
  meta?: Record<string, unknown>;
}

export const silentLogger: Logger = { info() {}, warn() {} };

export class ReferenceTrainer implements Runner {
  readonly workDir: string;
  readonly maxEpochs: number;
  readonly maxIters: number;
  readonly runtimeInfo = new RuntimeInfo();
  readonly logger: Logger;
  readonly rank: number;
  epoch = 0;
  iter = 0;
  /** The checkpoint this run resumed from, if any. */
  resumedFrom: string | undefined;
  readonly #options: ReferenceTrainerOptions;
  readonly #byEpoch: boolean;

  constructor(options: ReferenceTrainerOptions) {
    const itersPerEpoch = checkInteger(options.itersPerEpoch, 'itersPerEpoch', 'an integer >= 1', { min: 1 });
    this.#byEpoch = options.checkpointHook.config.byEpoch;
    if (this.#byEpoch) {
      this.maxEpochs = checkInteger(options.maxEpochs, 'maxEpochs', 'an integer >= 1 (epoch mode)', { min: 1 });
      this.maxIters = this.maxEpochs * itersPerEpoch;
    } else {
      this.maxIters = checkInteger(options.maxIters, 'maxIters', 'an integer >= 1 (iteration mode)', { min: 1 });
      this.maxEpochs = Math.ceil(this.maxIters / itersPerEpoch);
    }
    if (!options.model || typeof options.model.trainStep !== 'function') {
      throw new ConfigError('option "model" must implement TrainableModel (trainStep, stateDict, loadStateDict)', {
        option: 'model',
      });
    }
    if (typeof options.workDir !== 'string' || options.workDir.length === 0) {
      throw new ConfigError(`option "workDir" got ${JSON.stringify(options.workDir)}; accepted: a folder path or store URI`, {
        option: 'workDir',
      });
    }
    if (options.loadFrom !== undefined && (typeof options.loadFrom !== 'string' || options.loadFrom.length === 0)) {
      throw new ConfigError(`option "loadFrom" got ${JSON.stringify(options.loadFrom)}; accepted: a checkpoint path or URI`, {
        option: 'loadFrom',
      });
    }
    // A relative folder is fixed now: a later chdir must not move the run.
    this.workDir = absoluteWorkDir(options.workDir);
    this.logger = options.logger ?? silentLogger;
    this.rank = options.rank ?? 0;
    this.#options = options;
  }

  modelState(): Record<string, unknown> {
    return this.#options.model.stateDict();
  }
  optimizerState(): Record<string, unknown> {
    return this.#options.model.optimizerState?.() ?? {};
  }
  schedulerState(): Record<string, unknown> {
    return this.#options.model.schedulerState?.() ?? {};
  }
  extraMeta(): Record<string, unknown> {
    return { ...this.#options.meta };
  }

  /**
   * Loads the checkpoint that `last_checkpoint` names, restoring weights, counters and
   * runtime info. Refuses (ForeignPathError) a pointer that names anything outside this
   * run's checkpoint folder: that checkpoint's runtime info would drive deletions here.
   */
  async resume(): Promise<string | undefined> {
    const found = await readResumePoint(this.#options.checkpointHook, this.workDir, this.runtimeInfo, {
      backend: this.#options.backend,
    });
    if (!found) return undefined;
    const { checkpoint, path } = found;
    const { model } = this.#options;
    model.loadStateDict(checkpoint.state_dict as Record<string, unknown>);
    if (checkpoint.optimizer) model.loadOptimizerState?.(checkpoint.optimizer as Record<string, unknown>);
    if (checkpoint.param_schedulers) model.loadSchedulerState?.(checkpoint.param_schedulers as Record<string, unknown>);
    this.epoch = found.epoch;
    this.iter = found.iter;
    this.resumedFrom = path;
    this.logger.info(`Resumed from ${path} at epoch ${this.epoch}, iter ${this.iter}`);
    return path;
  }

  /** Loads only the weights of `loadFrom` (any store, any run): nothing else is restored or deleted. */
  async loadWeights(path: string): Promise<void> {
    const own = this.#options.backend;
    const source = Run.open(path, {
      ...(own && uriScheme(path) === uriScheme(this.workDir) ? { backend: own } : { backendArgs: this.#options.backendArgs }),
    });
    let checkpoint: Record<string, unknown>;
    try {
      checkpoint = await source.load(path);
    } finally {
      await source.close();
    }
    this.#options.model.loadStateDict(checkpoint.state_dict as Record<string, unknown>);
    this.logger.info(`Loaded weights from ${path} (loadFrom: nothing else restored, nothing deleted)`);
  }

  /** Trains to the end (or until `shouldStop`). Returns whether it reached the end. */
  async train(): Promise<{ completed: boolean }> {
    const { checkpointHook: hook } = this.#options;
    const resumed = this.#options.resume ? await this.resume() : undefined;
    if (!resumed && this.#options.loadFrom !== undefined) await this.loadWeights(this.#options.loadFrom);
    await hook.beforeTrain(this);
    let completed = false;
    try {
      try {
        completed = await this.#loop();
      } catch (error) {
        // (ours) saveOnException: the position is saved before the error propagates.
        await hook.onException(this, error);
        throw error;
      }
      if (completed) await hook.afterTrain(this);
      return { completed };
    } finally {
      // A stopped or failed loop gives the lease up, so the next job resumes at once.
      if (!completed) await hook.close().catch((error) => this.logger.warn(`Releasing the lease failed: ${error}`));
    }
  }

  async #loop(): Promise<boolean> {
    const { model, checkpointHook: hook, itersPerEpoch } = this.#options;
    const valInterval = this.#options.valInterval ?? 0;
    while (this.#byEpoch ? this.epoch < this.maxEpochs : this.iter < this.maxIters) {
      await hook.beforeTrainIter(this);
      await model.trainStep({ epoch: this.epoch, iter: this.iter });
      this.iter++;
      await hook.afterTrainIter(this);
      const epochDone = this.iter % itersPerEpoch === 0;
      if (epochDone) {
        this.epoch++;
        await hook.afterTrainEpoch(this);
      }
      // As the reference's loops: validate every valInterval steps and always at the last one.
      const last = this.#byEpoch ? epochDone && this.epoch === this.maxEpochs : this.iter === this.maxIters;
      const valDue =
        valInterval > 0 &&
        (last || (this.#byEpoch ? epochDone && this.epoch % valInterval === 0 : this.iter % valInterval === 0));
      if (valDue && model.evaluate) await hook.afterValEpoch(this, await model.evaluate({ epoch: this.epoch, iter: this.iter }));
      if (this.#options.shouldStop?.({ epoch: this.epoch, iter: this.iter })) return false;
    }
    return true;
  }
}
