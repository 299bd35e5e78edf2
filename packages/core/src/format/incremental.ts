// The incremental checkpoint format (ours): a checkpoint folder whose manifest names,
// for each tensor, the content-addressed objects holding its bytes, in order. Each
// object is a safetensors file of one 1-D tensor named `data` (a whole tensor, or one
// chunk of a large one), recording the SHA-256 of its data like every file savepoint
// writes; the object is named by that SHA-256 and its dtype (run/layout.ts builds the
// name), so two checkpoints whose tensors hold the same bytes share the objects. A
// Python reader needs `json` and `safetensors` (docs/checkpoint-policy.md shows the loader).

import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { CorruptCheckpointError } from '../store/errors.js';
import { digestTensorData, type EncodedCheckpoint, encodeSafetensors, splitCheckpoint, type TensorEntry } from './safetensors.js';
import { readManifestJson } from './sharded.js';
import type { Checkpoint } from './tensor.js';
import { DTYPE_BYTES, type DType, type TypedArray } from './tensor.js';

export const INCREMENTAL_FORMAT = 'savepoint.incremental';
/** The one tensor an object holds. */
export const OBJECT_TENSOR_NAME = 'data';
/** Tensors above this are split into objects of this size at most: a change in one part of a large tensor uploads that part. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;

export interface IncrementalChunk {
  /** SHA-256 of the chunk's bytes (the object's data section). */
  sha256: string;
  bytes: number;
}

export interface IncrementalTensor {
  name: string;
  dtype: DType;
  shape: number[];
  /** The objects holding the tensor's bytes, in order (one, for a tensor up to the chunk size). */
  chunks: IncrementalChunk[];
}

export interface IncrementalManifest {
  format: typeof INCREMENTAL_FORMAT;
  version: 1;
  codec: 'safetensors';
  metadata: Record<string, string>;
  tensors: IncrementalTensor[];
}

/** One object to store: a chunk of a tensor, as a safetensors file. */
export interface TensorObject {
  dtype: DType;
  sha256: string;
  /** The chunk's bytes (a view of the tensor's memory, no copy). */
  data: TypedArray;
  encode(): EncodedCheckpoint;
}

/** The manifest of `checkpoint` and the objects it names (one per distinct dtype and chunk content). */
export async function planIncremental(
  checkpoint: Checkpoint,
  chunkBytes = DEFAULT_CHUNK_BYTES,
): Promise<{ manifest: IncrementalManifest; objects: TensorObject[] }> {
  const { metadata, tensors } = splitCheckpoint(checkpoint);
  const objects = new Map<string, TensorObject>();
  const entries: IncrementalTensor[] = [];
  for (const tensor of tensors) {
    const width = DTYPE_BYTES[tensor.dtype];
    const perChunk = Math.max(1, Math.floor(chunkBytes / width));
    const chunks: IncrementalChunk[] = [];
    // A tensor with no elements still has one (empty) object: every tensor names at least one.
    for (let start = 0; start === 0 || start < tensor.data.length; start += perChunk) {
      const data = tensor.data.subarray(start, Math.min(start + perChunk, tensor.data.length)) as TypedArray;
      const entry: TensorEntry = { name: OBJECT_TENSOR_NAME, dtype: tensor.dtype, shape: [data.length], data };
      const sha256 = await digestTensorData([entry]);
      chunks.push({ sha256, bytes: data.byteLength });
      const key = `${tensor.dtype}-${sha256}`;
      if (!objects.has(key)) {
        objects.set(key, {
          dtype: tensor.dtype,
          sha256,
          data,
          encode: () => encodeSafetensors({}, [entry], { dataSha256: sha256 }),
        });
      }
      if (data.length === 0) break;
    }
    entries.push({ name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, chunks });
  }
  const manifest: IncrementalManifest = {
    format: INCREMENTAL_FORMAT,
    version: 1,
    codec: 'safetensors',
    metadata,
    tensors: entries,
  };
  return { manifest, objects: [...objects.values()] };
}

