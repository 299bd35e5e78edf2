// TensorFlow.js tensors to savepoint tensors and back. A savepoint checkpoint holds
// plain typed arrays with a shape, so Python's safetensors reads it as it would any
// other file.

import { ConfigError, type DType, Tensor, type TypedArray } from '@savepoint/core';
import type * as tf from '@tensorflow/tfjs';

const DTYPES: Record<string, DType> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };

/** The values of a TensorFlow.js tensor as a savepoint `Tensor` (a copy). */
export function toSavepointTensor(tensor: tf.Tensor, name: string): Tensor {
  const dtype = DTYPES[tensor.dtype];
  if (!dtype) {
    throw new ConfigError(`tensor ${JSON.stringify(name)} has dtype ${tensor.dtype}; savepoint saves float32, int32 and bool`, {
      option: 'model',
    });
  }
  // dataSync copies out of the backend; tensors are immutable, so the copy is consistent.
  const values = tensor.dataSync() as TypedArray;
  const data: TypedArray = dtype === 'BOOL' ? Uint8Array.from(values as Uint8Array) : values.slice();
  return new Tensor(data, tensor.shape, dtype);
}

/** A stored tensor as a TensorFlow.js tensor of `shape` (checked against the stored shape). */
export function toTfTensor(tfjs: typeof tf, stored: unknown, name: string, shape: readonly number[]): tf.Tensor {
  const tensor = stored instanceof Tensor ? stored : ArrayBuffer.isView(stored) ? new Tensor(stored as TypedArray) : undefined;
  if (!tensor) throw new ConfigError(`checkpoint entry ${JSON.stringify(name)} is not a tensor`, { option: 'checkpoint' });
  const elements = shape.reduce((a, b) => a * b, 1);
  if (tensor.data.length !== elements) {
    throw new ConfigError(
      `checkpoint tensor ${JSON.stringify(name)} has shape [${tensor.shape.join(', ')}], the model expects [${shape.join(', ')}]`,
      { option: 'checkpoint' },
    );
  }
  const dtype = tensor.dtype === 'I32' ? 'int32' : tensor.dtype === 'BOOL' ? 'bool' : 'float32';
  const values =
    tensor.dtype === 'F32' || tensor.dtype === 'I32' || tensor.dtype === 'BOOL'
      ? tensor.data
      : Float32Array.from(tensor.data as ArrayLike<number>);
  return tfjs.tensor(values as Float32Array | Int32Array | Uint8Array, [...shape], dtype);
}
