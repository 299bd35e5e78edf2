// The checkpoint format: safetensors, so Python's `safetensors` opens a
// savepoint checkpoint. Layout: 8-byte little-endian header length, a JSON header
// (dtype, shape, data_offsets per tensor, `__metadata__` of string values), then
// the raw little-endian tensor bytes. Tensors are named `<top-level key>.<path>`;
// each top-level key's non-tensor structure is a JSON string in `__metadata__`,
// with `{"__tensor__": name}` where a tensor was, so decode rebuilds the tree.
import { createHash } from 'node:crypto';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { CorruptCheckpointError, SavepointError } from '../store/errors.js';
import { type Checkpoint, DTYPE_BYTES, type DType, isTypedArray, Tensor, type TypedArray, typedArrayFor } from './tensor.js';

const TENSOR_REF = '__tensor__';
/**
 * (ours) `__metadata__` key holding the SHA-256 (hex) of the data section, written at
 * encode and checked by every full decode and by `savepoint verify`: a flipped byte in
 * a tensor is found, not loaded. A header savepoint wrote without it is refused
 * (`checkDataHashRecorded`); another tool's file decodes with its structure checked.
 */
export const DATA_SHA256_KEY = 'savepoint:data_sha256';
/** (ours) The `__metadata__` keys savepoint owns: no other tool writes a key with this prefix. */
const SAVEPOINT_KEY_PREFIX = 'savepoint:';
/**
 * (ours) How deeply a metadata value's JSON may nest. Its readers (the tree rebuild, the
 * CLI's printing) recurse, and a header of deeply nested text would otherwise end in
 * "Maximum call stack size exceeded"; no checkpoint tree a program builds comes near it.
 * Saving refuses a deeper tree, so savepoint never writes a file it would refuse.
 */
export const MAX_METADATA_DEPTH = 256;
const FLOAT_REF = '__float__';
/**
 * The reference implementation's bound on the JSON header (100 MB): a corrupt length
 * must not allocate, or make a reader fetch, gigabytes. The one bound every reader uses.
 */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
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
  /** Bytes the tensors cover in the data section (the file must hold exactly these after the header). */
  dataBytes: number;
}

/** Splits a checkpoint into string metadata (one JSON string per top-level key) and named tensors. */
export function splitCheckpoint(checkpoint: Checkpoint): { metadata: Record<string, string>; tensors: TensorEntry[] } {
  const tensors: TensorEntry[] = [];
  const names = new Set<string>();
  const metadata: Record<string, string> = {};

  const walk = (value: unknown, name: string, depth = 1): unknown => {
    if (depth > MAX_METADATA_DEPTH) {
      throw new SavepointError(
        'CONFIG',
        `the checkpoint nests deeper than ${MAX_METADATA_DEPTH} levels at "${name}"; a reader could not rebuild it`,
      );
    }
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
    if (Array.isArray(value)) return value.map((item, i) => walk(item, `${name}.${i}`, depth + 1));
    if (value !== null && typeof value === 'object') {
      if (value instanceof Date) return value.toISOString();
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, `${name}.${k}`, depth + 1)]));
    }
    if (typeof value === 'bigint') return value.toString();
    return value;
  };

  for (const [key, value] of Object.entries(checkpoint)) {
    if (value === undefined) continue;
    if (key === '__metadata__' || key === DATA_SHA256_KEY) {
      throw new SavepointError('CONFIG', `a checkpoint key may not be named ${JSON.stringify(key)} (the format keeps it)`);
    }
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
    if (key === DATA_SHA256_KEY) continue; // the format's, not a checkpoint key
    if (key === '__proto__') throw new CorruptCheckpointError('metadata key "__proto__" is reserved');
    const parsed = parseMetadataValue(key, json);
    // A plain string from a file savepoint did not write stays a string.
    checkpoint[key] = parsed === NOT_JSON ? json : revive(parsed);
  }
  // Tensors no metadata refers to (files written by other tools): group them by their first name segment.
  for (const [name, tensor] of tensors) {
    if (used.has(name)) continue;
    const dot = name.indexOf('.');
    const top = dot < 0 ? name : name.slice(0, dot);
    if (dot < 0) {
      if (top === '__proto__') throw new CorruptCheckpointError('tensor name "__proto__" is reserved');
      checkpoint[top] = tensor;
      continue;
    }
    if (top === '__proto__' || name.slice(dot + 1) === '__proto__') {
      throw new CorruptCheckpointError(`tensor name ${JSON.stringify(name)} is reserved`);
    }
    if (checkpoint[top] === undefined) checkpoint[top] = {};
    const group = checkpoint[top];
    if (!isRecord(group) || group instanceof Tensor) {
      throw new CorruptCheckpointError(`tensor ${JSON.stringify(name)} clashes with the non-tensor key ${JSON.stringify(top)}`);
    }
    group[name.slice(dot + 1)] = tensor;
  }
  return checkpoint;
}

