// A `model.fit` callback that drives savepoint's CheckpointHook: every hook option
// works (interval, maxKeepCkpts, saveBest on the logs' metrics with the rule inferred,
// publishedKeys, saveLast, asyncSave), and `resume()` restores weights, optimizer state
// and the run's rotation and bests from the run's last checkpoint, returning the
// `initialEpoch` to pass to `fit`.
//
// A checkpoint holds `state_dict` (the model's weights by TensorFlow.js variable name),
// `optimizer` (its weights by name, in the order TensorFlow.js restores them), `meta`
// and the runtime info: a safetensors file like every other savepoint checkpoint.

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
import { loadOptimizerState, loadWeightsState, optimizerState, weightsState } from './tf-state.js';

export interface SavepointCheckpointOptions extends CheckpointHookOptions {
  /** Where the run lives (local folder or store URI): the pointer and, by default, the checkpoints. */
  workDir: string;
  /** Messages such as "Saving checkpoint at 3 epochs"; silent when omitted. */
  logger?: Logger;
}

const silent: Logger = { info() {}, warn() {} };

/**
 * The epoch's logs as numbers. TensorFlow.js may hand callbacks scalar tensors that it
 * resolves later (its History does); a metric is read from either.
 */
function metricsOf(logs: tf.Logs | undefined): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const [name, value] of Object.entries(logs ?? {})) {
    const scalar = value as unknown;
    if (typeof scalar === 'number') metrics[name] = scalar;
    else if (scalar instanceof tf.Tensor && scalar.size === 1) metrics[name] = scalar.dataSync()[0] as number;
  }
  return metrics;
}

const count = (value: unknown) => (Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : 0);

/** Where `resume` puts `fit`: the epoch to start, and the batches of it a checkpoint already holds. */
export interface FitResumePoint {
  initialEpoch: number;
  /** Batches of epoch `initialEpoch` trained before the checkpoint (iteration mode); 0 at an epoch boundary. */
  batchInEpoch: number;
  path?: string;
}

type FitInput = tf.Tensor | tf.Tensor[];

export class SavepointCheckpoint extends tf.Callback {
  readonly hook: CheckpointHook;
  readonly #workDir: string;
  readonly #logger: Logger;
  readonly #runtimeInfo = new RuntimeInfo();
  readonly #runner: Runner;
  #epoch = 0;
  #iter = 0;
  #maxEpochs = 1;
  #stepsPerEpoch: number | undefined;
  /** Batches done in the epoch under way: checkpoints record it, so a resume can continue there. */
  #batch = 0;
  /** Batches of the next epoch that `fit` skips (a resume mid-epoch). */
  #skip = 0;
  /** Set by `fit`: it begins and ends training itself, around its two `model.fit` calls. */
  #managed = false;
  #resumedBatch = 0;
  #model: tf.LayersModel | undefined;

