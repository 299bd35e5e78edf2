// Reads a checkpoint without reading the whole of it, in the spirit of safetensors'
// `safe_open`: the header (and a folder's manifest) from small range reads, then each
// tensor on demand by range reads, adjacent ranges coalesced into one request. Works
// for single files and directory checkpoints (the manifest says which shard holds which
// tensor). Everything read is validated as the full decoder would.
import { createHash } from 'node:crypto';
import pMap from 'p-map';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { CorruptCheckpointError, NotFoundError, SavepointError } from '../store/errors.js';
import { checkIncrementalManifest, isIncrementalManifest, objectFileBytes } from './incremental.js';
import {
  checkDataHashRecorded,
  checkDataSection,
  DATA_SHA256_KEY,
  joinCheckpoint,
  MAX_HEADER_BYTES,
  parseSafetensorsHeader,
  type SafetensorsHeader,
  tensorFromBytes,
  tensorRefs,
} from './safetensors.js';
import { checkShardManifest, MANIFEST_NAME, readManifestJson, TensorOwners } from './sharded.js';
import { type Checkpoint, checkTensorFits, type DType, type Tensor, type TypedArray, tensorBuffer } from './tensor.js';

/** The first read takes this much, so that most headers arrive in one request. */
const FIRST_READ_BYTES = 16 * 1024;
/** Two tensors closer than this are fetched in one request (the gap is read and dropped). */
const COALESCE_GAP_BYTES = 1024 * 1024;
/** A coalesced request ends before it passes this: one request's bytes are one buffer. */
const COALESCE_MAX_BYTES = 256 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  bytes: number;
  /** The shard file holding it, for directory checkpoints. */
  shard?: string | undefined;
}

export interface OpenCheckpointOptions extends SignalOptions {
  /** Range requests in flight at once when reading several tensors (or shards). Default 4. */
  concurrency?: number;
  /**
   * Where an incremental checkpoint's objects are (the run's layout knows: run/layout.ts).
   * Without it, an incremental checkpoint is refused, saying to open it through its run.
   */
  objectPath?: ((dtype: DType, sha256: string) => string) | undefined;
}

interface Located {
  info: TensorInfo;
  file: string;
  begin: number;
  end: number;
  /**
   * (ours) An incremental checkpoint's tensor: the objects holding it, in order, each
   * read whole and checked against the SHA-256 that names it (format/incremental.ts).
   */
  parts?: { file: string; begin: number; end: number; sha256: string }[] | undefined;
}

/**
 * Reads the header of the safetensors file at `path` with one or two range reads; returns
 * it and the bytes fetched. A header savepoint wrote (or, with `savepointWritten`, a
 * folder's shard) must record its data's SHA-256, though nothing here reads the data.
 */
export async function readSafetensorsHeader(
  store: StorageBackend,
  path: string,
  options: SignalOptions & { savepointWritten?: boolean } = {},
): Promise<{ header: SafetensorsHeader; fileBytes: number; bytesRead: number; headerBytes: Uint8Array }> {
  const signalOnly = { signal: options.signal };
  const { size: fileBytes } = await store.stat(path, signalOnly);
  const first = await store.get(path, { ...signalOnly, range: { start: 0, end: FIRST_READ_BYTES } });
  const headerEnd = safetensorsHeaderEnd(store, path, first);
  let bytes = first;
  if (headerEnd > first.byteLength) {
    const rest = await store.get(path, { ...signalOnly, range: { start: first.byteLength, end: headerEnd } });
    bytes = new Uint8Array(first.byteLength + rest.byteLength);
    bytes.set(first, 0);
    bytes.set(rest, first.byteLength);
  }
  const headerBytes = bytes.subarray(0, Math.min(bytes.byteLength, headerEnd));
  const header = checkedSafetensorsHeader(store, path, headerBytes, fileBytes, options.savepointWritten);
  return { header, fileBytes, bytesRead: bytes.byteLength, headerBytes };
}

/**
 * Where a safetensors header ends (its 8-byte length and JSON), from the file's first
 * bytes (at least 8); a length past MAX_HEADER_BYTES is refused before anything is read.
 */