const DIGEST_SLICE_BYTES = 4 * 1024 * 1024;

function tensorBytes(t: TensorEntry): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * The most bytes handed to one hash update or one write: Node's hash refuses more than
 * 2 GiB at once ("data is too long") and one fs write takes at most 2 GiB, so a tensor
 * past that is hashed and streamed in slices.
 */
export const MAX_SLICE_BYTES = 64 * 1024 * 1024;

function* slices(bytes: Uint8Array, size = MAX_SLICE_BYTES): Iterable<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += size) yield bytes.subarray(offset, offset + size);
}

function digestTensorDataSync(tensors: readonly TensorEntry[]): string {
  const hash = createHash('sha256');
  for (const t of tensors) for (const slice of slices(tensorBytes(t))) hash.update(slice);
  return hash.digest('hex');
}

/**
 * The SHA-256 of the data section `tensors` make, in 4 MiB slices with a turn of the
 * event loop between them: hashing a large state in the background (asyncSave) must
 * not stall the training loop that shares the thread.
 */
export async function digestTensorData(tensors: readonly TensorEntry[]): Promise<string> {
  const hash = createHash('sha256');
  for (const t of tensors) {
    const bytes = tensorBytes(t);
    for (let offset = 0; offset < bytes.byteLength; offset += DIGEST_SLICE_BYTES) {
      hash.update(bytes.subarray(offset, offset + DIGEST_SLICE_BYTES));
      await yieldToEventLoop();
    }
  }
  return hash.digest('hex');
}

/** Encodes metadata and tensors as one safetensors file, streaming views of the tensors' memory. */
export function encodeSafetensors(
  metadata: Record<string, string>,
  tensors: readonly TensorEntry[],
  options: { dataSha256?: string } = {},
): EncodedCheckpoint {
  // The header comes first in the file, so the data's hash is taken before anything is
  // sent: one read of the tensors' memory (no copy), then the upload streams it. Savers
  // pass it in from `digestTensorData`, which does not hold the event loop.
  const dataSha256 = options.dataSha256 ?? digestTensorDataSync(tensors);
  const header: Record<string, unknown> = { __metadata__: { ...metadata, [DATA_SHA256_KEY]: dataSha256 } };
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
    header: prefix,
    async *chunks() {
      yield prefix;
      for (const t of tensors) yield* slices(tensorBytes(t));
    },
  };
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);
const isIndex = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/**
 * Parses and validates the header as the reference implementation does: a JSON object;
 * `__metadata__` (if any) maps strings to strings; every tensor has a known dtype, a
 * shape of non-negative integers and two offsets whose span is exactly
 * elements x dtype size; sorted by offset, the tensors start at 0 and are contiguous
 * (no gap, no overlap). `bytes` needs only the first `8 + headerLength` bytes; whether
 * the data section is exactly covered is checked where its size is known
 * (`checkDataSection`). Anything else is a `CorruptCheckpointError` naming what is wrong.
 */
