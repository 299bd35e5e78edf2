// Checkpoints for a custom TensorFlow.js loop (`optimizer.minimize`, no `fit`): one object
// over the model (or named variables) and the optimizer. `save(step, metrics)` is a save
// point of core's CheckpointHook, so every hook option works as in `fit` (interval,
// rotation, bests, asyncSave, publishedKeys, the lease); `restore()` puts back the
// weights, the optimizer's state and the hook's bookkeeping and returns the step to
// continue from.
import {
  CheckpointHook,
  type CheckpointHookOptions,
  ConfigError,
  type Logger,
  type Runner,
  RuntimeInfo,
  readResumePoint,
  type StorageBackend,
} from '@savepoint/core';
import * as tf from '@tensorflow/tfjs';
import { isLayersModel, loadOptimizerState, loadWeightsState, optimizerState, type Trainable, weightsState } from './tf-state.js';

export interface TrainingCheckpointOptions extends CheckpointHookOptions {
  /** Where the run lives (local folder or store URI): the pointer and, by default, the checkpoints. */
  workDir: string;
  /** What is trained: a model (its weights by TensorFlow.js variable name), or variables by name. */
  model?: tf.LayersModel;
  variables?: Readonly<Record<string, tf.Variable>>;
  /** The optimizer whose state is saved and restored; default: the model's (`model.compile`). */
  optimizer?: tf.Optimizer;
  /** The last step of the run: with `saveLast` (the default) a checkpoint is saved there. */
  maxSteps?: number;
  /** Messages such as "Saving checkpoint at 3 iterations"; silent when omitted. */
  logger?: Logger;
}

const silent: Logger = { info() {}, warn() {} };

export class TrainingCheckpoint {
  readonly hook: CheckpointHook;
  readonly #target: Trainable;
  readonly #optimizer: tf.Optimizer | undefined;
  readonly #workDir: string;
  readonly #logger: Logger;
  readonly #runtimeInfo = new RuntimeInfo();
  readonly #runner: Runner;
  #step = 0;
  #begun: Promise<void> | undefined;