/** The size of the object file holding `bytes` of data (header included): what a stored object must measure. */
export function objectFileBytes(dtype: DType, sha256: string, bytes: number): number {
  const width = DTYPE_BYTES[dtype];
  // The header's offsets come from the data's byteLength alone, and nothing is read
  // from it before `chunks()` (never called here): the same header as the object's.
  const sized = { byteLength: bytes } as TypedArray;
  return encodeSafetensors({}, [{ name: OBJECT_TENSOR_NAME, dtype, shape: [bytes / width], data: sized }], {
    dataSha256: sha256,
  }).byteLength;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Whether a parsed manifest is an incremental one (then `checkIncrementalManifest` says whether it is well formed). */
export function isIncrementalManifest(json: unknown): boolean {
  return isRecord(json) && json.format === INCREMENTAL_FORMAT;
}

/**
 * A parsed manifest, checked to be an incremental manifest of the shape savepoint writes:
 * each tensor named once, of a known dtype, a shape whose elements its chunks' bytes
 * cover exactly, every chunk a SHA-256 and a whole number of elements. A store is
 * hostile input: anything else is a `CorruptCheckpointError` saying what.
 */
export function checkIncrementalManifest(json: unknown, path: string, backendName: string): IncrementalManifest {
  const corrupt = (what: string) => new CorruptCheckpointError(`manifest ${path} ${what}`, { backend: backendName });
  if (!isRecord(json) || json.format !== INCREMENTAL_FORMAT || !Array.isArray(json.tensors)) {
    throw corrupt('is not a savepoint incremental manifest');
  }
  if (json.version !== 1 || json.codec !== 'safetensors') {
    throw corrupt(
      `has version ${JSON.stringify(json.version)} and codec ${JSON.stringify(json.codec)}; this savepoint reads version 1 of safetensors`,
    );
  }
  const metadata = json.metadata ?? {};
  if (!isRecord(metadata) || !Object.values(metadata).every((v) => typeof v === 'string')) {
    throw corrupt('has metadata that is not an object of strings');
  }
  const names = new Set<string>();
  for (const [i, tensor] of json.tensors.entries()) {
    const bad = (what: string) => corrupt(`tensor ${i + 1}: ${what}`);
    if (!isRecord(tensor)) throw bad('is not an object');
    const { name, dtype, shape, chunks } = tensor;
    if (typeof name !== 'string' || name.length === 0) throw bad('name is not a non-empty string');
    if (names.has(name)) throw bad(`${JSON.stringify(name)} is listed twice`);
    names.add(name);
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype))
      throw bad(`${name}: dtype ${JSON.stringify(dtype)} is unknown`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`${name}: shape is not a list of non-negative integers`);
    }
    const width = DTYPE_BYTES[dtype as DType];
    const elements = shape.reduce((a: number, b: number) => a * b, 1);
    if (!Array.isArray(chunks) || chunks.length === 0) throw bad(`${name}: chunks is not a non-empty list`);
    let total = 0;
    for (const chunk of chunks) {
      if (!isRecord(chunk) || typeof chunk.sha256 !== 'string' || !SHA256_HEX.test(chunk.sha256)) {
        throw bad(`${name}: a chunk's sha256 is not 64 hex digits`);
      }
      if (!Number.isSafeInteger(chunk.bytes) || (chunk.bytes as number) < 0 || (chunk.bytes as number) % width !== 0) {
        throw bad(`${name}: a chunk's bytes is not a whole number of ${dtype} elements`);
      }
      total += chunk.bytes as number;
    }
    if (total !== elements * width) throw bad(`${name}: its chunks hold ${total} bytes, its shape needs ${elements * width}`);
  }
  return json as unknown as IncrementalManifest;
}

/** The incremental manifest of the checkpoint folder `dir`, checked; undefined when its manifest is a sharded one. */
export async function readIncrementalManifest(
  store: StorageBackend,
  dir: string,
  options: SignalOptions = {},
): Promise<IncrementalManifest | undefined> {
  const { path, json } = await readManifestJson(store, dir, options);
  return isIncrementalManifest(json) ? checkIncrementalManifest(json, path, store.name) : undefined;
}
