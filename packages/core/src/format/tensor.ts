// What a checkpoint holds: nested plain objects whose leaves are JSON values or
// tensors. A typed array is a 1-D tensor; `Tensor` adds a shape (and keeps a
// dtype the codec cannot map to a typed array, such as F16, as raw bytes).
import { constants } from 'node:buffer';
import { UnsupportedError } from '../store/errors.js';

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** safetensors dtype names. */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

export class Tensor {
  readonly data: TypedArray;
  readonly shape: readonly number[];
  readonly dtype: DType;

  constructor(data: TypedArray, shape: readonly number[] = [data.length], dtype: DType = dtypeOf(data)) {
    const elements = shape.reduce((a, b) => a * b, 1);
    const width = DTYPE_BYTES[dtype];
    if (!shape.every((d) => Number.isInteger(d) && d >= 0) || elements * width !== data.byteLength) {
      throw new RangeError(
        `tensor shape [${shape.join(', ')}] of ${dtype} needs ${elements * width} bytes, data has ${data.byteLength}`,
      );
    }
    this.data = data;
    this.shape = [...shape];
    this.dtype = dtype;
  }
}

export const DTYPE_BYTES: Record<DType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

export function isTypedArray(value: unknown): value is TypedArray {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

export function dtypeOf(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int8Array) return 'I8';
  if (data instanceof Int16Array) return 'I16';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Uint16Array) return 'U16';
  if (data instanceof Uint32Array) return 'U32';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof BigUint64Array) return 'U64';
  return 'U8';
}

/** Builds a typed array of `dtype` over `bytes` (which must be aligned; callers copy first). */
export function typedArrayFor(dtype: DType, bytes: Uint8Array): TypedArray {
  const { buffer, byteOffset, byteLength } = bytes;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buffer, byteOffset, byteLength / 4);
    case 'F64':
      return new Float64Array(buffer, byteOffset, byteLength / 8);
    case 'I8':
      return new Int8Array(buffer, byteOffset, byteLength);
    case 'I16':
      return new Int16Array(buffer, byteOffset, byteLength / 2);
    case 'I32':
      return new Int32Array(buffer, byteOffset, byteLength / 4);
    case 'U16':
    case 'F16':
    case 'BF16':
      return new Uint16Array(buffer, byteOffset, byteLength / 2);
    case 'U32':
      return new Uint32Array(buffer, byteOffset, byteLength / 4);
    case 'I64':
      return new BigInt64Array(buffer, byteOffset, byteLength / 8);
    case 'U64':
      return new BigUint64Array(buffer, byteOffset, byteLength / 8);
    default:
      return new Uint8Array(buffer, byteOffset, byteLength);
  }
}

/** A checkpoint: top-level keys (`meta`, `state_dict`, `message_hub`, `optimizer`, ...) to trees. */
export type Checkpoint = Record<string, unknown>;

/**
 * The largest typed array this Node.js makes: 4 GiB on Node 20 (`buffer.constants.MAX_LENGTH`),
 * far more from Node 22 on. A loaded tensor is one typed array.
 */
export const MAX_TENSOR_BYTES = constants.MAX_LENGTH;

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;

/**
 * The buffer a loaded tensor's bytes go into, allocated once at its final size. A tensor
 * past what this Node.js can allocate is refused up front, naming it and what to do,
 * before anything is read (V8's own message is "Invalid typed array length").
 */
export function tensorBuffer(name: string, byteLength: number, where: string): Uint8Array {
  checkTensorFits(name, byteLength, where);
  return new Uint8Array(byteLength);
}

/** Refuses a tensor this Node.js cannot hold as one typed array (see `tensorBuffer`). */
export function checkTensorFits(name: string, byteLength: number, where: string): void {
  if (byteLength > MAX_TENSOR_BYTES) {
    throw new UnsupportedError(
      'load',
      `${where}: tensor ${JSON.stringify(name)} holds ${gib(byteLength)}, and Node.js ${process.version} makes typed arrays of at most ${gib(MAX_TENSOR_BYTES)}, so it cannot be loaded whole; load it with Node.js 22 or later, or save it as several smaller tensors. The other tensors still load by name (readTensors).`,
    );
  }
}