  constructor(options: TrainingCheckpointOptions) {
    const { workDir, model, variables, optimizer, maxSteps, logger, ...hookOptions } =
      options ?? ({} as TrainingCheckpointOptions);
    if (typeof workDir !== 'string' || workDir.length === 0) {
      throw new ConfigError(`option "workDir" got ${JSON.stringify(workDir)}; accepted: a folder path or store URI`, {
        option: 'workDir',
      });
    }
    if ((model === undefined) === (variables === undefined)) {
      throw new ConfigError('pass exactly one of "model" (a tf.LayersModel) and "variables" (tf.Variable by name)', {
        option: model === undefined ? 'model' : 'variables',
      });
    }
    if (model !== undefined && !isLayersModel(model)) {
      throw new ConfigError(`option "model" got ${describe(model)}; accepted: a tf.LayersModel`, { option: 'model' });
    }
    if (variables !== undefined) {
      const bad =
        variables && typeof variables === 'object'
          ? Object.entries(variables).find(([, v]) => !(v instanceof tf.Variable))
          : undefined;
      if (!variables || typeof variables !== 'object' || Object.keys(variables).length === 0 || bad) {
        throw new ConfigError(
          `option "variables" got ${bad ? `${JSON.stringify(bad[0])}: ${describe(bad[1])}` : describe(variables)}; accepted: an object of tf.Variable by name (tf.variable(...))`,
          { option: 'variables' },
        );
      }
    }
    const opt = optimizer ?? model?.optimizer;
    if (opt !== undefined && !(opt instanceof tf.Optimizer)) {
      throw new ConfigError(`option "optimizer" got ${describe(opt)}; accepted: a tf.Optimizer (tf.train.sgd(...), ...)`, {
        option: 'optimizer',
      });
    }
    if (maxSteps !== undefined && !(Number.isSafeInteger(maxSteps) && maxSteps >= 1)) {
      throw new ConfigError(`option "maxSteps" got ${JSON.stringify(maxSteps)}; accepted: an integer >= 1`, {
        option: 'maxSteps',
      });
    }
    this.hook = new CheckpointHook(hookOptions);
    this.#target = (model ?? variables) as Trainable;
    this.#optimizer = opt;
    this.#workDir = workDir;
    this.#logger = logger ?? silent;
    const byEpoch = this.hook.config.byEpoch;
    const self = this;
    const last = maxSteps ?? Number.MAX_SAFE_INTEGER;
    this.#runner = {
      workDir,
      // A step is an epoch or an iteration, as the hook counts them (`byEpoch`).
      get epoch() {
        return byEpoch ? self.#step : 0;
      },
      get iter() {
        return byEpoch ? 0 : self.#step;
      },
      maxEpochs: last,
      maxIters: last,
      runtimeInfo: this.#runtimeInfo,
      logger: this.#logger,
      rank: 0,
      modelState: () => weightsState(this.#target),
      optimizerState: () => optimizerState(this.#optimizer),
      extraMeta: () => ({ tfjs_version: tf.version.tfjs }),
    };
  }

  /** The last step saved or restored (0 at first). */
  get step(): number {
    return this.#step;
  }

  /**
   * Restores the weights, the optimizer's state and the run's rotation and bests from the
   * work dir's `last_checkpoint`, and returns the step to continue from (0 when there is
   * nothing to resume). Call it before the first `save`. A pointer to a checkpoint outside
   * this run is refused (`ForeignPathError`).
   */
  async restore(options: { backend?: StorageBackend } = {}): Promise<{ step: number; path?: string }> {
    if (this.#begun) {
      throw new ConfigError('restore() after save(): restore first, then train and save', { option: 'restore' });
    }
    const store = this.hook.config.store;
    const found = await readResumePoint(this.hook, this.#workDir, this.#runtimeInfo, {
      backend: options.backend ?? (store.kind === 'instance' ? store.backend : undefined),
    });
    if (found) {
      loadWeightsState(this.#target, found.checkpoint.state_dict, this.#logger);
      if (this.hook.config.saveOptimizer) await loadOptimizerState(this.#optimizer, found.checkpoint.optimizer, this.#logger);
      this.#step = this.hook.config.byEpoch ? found.epoch : found.iter;
      this.#logger.info(`Resumed from ${found.path} at step ${this.#step}`);
    }
    await this.#begin();
    return found ? { step: this.#step, path: found.path } : { step: 0 };
  }

  /**
   * A save point after `step` (completed steps, counted as the hook counts: iterations, or
   * epochs with `byEpoch`): a regular checkpoint when one is due (`interval`, `saveBegin`,
   * `saveLast` at `maxSteps`), rotation, and with `metrics` the best checkpoints of
   * `saveBest`. With `asyncSave` it returns once the state is copied.
   */
  async save(step: number, metrics?: Record<string, number | null | undefined>): Promise<void> {
    if (!Number.isSafeInteger(step) || step <= this.#step) {
      throw new ConfigError(`save() got step ${JSON.stringify(step)}; accepted: an integer above the last step (${this.#step})`, {
        option: 'step',
      });
    }
    await this.#begin();
    this.#step = step;
    if (this.hook.config.byEpoch) await this.hook.afterTrainEpoch(this.#runner);
    else await this.hook.afterTrainIter(this.#runner);
    if (metrics && this.hook.config.saveBest) await this.hook.afterValEpoch(this.#runner, metrics);
  }

  /** Waits for saves in flight (with `asyncSave`) and raises a failure they left. */
  flush(): Promise<void> {
    return this.hook.flush();
  }

  /** The end of training: waits for saves, publishes (`publishedKeys`) and releases the run. */
  async finish(): Promise<void> {
    await this.#begin();
    await this.hook.afterTrain(this.#runner);
  }

  /** Releases the run's lease when the loop stops early or fails (`finish` does it otherwise). */
  close(): Promise<void> {
    return this.hook.close();
  }

  #begin(): Promise<void> {
    this.#begun ??= this.hook.beforeTrain(this.#runner);
    return this.#begun;
  }
}

function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? String(value);
  return `an object (${value.constructor?.name ?? 'Object'})`;
}