export function parseSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  if (bytes.byteLength < 8)
    throw new CorruptCheckpointError(`not a safetensors file: ${bytes.byteLength} bytes, need at least 8`);
  const length = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new CorruptCheckpointError(`safetensors header length ${length} is over the ${MAX_HEADER_BYTES}-byte bound`);
  }
  const dataStart = 8 + Number(length);
  if (bytes.byteLength < dataStart) {
    throw new CorruptCheckpointError(`safetensors header needs ${dataStart} bytes, got ${bytes.byteLength} (truncated file?)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    throw new CorruptCheckpointError('safetensors header is not valid UTF-8 JSON', { cause: error });
  }
  if (!isRecord(parsed))
    throw new CorruptCheckpointError(`safetensors header is not a JSON object (got ${parsed === null ? 'null' : typeof parsed})`);
  const rawMetadata = parsed.__metadata__ ?? {};
  if (!isRecord(rawMetadata)) throw new CorruptCheckpointError('safetensors __metadata__ is not an object of strings');
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(rawMetadata)) {
    if (typeof value !== 'string') {
      throw new CorruptCheckpointError(`safetensors __metadata__ value of ${JSON.stringify(key)} is not a string`);
    }
    metadata[key] = value;
  }
  const tensors: Record<string, SafetensorsHeaderEntry> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === '__metadata__') continue;
    const bad = (what: string) => new CorruptCheckpointError(`safetensors tensor ${JSON.stringify(name)}: ${what}`);
    if (!isRecord(entry)) throw bad('its entry is not an object');
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isIndex)) throw bad('shape is not a list of non-negative integers');
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !isIndex(offsets[0]) ||
      !isIndex(offsets[1]) ||
      offsets[1] < offsets[0]
    ) {
      throw bad('data_offsets is not [begin, end] with 0 <= begin <= end');
    }
    let elements = 1;
    for (const dim of shape as number[]) {
      elements *= dim;
      if (!Number.isSafeInteger(elements)) throw bad('its shape is too large');
    }
    const [begin, end] = offsets as [number, number];
    if (elements * DTYPE_BYTES[dtype as DType] !== end - begin) {
      throw bad(
        `shape ${JSON.stringify(shape)} of ${dtype} needs ${elements * DTYPE_BYTES[dtype as DType]} bytes, its offsets span ${end - begin}`,
      );
    }
    tensors[name] = { dtype: dtype as DType, shape: shape as number[], data_offsets: [begin, end] };
    spans.push({ name, begin, end });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const span of spans) {
    if (span.begin !== expected) {
      throw new CorruptCheckpointError(
        `safetensors tensor ${JSON.stringify(span.name)} starts at ${span.begin}, expected ${expected} (${span.begin < expected ? 'overlap' : 'gap'})`,
      );
    }
    expected = span.end;
  }
  return { metadata, tensors, dataStart, dataBytes: expected };
}

/** The data section must be covered exactly: nothing missing (truncated) and nothing after the last tensor. */
export function checkDataSection(header: SafetensorsHeader, fileBytes: number): void {
  const actual = fileBytes - header.dataStart;
  if (actual !== header.dataBytes) {
    throw new CorruptCheckpointError(
      `safetensors data section holds ${actual} bytes, its tensors cover ${header.dataBytes} (${actual < header.dataBytes ? 'truncated file' : 'trailing bytes'})`,
    );
  }
}

/**
 * (ours) Whether savepoint wrote this header, read from the header alone: it holds a
 * key of savepoint's own namespace (`savepoint:`), or its metadata names one of its
 * tensors the way savepoint's tree encoding does (`{"__tensor__": name}`), which every
 * tensor savepoint writes is named by. Python's `safetensors` and other tools write
 * neither. (A folder checkpoint's shards are savepoint's by their manifest: readers pass
 * `savepointWritten` for them.)
 */
export function isSavepointHeader(header: SafetensorsHeader): boolean {
  const keys = Object.keys(header.metadata);
  if (keys.some((key) => key.startsWith(SAVEPOINT_KEY_PREFIX))) return true;
  return keys.some((key) => tensorRefs(header.metadata[key] as string, key).some((name) => Object.hasOwn(header.tensors, name)));
}

/**
 * (ours) A header savepoint wrote records its data's SHA-256: one that does not lost it
 * (an edit), and its bytes cannot be trusted, so it is refused rather than loaded unchecked.
 */
export function checkDataHashRecorded(header: SafetensorsHeader, options: { savepointWritten?: boolean } = {}): void {
  if (header.metadata[DATA_SHA256_KEY] !== undefined) return;
  if (options.savepointWritten || isSavepointHeader(header)) {
    throw new CorruptCheckpointError(
      `the header was written by savepoint but records no data SHA-256 (${DATA_SHA256_KEY}): it was edited, and its bytes cannot be checked`,
    );
  }
}

/** (ours) The data section against the SHA-256 its header records; nothing to check for another tool's file, which records none. */
export function checkDataHash(header: SafetensorsHeader, data: Uint8Array, options: { savepointWritten?: boolean } = {}): void {
  checkDataHashRecorded(header, options);
  const recorded = header.metadata[DATA_SHA256_KEY];
  if (recorded === undefined) return;
  const actual = createHash('sha256').update(data).digest('hex');
  if (actual !== recorded) {
    throw new CorruptCheckpointError(
      `the tensor data does not match the SHA-256 its header records (${recorded.slice(0, 12)}…, the bytes give ${actual.slice(0, 12)}…): the file was changed or damaged after it was written`,
    );
  }
}

/**
 * Decodes a whole safetensors file into metadata and tensors, checking the data's
 * SHA-256; a header savepoint wrote (or `savepointWritten`: a folder's shard) must record one.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: { savepointWritten?: boolean } = {},
): {
  metadata: Record<string, string>;
  tensors: Map<string, Tensor | TypedArray>;
} {
  const header = parseSafetensorsHeader(bytes);
  checkDataSection(header, bytes.byteLength);
  checkDataHash(header, bytes.subarray(header.dataStart), options);
  const tensors = new Map<string, Tensor | TypedArray>();
  for (const [name, entry] of Object.entries(header.tensors)) {
    const [begin, end] = entry.data_offsets;
    // slice() copies into a fresh, aligned buffer: typed arrays need aligned offsets.
    tensors.set(name, tensorFromBytes(entry, bytes.slice(header.dataStart + begin, header.dataStart + end)));
  }
  return { metadata: header.metadata, tensors };
}

const PLAIN_DTYPES: readonly DType[] = ['F32', 'F64', 'I8', 'I16', 'I32', 'U8', 'U16', 'U32', 'I64', 'U64'];

/**
 * One tensor from its own bytes (a fresh, aligned copy): a 1-D tensor of a dtype with a
 * typed array comes back as that typed array, anything else as a `Tensor`.
 */
export function tensorFromBytes(entry: { dtype: DType; shape: readonly number[] }, bytes: Uint8Array): Tensor | TypedArray {
  const data = typedArrayFor(entry.dtype, bytes);
  return entry.shape.length === 1 && PLAIN_DTYPES.includes(entry.dtype) ? data : new Tensor(data, entry.shape, entry.dtype);
}

/** The tensor names a top-level key's metadata JSON refers to (`{"__tensor__": name}` leaves). */
export function tensorRefs(json: string, key = ''): string[] {
  const names: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) for (const item of value) walk(item);
    else if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      if (keys.length === 1 && typeof record[TENSOR_REF] === 'string') names.push(record[TENSOR_REF] as string);
      else for (const key of keys) walk(record[key]);
    }
  };
  const parsed = parseMetadataValue(key, json);
  // A plain string from a file savepoint did not write names no tensor.
  if (parsed !== NOT_JSON) walk(parsed);
  return names;
}

/** What `parseMetadataValue` returns for a value that is not JSON (another tool's plain text). */
export const NOT_JSON: unique symbol = Symbol('not JSON');

/**
 * A metadata value as JSON, or `NOT_JSON` for plain text. JSON nested deeper than
 * `MAX_METADATA_DEPTH` is a `CorruptCheckpointError`: everything that reads it recurses.
 */
export function parseMetadataValue(key: string, json: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return NOT_JSON;
  }
  // Counted on the text, without recursion: brackets inside JSON strings do not nest.
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      // A backslash escapes the next character.
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_METADATA_DEPTH) {
        throw new CorruptCheckpointError(
          `metadata value${key ? ` of ${JSON.stringify(key)}` : ''} nests deeper than ${MAX_METADATA_DEPTH} levels: not a checkpoint savepoint wrote, or a corrupt one`,
        );
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return value;
}

/** A checkpoint encoded as safetensors bytes, streamed from views of the tensors' memory. */
export interface EncodedCheckpoint {
  /** Exact size in bytes, known before the first chunk. */
  readonly byteLength: number;
  /** The file's first bytes: the 8-byte length and the JSON header (what a checkpoint's seal hashes, seal.ts). */
  readonly header: Uint8Array;
  /** The bytes, in order. Can be called more than once and yields the same bytes each time. */
  chunks(): AsyncIterable<Uint8Array>;
}

/** The file extension of a checkpoint file; the default name templates end with it. */
export const CHECKPOINT_EXTENSION = '.safetensors';

/** A checkpoint tree as one safetensors file (its data hash taken at once: see `digestTensorData` for the yielding one). */
export function encodeCheckpoint(checkpoint: Checkpoint): EncodedCheckpoint {
  const { metadata, tensors } = splitCheckpoint(checkpoint);
  return encodeSafetensors(metadata, tensors);
}

/** A whole safetensors file back into a checkpoint tree (checking the data's SHA-256 when recorded). */
export function decodeCheckpoint(bytes: Uint8Array): Checkpoint {
  const { metadata, tensors } = decodeSafetensors(bytes);
  return joinCheckpoint(metadata, tensors);
}