export function safetensorsHeaderEnd(store: StorageBackend, path: string, first: Uint8Array): number {
  if (first.byteLength < 8) {
    throw new CorruptCheckpointError(`${path} is ${first.byteLength} bytes: too short to be a safetensors file`, {
      backend: store.name,
    });
  }
  const length = new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new CorruptCheckpointError(
      `${path}: its header claims ${length} bytes (over ${MAX_HEADER_BYTES}); not a safetensors file, or a corrupt one`,
      { backend: store.name },
    );
  }
  return 8 + Number(length);
}

/** Parses and checks a safetensors header (its bytes up to where it ends) against the file's size. */
export function checkedSafetensorsHeader(
  store: StorageBackend,
  path: string,
  headerBytes: Uint8Array,
  fileBytes: number,
  savepointWritten: boolean | undefined,
): SafetensorsHeader {
  try {
    const header = parseSafetensorsHeader(headerBytes);
    checkDataSection(header, fileBytes);
    checkDataHashRecorded(header, { savepointWritten });
    return header;
  } catch (error) {
    if (error instanceof CorruptCheckpointError) {
      throw new CorruptCheckpointError(`${path}: ${error.message.replace(/^\[core\] /, '')}`, { backend: store.name });
    }
    throw error;
  }
}

/** A checkpoint opened for reading by parts. */
export class CheckpointReader {
  readonly path: string;
  readonly shape: 'file' | 'directory';
  /** The checkpoint's metadata: one JSON string per top-level key (the non-tensor structure). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly #store: StorageBackend;
  readonly #tensors: Map<string, Located>;
  readonly #options: OpenCheckpointOptions;
  #bytesRead: number;

  constructor(init: {
    store: StorageBackend;
    path: string;
    shape: 'file' | 'directory';
    metadata: Record<string, string>;
    tensors: Map<string, Located>;
    bytesRead: number;
    options: OpenCheckpointOptions;
  }) {
    this.#store = init.store;
    this.path = init.path;
    this.shape = init.shape;
    this.metadata = init.metadata;
    this.#tensors = init.tensors;
    this.#bytesRead = init.bytesRead;
    this.#options = init.options;
  }

  /** (ours) Whether this is an incremental checkpoint (its tensors in the run's objects). */
  get incremental(): boolean {
    return [...this.#tensors.values()].some((t) => t.parts !== undefined);
  }

  /** (ours) An incremental checkpoint's objects, as `objectPath` names them, with their data sizes. */
  objectFiles(): Map<string, number> {
    const files = new Map<string, number>();
    for (const t of this.#tensors.values()) for (const p of t.parts ?? []) files.set(p.file, p.end);
    return files;
  }

  /** Bytes fetched from the store so far (headers, manifest and tensors). */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** The checkpoint's top-level keys (`meta`, `state_dict`, `optimizer`, ...). */
  get keys(): string[] {
    const keys = new Set(Object.keys(this.metadata).filter((key) => key !== DATA_SHA256_KEY));
    for (const name of this.#tensors.keys()) keys.add(name.split('.')[0] as string);
    return [...keys];
  }

  get tensorNames(): string[] {
    return [...this.#tensors.keys()];
  }

  tensorInfo(name: string): TensorInfo {
    return this.#locate(name).info;
  }

  /** All tensors' names, dtypes, shapes and sizes, without reading any of them. */
  tensorInfos(): TensorInfo[] {
    return [...this.#tensors.values()].map((t) => t.info);
  }

  async readTensor(name: string): Promise<Tensor | TypedArray> {
    return (await this.readTensors([name])).get(name) as Tensor | TypedArray;
  }

  /**
   * Reads the named tensors with as few range requests as their layout allows: per file,
   * tensors closer than 1 MiB to each other are fetched in one request.
   */
  async readTensors(names: readonly string[]): Promise<Map<string, Tensor | TypedArray>> {
    const located = [...new Set(names)].map((name) => this.#locate(name));
    // Refused before any request: a tensor this Node.js cannot hold as one typed array.
    for (const t of located) checkTensorFits(t.info.name, t.info.bytes, this.path);
    const out = new Map<string, Tensor | TypedArray>();
    const wanted = located.filter((t) => t.parts === undefined);
    await pMap(
      located.filter((t) => t.parts !== undefined),
      async (t) => out.set(t.info.name, tensorFromBytes(t.info, await this.#readParts(t))),
      { concurrency: this.#options.concurrency ?? 4 },
    );
    const byFile = new Map<string, Located[]>();
    for (const t of wanted) byFile.set(t.file, [...(byFile.get(t.file) ?? []), t]);
    const runs: { file: string; begin: number; end: number; members: Located[] }[] = [];
    for (const [file, members] of byFile) {
      members.sort((a, b) => a.begin - b.begin);
      let run: (typeof runs)[number] | undefined;
      for (const t of members) {
        if (run && t.begin - run.end <= COALESCE_GAP_BYTES && Math.max(run.end, t.end) - run.begin <= COALESCE_MAX_BYTES) {
          run.end = Math.max(run.end, t.end);
          run.members.push(t);
        } else {
          run = { file, begin: t.begin, end: t.end, members: [t] };
          runs.push(run);
        }
      }
    }
    await pMap(
      runs,
      async (run) => {
        const bytes =
          run.end === run.begin
            ? new Uint8Array(0)
            : await this.#store.get(run.file, { signal: this.#options.signal, range: { start: run.begin, end: run.end } });
        this.#bytesRead += bytes.byteLength;
        if (bytes.byteLength !== run.end - run.begin) {
          throw new CorruptCheckpointError(
            `${run.file}: asked for bytes ${run.begin}-${run.end}, got ${bytes.byteLength} (the file changed or is truncated)`,
            { backend: this.#store.name },
          );
        }
        for (const t of run.members) {
          // slice() copies into a fresh, aligned buffer: typed arrays need aligned offsets.
          out.set(t.info.name, tensorFromBytes(t.info, bytes.slice(t.begin - run.begin, t.end - run.begin)));
        }
      },
      { concurrency: this.#options.concurrency ?? 4 },
    );
    return out;
  }

  /** Loads the listed top-level keys (all when omitted), reading only their tensors. */
  async load(keys?: readonly string[]): Promise<Checkpoint> {
    const available = this.keys;
    const chosen = keys ?? available;
    const missing = chosen.filter((key) => !available.includes(key));
    if (missing.length > 0) {
      throw new NotFoundError(this.path, {
        backend: this.#store.name,
        message: `${this.path} holds no key ${missing.map((k) => JSON.stringify(k)).join(', ')}; it holds: ${available.join(', ')}`,
      });
    }
    const metadata: Record<string, string> = {};
    const names = new Set<string>();
    for (const key of chosen) {
      const json = this.metadata[key];
      if (json !== undefined) {
        metadata[key] = json;
        for (const name of tensorRefs(json, key)) names.add(name);
      }
      // Tensors no metadata names (files from other tools) belong to their first name segment.
      for (const name of this.#tensors.keys()) if (name === key || name.startsWith(`${key}.`)) names.add(name);
    }
    return joinCheckpoint(metadata, await this.readTensors([...names]));
  }

  /** An incremental tensor's bytes: each object's data read and checked against the SHA-256 it is named by. */
  async #readParts(t: Located): Promise<Uint8Array> {
    const out = tensorBuffer(t.info.name, t.info.bytes, this.path);
    let offset = 0;
    for (const part of t.parts ?? []) {
      const bytes =
        part.end === part.begin
          ? new Uint8Array(0)
          : await this.#store.get(part.file, { signal: this.#options.signal, range: { start: part.begin, end: part.end } });
      this.#bytesRead += bytes.byteLength;
      const actual = bytes.byteLength === part.end - part.begin ? createHash('sha256').update(bytes).digest('hex') : undefined;
      if (actual !== part.sha256) {
        throw new CorruptCheckpointError(
          `${part.file}: its data does not match the SHA-256 it is named by (tensor ${JSON.stringify(t.info.name)} of ${this.path}): the object was changed or damaged after it was written`,
          { backend: this.#store.name },
        );
      }
      out.set(bytes, offset);
      offset += bytes.byteLength;
    }
    return out;
  }

  #locate(name: string): Located {
    const found = this.#tensors.get(name);
    if (!found) {
      throw new NotFoundError(this.path, {
        backend: this.#store.name,
        message: `${this.path} holds no tensor ${JSON.stringify(name)}`,
      });
    }
    return found;
  }
}

/**
 * Opens the checkpoint at `path` (a single file or a directory checkpoint) by reading
 * its header (and manifest) only. `NotFoundError` when there is none or its save did
 * not finish; `CorruptCheckpointError` when what is there does not validate.
 */
export async function openCheckpoint(
  store: StorageBackend,
  path: string,
  options: OpenCheckpointOptions = {},
): Promise<CheckpointReader> {
  const signalOnly = { signal: options.signal };
  if (await store.isFile(path, signalOnly)) {
    const { header, bytesRead } = await readSafetensorsHeader(store, path, signalOnly);
    const tensors = new Map<string, Located>();
    for (const [name, entry] of Object.entries(header.tensors)) tensors.set(name, locate(name, entry, path, header));
    return new CheckpointReader({ store, path, shape: 'file', metadata: header.metadata, tensors, bytesRead, options });
  }
  const manifestPath = store.joinPath(path, MANIFEST_NAME);
  if (!(await store.isFile(manifestPath, signalOnly))) {
    const incomplete = await store.isDir(path, signalOnly);
    throw new NotFoundError(path, {
      backend: store.name,
      message: incomplete
        ? `checkpoint folder ${path} has no ${MANIFEST_NAME}: its save did not finish, so it is not a checkpoint`
        : `no checkpoint at ${path}`,
    });
  }
  const { json } = await readManifestJson(store, path, signalOnly);
  if (isIncrementalManifest(json)) return openIncremental(store, path, manifestPath, json, options);
  const manifest = checkShardManifest(json, manifestPath, store.name);
  let bytesRead = (await store.stat(manifestPath, signalOnly)).size;
  const tensors = new Map<string, Located>();
  const headers = await pMap(
    manifest.shards,
    async (shard) => {
      const file = store.joinPath(path, shard.file);
      const read = await readSafetensorsHeader(store, file, { ...signalOnly, savepointWritten: true });
      if (read.fileBytes !== shard.bytes) {
        throw new CorruptCheckpointError(`${file} has ${read.fileBytes} bytes, its manifest says ${shard.bytes}`, {
          backend: store.name,
        });
      }
      return { file, shard: shard.file, ...read };
    },
    { concurrency: options.concurrency ?? 4 },
  );
  const owners = new TensorOwners(path, store.name);
  for (const { file, shard, header, bytesRead: n } of headers) {
    bytesRead += n;
    owners.claim(shard, Object.keys(header.tensors));
    for (const [name, entry] of Object.entries(header.tensors)) tensors.set(name, locate(name, entry, file, header, shard));
  }
  return new CheckpointReader({ store, path, shape: 'directory', metadata: manifest.metadata, tensors, bytesRead, options });
}

function locate(
  name: string,
  entry: SafetensorsHeader['tensors'][string],
  file: string,
  header: SafetensorsHeader,
  shard?: string,
): Located {
  const [begin, end] = entry.data_offsets;
  return {
    info: { name, dtype: entry.dtype, shape: entry.shape, bytes: end - begin, shard },
    file,
    begin: header.dataStart + begin,
    end: header.dataStart + end,
  };
}

/**
 * (ours) An incremental checkpoint: its manifest says which objects hold each tensor.
 * An object's header is the one savepoint writes for its dtype, size and hash, so its
 * data starts where that header ends (checked against the object's size); the bytes are
 * checked against their hash as they are read.
 */
async function openIncremental(
  store: StorageBackend,
  path: string,
  manifestPath: string,
  json: unknown,
  options: OpenCheckpointOptions,
): Promise<CheckpointReader> {
  const manifest = checkIncrementalManifest(json, manifestPath, store.name);
  const objectPath = options.objectPath;
  if (!objectPath) {
    throw new SavepointError(
      'CONFIG',
      `${path} is an incremental checkpoint: its tensors are objects of its run; open it through its run (Run.open(workDir).load(name), loadCheckpoint from @savepoint/core)`,
      { backend: store.name },
    );
  }
  const bytesRead = (await store.stat(manifestPath, { signal: options.signal })).size;
  const tensors = new Map<string, Located>();
  for (const t of manifest.tensors) {
    const parts = t.chunks.map((chunk) => {
      const size = objectFileBytes(t.dtype, chunk.sha256, chunk.bytes);
      return { file: objectPath(t.dtype, chunk.sha256), begin: size - chunk.bytes, end: size, sha256: chunk.sha256 };
    });
    const bytes = t.chunks.reduce((sum, c) => sum + c.bytes, 0);
    tensors.set(t.name, {
      info: { name: t.name, dtype: t.dtype, shape: t.shape, bytes },
      file: manifestPath,
      begin: 0,
      end: 0,
      parts,
    });
  }
  return new CheckpointReader({ store, path, shape: 'directory', metadata: manifest.metadata, tensors, bytesRead, options });
}