  constructor(options: SavepointCheckpointOptions) {
    super();
    const { workDir, logger, ...hookOptions } = options ?? ({} as SavepointCheckpointOptions);
    if (typeof workDir !== 'string' || workDir.length === 0) {
      throw new ConfigError(`option "workDir" got ${JSON.stringify(workDir)}; accepted: a folder path or store URI`, {
        option: 'workDir',
      });
    }
    this.hook = new CheckpointHook(hookOptions);
    this.#workDir = workDir;
    this.#logger = logger ?? silent;
    const self = this;
    this.#runner = {
      workDir,
      get epoch() {
        return self.#epoch;
      },
      get iter() {
        return self.#iter;
      },
      get maxEpochs() {
        return self.#maxEpochs;
      },
      get maxIters() {
        return self.#maxEpochs * (self.#stepsPerEpoch ?? Number.MAX_SAFE_INTEGER);
      },
      runtimeInfo: this.#runtimeInfo,
      logger: this.#logger,
      rank: 0,
      modelState: () => weightsState(this.#requireModel()),
      optimizerState: () => optimizerState(this.#requireModel().optimizer),
      extraMeta: () => ({
        tfjs_version: tf.version.tfjs,
        model_class: this.#requireModel().getClassName(),
        batch_in_epoch: this.#batch,
        steps_per_epoch: this.#stepsPerEpoch ?? null,
      }),
    };
  }

  /** Completed epochs and batches, as the checkpoints record them. */
  get position(): { epoch: number; iter: number } {
    return { epoch: this.#epoch, iter: this.#iter };
  }

  /**
   * Restores `model` (weights and optimizer state; compile it first) and the run's
   * rotation and bests from the work dir's `last_checkpoint`, and returns the epoch to
   * pass to `fit` as `initialEpoch` (0 when there is nothing to resume). A checkpoint
   * saved mid-epoch (iteration mode) gives `batchInEpoch` > 0: `model.fit` cannot start
   * inside an epoch and trains those batches again (a warning says so); `checkpoint.fit`
   * continues at that batch. A pointer to a checkpoint outside this run is refused
   * (`ForeignPathError`).
   */
  async resume(model: tf.LayersModel, options: { backend?: StorageBackend } = {}): Promise<FitResumePoint> {
    this.#model = model;
    const store = this.hook.config.store;
    const found = await readResumePoint(this.hook, this.#workDir, this.#runtimeInfo, {
      backend: options.backend ?? (store.kind === 'instance' ? store.backend : undefined),
    });
    if (!found) return { initialEpoch: 0, batchInEpoch: 0 };
    loadWeightsState(model, found.checkpoint.state_dict, this.#logger);
    if (found.checkpoint.optimizer && this.hook.config.saveOptimizer) {
      await loadOptimizerState(model.optimizer, found.checkpoint.optimizer, this.#logger);
    }
    const meta = (found.checkpoint.meta ?? {}) as { batch_in_epoch?: unknown; steps_per_epoch?: unknown };
    let batch = count(meta.batch_in_epoch);
    const perEpoch = count(meta.steps_per_epoch);
    this.#epoch = found.epoch;
    // Saved at an epoch's last batch, before its end was counted: the next epoch starts whole.
    if (perEpoch > 0 && batch >= perEpoch) {
      this.#epoch++;
      batch = 0;
    }
    this.#iter = found.iter;
    this.#resumedBatch = batch;
    this.#logger.info(`Resumed from ${found.path} at epoch ${this.#epoch}, iter ${found.iter}`);
    if (batch > 0) {
      this.#logger.warn(
        `The checkpoint was saved after batch ${batch} of epoch ${this.#epoch + 1}: model.fit restarts that epoch at its first batch and trains ${batch} batch(es) again. checkpoint.fit(model, x, y, { shuffle: false, ... }) continues at batch ${batch + 1}.`,
      );
    }
    return { initialEpoch: this.#epoch, batchInEpoch: batch, path: found.path };
  }

  /**
   * `model.fit(x, y, args)` from where the last `resume` left off, exactly: a checkpoint
   * saved mid-epoch continues at the next batch (the rest of that epoch first, then the
   * other epochs). Skipping batches is exact only when every epoch feeds the same batches
   * in the same order, so it needs `shuffle: false` (TensorFlow.js shuffles with an
   * unseeded order) and tensors as data; `validationSplit` is taken off before the
   * batches are counted, as `model.fit` does. The checkpoint callback is added to
   * `args.callbacks`. Returns each epoch's logs.
   */
  async fit(
    model: tf.LayersModel,
    x: FitInput,
    y: FitInput,
    args: Omit<tf.ModelFitArgs, 'initialEpoch'> = {},
  ): Promise<{ epoch: number[]; history: Record<string, number[]> }> {
    if (args.shuffle !== false) {
      throw new ConfigError(
        `checkpoint.fit got shuffle ${JSON.stringify(args.shuffle)}; accepted: false (a resume skips the batches a checkpoint holds, which needs the same batches in every epoch; or call model.fit, which resumes at the epoch boundary)`,
        { option: 'shuffle' },
      );
    }
    this.#model = model;
    const batchSize = args.batchSize ?? 32;
    let [trainX, trainY, validationData] = [x, y, args.validationData];
    if (args.validationSplit !== undefined && args.validationSplit > 0) {
      // As model.fit: the last fraction of the samples, before any batching.
      const samples = first(x).shape[0] as number;
      const at = Math.floor(samples * (1 - args.validationSplit));
      [trainX, trainY] = [rows(x, 0, at), rows(y, 0, at)];
      validationData = [rows(x, at), rows(y, at)] as [tf.Tensor, tf.Tensor];
    }
    const samples = first(trainX).shape[0] as number;
    this.#stepsPerEpoch = Math.ceil(samples / batchSize);
    const epochs = args.epochs ?? 1;
    const user = Array.isArray(args.callbacks) ? args.callbacks : args.callbacks ? [args.callbacks] : [];
    const callbacks = [this, ...user.filter((c) => c !== this)] as tf.CustomCallbackArgs[];
    const common = { ...args, validationSplit: undefined, validationData, callbacks, batchSize };
    const merged = { epoch: [] as number[], history: {} as Record<string, number[]> };
    const add = (h: tf.History) => {
      merged.epoch.push(...h.epoch);
      for (const [k, v] of Object.entries(h.history)) {
        merged.history[k] = [...(merged.history[k] ?? []), ...(v as number[])];
      }
    };
    this.#managed = true;
    this.#maxEpochs = epochs;
    await this.hook.beforeTrain(this.#runner);
    try {
      let epoch = this.#epoch;
      const skip = this.#resumedBatch;
      this.#resumedBatch = 0;
      if (skip > 0 && epoch < epochs) {
        this.#skip = skip;
        const from = skip * batchSize;
        add(await model.fit(rows(trainX, from), rows(trainY, from), { ...common, epochs: epoch + 1, initialEpoch: epoch }));
        epoch++;
      }
      if (epoch < epochs) add(await model.fit(trainX, trainY, { ...common, epochs, initialEpoch: epoch }));
      await this.hook.afterTrain(this.#runner);
      return merged;
    } catch (error) {
      await this.hook.close().catch(() => {});
      throw error;
    } finally {
      this.#managed = false;
      this.#skip = 0;
    }
  }

  override setModel(model: Parameters<tf.Callback['setModel']>[0]): void {
    super.setModel(model);
    this.#model = model as unknown as tf.LayersModel;
  }

  override async onTrainBegin(): Promise<void> {
    if (this.#managed) return; // checkpoint.fit began training and counts the batches itself
    const params = this.params as { epochs?: number; steps?: number; samples?: number; batchSize?: number };
    this.#maxEpochs = params.epochs ?? 1;
    this.#stepsPerEpoch =
      params.steps ?? (params.samples && params.batchSize ? Math.ceil(params.samples / params.batchSize) : undefined);
    await this.hook.beforeTrain(this.#runner);
  }

  override async onEpochBegin(): Promise<void> {
    this.#batch = this.#skip;
    this.#skip = 0;
  }

  override async onBatchEnd(): Promise<void> {
    this.#iter++;
    this.#batch++;
    await this.hook.afterTrainIter(this.#runner);
  }

  override async onEpochEnd(epoch: number, logs?: tf.Logs): Promise<void> {
    this.#epoch = epoch + 1;
    this.#batch = 0;
    await this.hook.afterTrainEpoch(this.#runner);
    if (this.hook.config.saveBest) await this.hook.afterValEpoch(this.#runner, metricsOf(logs));
  }

  override async onTrainEnd(): Promise<void> {
    if (this.#managed) return;
    await this.hook.afterTrain(this.#runner);
  }

  /** Waits for saves in flight (with `asyncSave`) and raises a failure they left. */
  flush(): Promise<void> {
    return this.hook.flush();
  }

  /** Releases the run's lease when `fit` failed before its end (onTrainEnd does it otherwise). */
  close(): Promise<void> {
    return this.hook.close();
  }

  #requireModel(): tf.LayersModel {
    if (!this.#model) {
      throw new ConfigError('SavepointCheckpoint has no model: pass it to model.fit({ callbacks }) or to resume(model)', {
        option: 'model',
      });
    }
    return this.#model;
  }
}

function first(input: FitInput): tf.Tensor {
  return (Array.isArray(input) ? input[0] : input) as tf.Tensor;
}

/** Rows `[from, to)` along the first axis of each tensor. */
function rows<T extends FitInput>(input: T, from: number, to?: number): T {
  const one = (t: tf.Tensor) => t.slice(from, (to ?? (t.shape[0] as number)) - from);
  return (Array.isArray(input) ? input.map(one) : one(input)) as T;
}
