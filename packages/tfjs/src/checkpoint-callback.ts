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
  Tensor as CoreTensor,
  type Logger,
  type Runner,
  RuntimeInfo,
  readResumePoint,
  type StorageBackend,
  type Tensor,
} from '@savepoint/core';
import * as tf from '@tensorflow/tfjs';
import { toSavepointTensor, toTfTensor } from './tensors.js';

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

/** Model weights by TensorFlow.js variable name (`dense_Dense1/kernel`), as TF.js's own weight manifest names them. */
function weightNames(model: tf.LayersModel): string[] {
  return model.weights.map((w) => w.originalName);
}

interface OptimizerState {
  class: string;
  /** Weight names in the order `optimizer.setWeights` expects them. */
  names: string[];
  weights: Record<string, Tensor>;
}

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
      modelState: () => this.#modelState(),
      optimizerState: () => this.#optimizerState(),
      extraMeta: () => ({ tfjs_version: tf.version.tfjs, model_class: this.#requireModel().getClassName() }),
    };
  }

  /** Completed epochs and batches, as the checkpoints record them. */
  get position(): { epoch: number; iter: number } {
    return { epoch: this.#epoch, iter: this.#iter };
  }

  /**
   * Restores `model` (weights and optimizer state; compile it first) and the run's
   * rotation and bests from the work dir's `last_checkpoint`, and returns the epoch to
   * pass to `fit` as `initialEpoch` (0 when there is nothing to resume). A pointer to a
   * checkpoint outside this run is refused (`ForeignPathError`).
   */
  async resume(
    model: tf.LayersModel,
    options: { backend?: StorageBackend } = {},
  ): Promise<{ initialEpoch: number; path?: string }> {
    this.#model = model;
    const store = this.hook.config.store;
    const found = await readResumePoint(this.hook, this.#workDir, this.#runtimeInfo, {
      backend: options.backend ?? (store.kind === 'instance' ? store.backend : undefined),
    });
    if (!found) return { initialEpoch: 0 };
    this.#loadWeights(model, found.checkpoint.state_dict as Record<string, unknown>);
    const optimizer = found.checkpoint.optimizer as OptimizerState | undefined;
    if (optimizer && this.hook.config.saveOptimizer) await this.#loadOptimizer(model, optimizer);
    this.#epoch = found.epoch;
    this.#iter = found.iter;
    this.#logger.info(`Resumed from ${found.path} at epoch ${found.epoch}, iter ${found.iter}`);
    return { initialEpoch: found.epoch, path: found.path };
  }

  override setModel(model: Parameters<tf.Callback['setModel']>[0]): void {
    super.setModel(model);
    this.#model = model as unknown as tf.LayersModel;
  }

  override async onTrainBegin(): Promise<void> {
    const params = this.params as { epochs?: number; steps?: number; samples?: number; batchSize?: number };
    this.#maxEpochs = params.epochs ?? 1;
    this.#stepsPerEpoch =
      params.steps ?? (params.samples && params.batchSize ? Math.ceil(params.samples / params.batchSize) : undefined);
    await this.hook.beforeTrain(this.#runner);
  }

  /** A step boundary: with `saveOnSignals`, a signal that came during the last batch is saved here. */
  override async onBatchBegin(): Promise<void> {
    await this.hook.beforeTrainIter(this.#runner);
  }

  override async onBatchEnd(): Promise<void> {
    this.#iter++;
    await this.hook.afterTrainIter(this.#runner);
  }

  override async onEpochEnd(epoch: number, logs?: tf.Logs): Promise<void> {
    this.#epoch = epoch + 1;
    await this.hook.afterTrainEpoch(this.#runner);
    if (this.hook.config.saveBest) await this.hook.afterValEpoch(this.#runner, metricsOf(logs));
  }

  override async onTrainEnd(): Promise<void> {
    await this.hook.afterTrain(this.#runner);
  }

  /**
   * With `saveOnException`: saves where training stood when `fit` threw. A callback never
   * sees `fit`'s errors, so call it from your catch: `catch (e) { await cb.onException(e); throw e; }`.
   */
  onException(error: unknown): Promise<void> {
    return this.hook.onException(this.#runner, error);
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

  #modelState(): Record<string, Tensor> {
    const model = this.#requireModel();
    const names = weightNames(model);
    const state: Record<string, Tensor> = {};
    model.weights.forEach((variable, i) => {
      state[names[i] as string] = toSavepointTensor(variable.read(), names[i] as string);
    });
    return state;
  }

  async #optimizerState(): Promise<Record<string, unknown>> {
    const optimizer = this.#requireModel().optimizer;
    if (!optimizer) return {};
    const named = await optimizer.getWeights();
    const weights: Record<string, Tensor> = {};
    for (const { name, tensor } of named) weights[name] = toSavepointTensor(tensor, `optimizer ${name}`);
    const state: OptimizerState = { class: optimizer.getClassName(), names: named.map((n) => n.name), weights };
    return state as unknown as Record<string, unknown>;
  }

  #loadWeights(model: tf.LayersModel, state: Record<string, unknown> | undefined): void {
    if (!state || typeof state !== 'object') {
      throw new ConfigError('the checkpoint holds no state_dict to restore the model from', { option: 'checkpoint' });
    }
    const names = weightNames(model);
    const stored = Object.keys(state);
    // By name; a model built in another order in this process (other layer-name counters)
    // still restores when the weights match one for one by position and shape.
    const byName = names.every((n) => Object.hasOwn(state, n));
    if (!byName && stored.length !== names.length) {
      const missing = names.filter((n) => !Object.hasOwn(state, n));
      throw new ConfigError(
        `the checkpoint's weights do not fit this model: missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''} (it has ${stored.length} weights, the model ${names.length})`,
        { option: 'checkpoint' },
      );
    }
    if (!byName) {
      this.#logger.warn('Weight names differ from the checkpoint (layers named in another order): restoring by position.');
    }
    const tensors = model.weights.map((variable, i) => {
      const key = byName ? (names[i] as string) : (stored[i] as string);
      return toTfTensor(tf, state[key], key, variable.shape as number[]);
    });
    model.setWeights(tensors);
    tf.dispose(tensors);
  }

  async #loadOptimizer(model: tf.LayersModel, state: OptimizerState): Promise<void> {
    const optimizer = model.optimizer;
    if (!optimizer) {
      throw new ConfigError('the checkpoint holds optimizer state: compile the model before resume()', { option: 'model' });
    }
    if (!Array.isArray(state.names) || !state.weights || typeof state.weights !== 'object') return;
    if (state.class !== optimizer.getClassName()) {
      this.#logger.warn(
        `The checkpoint's optimizer is ${state.class}, the model's ${optimizer.getClassName()}: its state is not restored.`,
      );
      return;
    }
    // TensorFlow.js optimizers match their slots by position, not by name: the order is what counts.
    const named = state.names.map((name) => {
      const stored = state.weights[name] as unknown;
      const shape =
        stored instanceof CoreTensor ? stored.shape : ArrayBuffer.isView(stored) ? [(stored as Float32Array).length] : [];
      return { name, tensor: toTfTensor(tf, stored, `optimizer ${name}`, shape) };
    });
    await optimizer.setWeights(named);
    tf.dispose(named.map((n) => n.tensor));
  }
}
