// The default codec: the safetensors format, so Python's `safetensors` opens a
// savepoint checkpoint. Layout: 8-byte little-endian header length, a JSON header
// (dtype, shape, data_offsets per tensor, `__metadata__` of string values), then
// the raw little-endian tensor bytes. Tensors are named `<top-level key>.<path>`;
// each top-level key's non-tensor structure is a JSON string in `__metadata__`,
// with `{"__tensor__": name}` where a tensor was, so decode rebuilds the tree.
import type { CheckpointCodec, EncodedCheckpoint } from './codec.js';
import { CorruptCheckpointError, SavepointError } from './errors.js';
import { type Checkpoint, DTYPE_BYTES, type DType, isTypedArray, Tensor, type TypedArray, typedArrayFor } from './tensor.js';

const TENSOR_REF = '__tensor__';
const FLOAT_REF = '__float__';
/** Refuses headers larger than this when decoding: a corrupt length must not allocate gigabytes. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

export interface SafetensorsHeaderEntry {
  dtype: DType;
  shape: number[];
  data_offsets: [number, number];
}

export interface SafetensorsHeader {
  metadata: Record<string, string>;
  tensors: Record<string, SafetensorsHeaderEntry>;
  /** Bytes before the tensor data: 8 + header length. */
  dataStart: number;
}

/** Splits a checkpoint into string metadata (one JSON string per top-level key) and named tensors. */
export function splitCheckpoint(checkpoint: Checkpoint): { metadata: Record<string, string>; tensors: TensorEntry[] } {
  const tensors: TensorEntry[] = [];
  const names = new Set<string>();
  const metadata: Record<string, string> = {};

  const walk = (value: unknown, name: string): unknown => {
    if (value instanceof Tensor || isTypedArray(value)) {
      if (names.has(name)) {
        throw new SavepointError(
          'CONFIG',
          `two tensors would both be named "${name}"; rename a key so that dotted paths are unique`,
        );
      }
      names.add(name);
      const tensor = value instanceof Tensor ? value : new Tensor(value);
      tensors.push({ name, dtype: tensor.dtype, shape: [...tensor.shape], data: tensor.data });
      return { [TENSOR_REF]: name };
    }
    if (typeof value === 'number' && !Number.isFinite(value)) return { [FLOAT_REF]: String(value) };
    if (Array.isArray(value)) return value.map((item, i) => walk(item, `${name}.${i}`));
    if (value !== null && typeof value === 'object') {
      if (value instanceof Date) return value.toISOString();
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, `${name}.${k}`)]));
    }
    if (typeof value === 'bigint') return value.toString();
    return value;
  };

  for (const [key, value] of Object.entries(checkpoint)) {
    if (value === undefined) continue;
    if (key === '__metadata__') throw new SavepointError('CONFIG', 'a checkpoint key may not be named "__metadata__"');
    metadata[key] = JSON.stringify(walk(value, key));
  }
  return { metadata, tensors };
}

/** Rebuilds a checkpoint from metadata and decoded tensors (the inverse of `splitCheckpoint`). */
export function joinCheckpoint(metadata: Record<string, string>, tensors: Map<string, Tensor | TypedArray>): Checkpoint {
  const used = new Set<string>();
  const revive = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(revive);
    if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      if (keys.length === 1 && typeof record[TENSOR_REF] === 'string') {
        const name = record[TENSOR_REF] as string;
        const tensor = tensors.get(name);
        if (!tensor) throw new CorruptCheckpointError(`metadata names tensor "${name}", which the file does not hold`);
        used.add(name);
        return tensor;
      }
      if (keys.length === 1 && typeof record[FLOAT_REF] === 'string') return Number(record[FLOAT_REF]);
      return Object.fromEntries(keys.map((k) => [k, revive(record[k])]));
    }
    return value;
  };
  const checkpoint: Checkpoint = {};
  for (const [key, json] of Object.entries(metadata)) {
    try {
      checkpoint[key] = revive(JSON.parse(json));
    } catch (error) {
      if (error instanceof CorruptCheckpointError) throw error;
      checkpoint[key] = json; // a plain string from a file savepoint did not write
    }
  }
  // Tensors no metadata refers to (files written by other tools): group them by their first name segment.
  for (const [name, tensor] of tensors) {
    if (used.has(name)) continue;
    const dot = name.indexOf('.');
    const top = dot < 0 ? name : name.slice(0, dot);
    if (dot < 0) {
      checkpoint[top] = tensor;
      continue;
    }
    if (checkpoint[top] === undefined) checkpoint[top] = {};
    (checkpoint[top] as Record<string, unknown>)[name.slice(dot + 1)] = tensor;
  }
  return checkpoint;
}

