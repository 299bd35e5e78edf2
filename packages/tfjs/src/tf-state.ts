// What a TensorFlow.js checkpoint holds and how it goes back: the weights by name (a
// model's by TensorFlow.js variable name, as its own weight manifest names them, or the
// names of a map of variables), and the optimizer's weights in the order
// `optimizer.setWeights` expects them. One module for the `fit` callback and for
// custom loops, so a checkpoint of one restores into the other.
import { ConfigError, Tensor as CoreTensor, type Logger, type Tensor } from '@savepoint/core';
import * as tf from '@tensorflow/tfjs';
import { toSavepointTensor, toTfTensor } from './tensors.js';

/** A model, or named variables (what `optimizer.minimize` trains in a custom loop). */
export type Trainable = tf.LayersModel | Readonly<Record<string, tf.Variable>>;

export interface OptimizerState {
  class: string;
  /** Weight names in the order `optimizer.setWeights` expects them. */
  names: string[];
  weights: Record<string, Tensor>;
}

export function isLayersModel(value: unknown): value is tf.LayersModel {
  return value instanceof tf.LayersModel;
}

/** The names and values of what is trained, in a stable order. */
function entries(target: Trainable): { name: string; value: tf.Tensor }[] {
  if (isLayersModel(target)) return target.weights.map((w) => ({ name: w.originalName, value: w.read() }));
  return Object.entries(target).map(([name, value]) => ({ name, value }));
}

/**
 * What a save reads from the model is not copied, because the hook is done with it
 * before the training loop goes on: a synchronous save is awaited, and `asyncSave`
 * copies the values into its snapshot within the awaited hook call (a preemption save
 * runs while the loop is held at its next step). That guarantee is what makes it safe,
 * not the way a training step changes weights (it replaces a variable's tensor, but a
 * few CPU kernels, such as tensorScatterUpdate, do write into their input's values).
 * A copy here doubled the copying of an async save: on the CPU backend it was 85% of
 * what the `fit` callback kept training waiting (160 ms against 21 ms an epoch, 126 MB).
 */
const SHARED = { copy: false } as const;

/** The weights as savepoint tensors (the values themselves: see SHARED). */
export function weightsState(target: Trainable): Record<string, Tensor> {
  const state: Record<string, Tensor> = {};
  for (const { name, value } of entries(target)) state[name] = toSavepointTensor(value, name, SHARED);
  return state;
}

/** Restores the weights from a checkpoint's `state_dict`, checking each shape. */
export function loadWeightsState(target: Trainable, state: unknown, logger: Logger): void {
  if (!state || typeof state !== 'object') {
    throw new ConfigError('the checkpoint holds no state_dict to restore the weights from', { option: 'checkpoint' });
  }
  const stored = state as Record<string, unknown>;
  const current = entries(target);
  const names = current.map((e) => e.name);
  const keys = Object.keys(stored);
  const byName = names.every((n) => Object.hasOwn(stored, n));
  // A model built in another order in this process (other layer-name counters) still
  // restores when the weights match one for one by position and shape; named variables never do.
  if (!byName && (keys.length !== names.length || !isLayersModel(target))) {
    const missing = names.filter((n) => !Object.hasOwn(stored, n));
    throw new ConfigError(
      `the checkpoint's weights do not fit: missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''} (it has ${keys.length} weights, this ${isLayersModel(target) ? 'model' : 'set of variables'} ${names.length})`,
      { option: 'checkpoint' },
    );
  }
  if (!byName) logger.warn('Weight names differ from the checkpoint (layers named in another order): restoring by position.');
  const tensors = current.map(({ value }, i) => {
    const key = byName ? (names[i] as string) : (keys[i] as string);
    return toTfTensor(tf, stored[key], key, value.shape);
  });
  if (isLayersModel(target)) target.setWeights(tensors);
  else {
    for (const [i, { value }] of current.entries()) (value as tf.Variable).assign(tensors[i] as tf.Tensor);
  }
  tf.dispose(tensors);
}

/** The optimizer's weights (iterations, slots) by name and in their order. */
export async function optimizerState(optimizer: tf.Optimizer | undefined): Promise<Record<string, unknown>> {
  if (!optimizer) return {};
  const named = await optimizer.getWeights();
  const weights: Record<string, Tensor> = {};
  for (const { name, tensor } of named) weights[name] = toSavepointTensor(tensor, `optimizer ${name}`, SHARED);
  const state: OptimizerState = { class: optimizer.getClassName(), names: named.map((n) => n.name), weights };
  return state as unknown as Record<string, unknown>;
}

/** Restores an optimizer's weights; another optimizer class's state is not restored (with a warning). */
export async function loadOptimizerState(optimizer: tf.Optimizer | undefined, stored: unknown, logger: Logger): Promise<void> {
  const state = stored as Partial<OptimizerState> | undefined;
  if (!state || !Array.isArray(state.names) || !state.weights || typeof state.weights !== 'object') return;
  if (!optimizer) {
    throw new ConfigError('the checkpoint holds optimizer state: compile the model (or pass the optimizer) before restoring', {
      option: 'optimizer',
    });
  }
  if (state.class !== optimizer.getClassName()) {
    logger.warn(`The checkpoint's optimizer is ${state.class}, this one ${optimizer.getClassName()}: its state is not restored.`);
    return;
  }
  const weights = state.weights as Record<string, unknown>;
  // TensorFlow.js optimizers match their slots by position, not by name: the order is what counts.
  const named = state.names.map((name) => {
    const value = weights[String(name)];
    const shape = value instanceof CoreTensor ? value.shape : ArrayBuffer.isView(value) ? [(value as Float32Array).length] : [];
    return { name: String(name), tensor: toTfTensor(tf, value, `optimizer ${name}`, shape) };
  });
  await optimizer.setWeights(named);
  tf.dispose(named.map((n) => n.tensor));
}
