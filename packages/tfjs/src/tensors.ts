// TensorFlow.js tensors to savepoint tensors and back. A savepoint checkpoint holds
// plain typed arrays with a shape, so Python's safetensors reads it as it would any
// other file.

import { ConfigError, type DType, Tensor, type TypedArray } from '@savepoint/core';
import type * as tf from '@tensorflow/tfjs';

const DTYPES: Record<string, DType> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };

/**
 * The values of a TensorFlow.js tensor as a savepoint `Tensor`: a copy, or with
 * `{ copy: false }` the array `dataSync` gives, which may be the backend's own memory
 * (the CPU backend's values; WebGL's cached copy): use it only until the tensor could
 * be changed or written to again.
 */
export function toSavepointTensor(tensor: tf.Tensor, name: string, options: { copy?: boolean } = {}): Tensor {
  const dtype = DTYPES[tensor.dtype];
  if (!dtype) {
    throw new ConfigError(`tensor ${JSON.stringify(name)} has dtype ${tensor.dtype}; savepoint saves float32, int32 and bool`, {
      option: 'model',
    });
  }
  const values = tensor.dataSync() as TypedArray;
  const data: TypedArray =
    dtype === 'BOOL' ? Uint8Array.from(values as Uint8Array) : options.copy === false ? values : values.slice();
  return new Tensor(data, tensor.shape, dtype);
}

/**
 * A stored tensor as a TensorFlow.js tensor with its shape: the stored one (a savepoint
 * `Tensor`'s shape; a bare typed array, which a loaded checkpoint gives for every 1-D
 * tensor, is 1-D), or `shape` when given, checked to hold as many values.
 */
export function toTfTensor(tfjs: typeof tf, stored: unknown, name: string, shape?: readonly number[]): tf.Tensor {
  const tensor = stored instanceof Tensor ? stored : ArrayBuffer.isView(stored) ? new Tensor(stored as TypedArray) : undefined;
  if (!tensor) throw new ConfigError(`checkpoint entry ${JSON.stringify(name)} is not a tensor`, { option: 'checkpoint' });
  const target = shape ?? tensor.shape;
  const elements = target.reduce((a, b) => a * b, 1);
  if (tensor.data.length !== elements) {
    throw new ConfigError(
      `checkpoint tensor ${JSON.stringify(name)} has shape [${tensor.shape.join(', ')}], the model expects [${target.join(', ')}]`,
      { option: 'checkpoint' },
    );
  }
  const dtype = tensor.dtype === 'I32' ? 'int32' : tensor.dtype === 'BOOL' ? 'bool' : 'float32';
  const values =
    tensor.dtype === 'F32' || tensor.dtype === 'I32' || tensor.dtype === 'BOOL'
      ? tensor.data
      : Float32Array.from(tensor.data as ArrayLike<number>);
  return tfjs.tensor(values as Float32Array | Int32Array | Uint8Array, [...target], dtype);
}

/** A nested tree of checkpoint values. */
export type TfTree = { [key: string]: TfTree | tf.Tensor | unknown };

/**
 * A loaded checkpoint (or part of one) with every tensor leaf as a TensorFlow.js tensor
 * of its shape: 1-D ones too, which `loadCheckpoint` gives as bare typed arrays. Other
 * leaves (numbers, strings, metadata) are left as they are. The caller disposes the tensors.
 */
export function toTfTensors(tfjs: typeof tf, tree: Record<string, unknown>, prefix = ''): TfTree {
  const out: TfTree = {};
  for (const [key, value] of Object.entries(tree)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value instanceof Tensor || (ArrayBuffer.isView(value) && !(value instanceof DataView))) {
      out[key] = toTfTensor(tfjs, value, name);
    } else if (value && typeof value === 'object' && !Array.isArray(value)) {
      out[key] = toTfTensors(tfjs, value as Record<string, unknown>, name);
    } else out[key] = value;
  }
  return out;
}