/** Encodes metadata and tensors as one safetensors file, streaming views of the tensors' memory. */
export function encodeSafetensors(metadata: Record<string, string>, tensors: readonly TensorEntry[]): EncodedCheckpoint {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  let headerBytes = new TextEncoder().encode(json);
  // Pad with spaces to a multiple of 8, as the reference writer does, so tensor data is aligned.
  const pad = (8 - (headerBytes.byteLength % 8)) % 8;
  if (pad > 0) {
    json += ' '.repeat(pad);
    headerBytes = new TextEncoder().encode(json);
  }
  const prefix = new Uint8Array(8 + headerBytes.byteLength);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  prefix.set(headerBytes, 8);
  const byteLength = prefix.byteLength + offset;
  return {
    byteLength,
    async *chunks() {
      yield prefix;
      for (const t of tensors) {
        if (t.data.byteLength > 0) yield new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      }
    },
  };
}

/** Parses the header; `bytes` needs only the first `8 + headerLength` bytes. */
export function parseSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  if (bytes.byteLength < 8)
    throw new CorruptCheckpointError(`not a safetensors file: ${bytes.byteLength} bytes, need at least 8`);
  const length = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) throw new CorruptCheckpointError(`safetensors header length ${length} is implausible`);
  const dataStart = 8 + Number(length);
  if (bytes.byteLength < dataStart) {
    throw new CorruptCheckpointError(`safetensors header needs ${dataStart} bytes, got ${bytes.byteLength} (truncated file?)`);
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    throw new CorruptCheckpointError('safetensors header is not valid JSON', { cause: error });
  }
  const metadata = (parsed.__metadata__ ?? {}) as Record<string, string>;
  const tensors: Record<string, SafetensorsHeaderEntry> = {};
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === '__metadata__') continue;
    const e = entry as SafetensorsHeaderEntry;
    if (!e || !(e.dtype in DTYPE_BYTES) || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) {
      throw new CorruptCheckpointError(`safetensors header entry "${name}" is malformed`);
    }
    tensors[name] = e;
  }
  return { metadata, tensors, dataStart };
}

/** Decodes a whole safetensors file into metadata and tensors. */
export function decodeSafetensors(bytes: Uint8Array): {
  metadata: Record<string, string>;
  tensors: Map<string, Tensor | TypedArray>;
} {
  const header = parseSafetensorsHeader(bytes);
  const tensors = new Map<string, Tensor | TypedArray>();
  for (const [name, entry] of Object.entries(header.tensors)) {
    const [begin, end] = entry.data_offsets;
    const start = header.dataStart + begin;
    const stop = header.dataStart + end;
    const elements = entry.shape.reduce((a, b) => a * b, 1);
    if (stop > bytes.byteLength || end < begin || elements * DTYPE_BYTES[entry.dtype] !== end - begin) {
      throw new CorruptCheckpointError(`tensor "${name}" does not fit the file (truncated or corrupt)`);
    }
    // slice() copies into a fresh, aligned buffer: typed arrays need aligned offsets.
    const data = typedArrayFor(entry.dtype, bytes.slice(start, stop));
    const plain =
      entry.shape.length === 1 && ['F32', 'F64', 'I8', 'I16', 'I32', 'U8', 'U16', 'U32', 'I64', 'U64'].includes(entry.dtype);
    tensors.set(name, plain ? data : new Tensor(data, entry.shape, entry.dtype));
  }
  return { metadata: header.metadata, tensors };
}

export class SafetensorsCodec implements CheckpointCodec {
  readonly name = 'safetensors';
  readonly extension = '.safetensors';

  encode(checkpoint: Checkpoint): EncodedCheckpoint {
    const { metadata, tensors } = splitCheckpoint(checkpoint);
    return encodeSafetensors(metadata, tensors);
  }

  decode(bytes: Uint8Array): Checkpoint {
    const { metadata, tensors } = decodeSafetensors(bytes);
    return joinCheckpoint(metadata, tensors);
  }
}
