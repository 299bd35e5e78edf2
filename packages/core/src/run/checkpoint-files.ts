// Writing and reading checkpoints through the store contract: single files and
// directory-shaped (sharded) checkpoints, plus the `last_checkpoint` pointer.
// Everything here is store-agnostic; it only calls StorageBackend methods.
import { createHash, randomBytes } from 'node:crypto';
import { checkCheckpointBytes } from '../format/check-bytes.js';
import { isIncrementalManifest } from '../format/incremental.js';
import { type CheckpointReader, type OpenCheckpointOptions, openCheckpoint } from '../format/reader.js';
import {
  CHECKPOINT_EXTENSION,
  digestTensorData,
  encodeCheckpoint,
  encodeSafetensors,
  joinCheckpoint,
  splitCheckpoint,
} from '../format/safetensors.js';
import { checkSeal } from '../format/seal.js';
import {
  checkShardManifest,
  isShardFileName,
  MANIFEST_NAME,
  readManifest,
  readManifestJson,
  type ShardManifest,
  shardFileName,
  TensorOwners,
} from '../format/sharded.js';
import { streamSafetensorsFile } from '../format/stream-load.js';
import type { Checkpoint, Tensor, TypedArray } from '../format/tensor.js';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { CorruptCheckpointError, NotFoundError } from '../store/errors.js';
import { settledMap } from '../store/settled-map.js';
import { isTempName } from '../store/temp-names.js';
import { objectPathNear } from './layout.js';

/** Shards of a directory checkpoint uploaded or downloaded at once. */
export const DEFAULT_SHARD_CONCURRENCY = 4;

export type SaveOptions = SignalOptions;

/**
 * Streams `chunks` to the store and returns the size of exactly what was sent, and its
 * SHA-256 when `hashed` (a second pass over every byte, on the thread that saves: a run's
 * own saves of a single file skip it, their seal and the header's data hash cover the file).
 */
async function putChunks(
  backend: StorageBackend,
  path: string,
  chunks: AsyncIterable<Uint8Array>,
  options: SignalOptions,
  hashed: boolean,
): Promise<{ sha256?: string; bytes: number }> {
  const hash = hashed ? createHash('sha256') : undefined;
  let bytes = 0;
  async function* tap() {
    for await (const chunk of chunks) {
      hash?.update(chunk);
      bytes += chunk.byteLength;
      yield chunk;
    }
  }
  // The chunks are the header and views of the tensors, unchanged until the put resolves.
  await backend.put(path, tap(), { ...options, stableChunks: true });
  return { sha256: hash?.digest('hex'), bytes };
}

async function putHashed(
  backend: StorageBackend,
  path: string,
  chunks: AsyncIterable<Uint8Array>,
  options: SignalOptions,
): Promise<{ sha256: string; bytes: number }> {
  const { sha256, bytes } = await putChunks(backend, path, chunks, options, true);
  return { sha256: sha256 as string, bytes };
}

/** Encodes for an upload; the data hash is taken without holding the event loop. */
async function encodeForUpload(checkpoint: Checkpoint) {
  const { metadata, tensors } = splitCheckpoint(checkpoint);
  return encodeSafetensors(metadata, tensors, { dataSha256: await digestTensorData(tensors) });
}

/** Writes a single-file checkpoint atomically (the store's put is all or nothing). */
export async function saveCheckpointFile(
  backend: StorageBackend,
  path: string,
  checkpoint: Checkpoint,
  options: SaveOptions = {},
): Promise<{ sha256: string; bytes: number; seal: string }> {
  const encoded = await encodeForUpload(checkpoint);
  const written = await putHashed(backend, path, encoded.chunks(), options);
  return { ...written, seal: sealOf(encoded.header) };
}

/**
 * A run's save of a single-file checkpoint: `saveCheckpointFile` without the SHA-256 of
 * the whole file, which nothing of the run reads. The seal the pointer records covers
 * the header, and the header's data hash (taken before the header is written) covers
 * the rest. Hashing the file again cost every save a pass over the state (about 0.13 s
 * per 126 MB with SHA extensions), on the save worker beside training and in the time
 * of the last save.
 */
export async function writeCheckpointFile(
  backend: StorageBackend,
  path: string,
  checkpoint: Checkpoint,
  options: SaveOptions = {},
): Promise<{ bytes: number; seal: string }> {
  const encoded = await encodeForUpload(checkpoint);
  const { bytes } = await putChunks(backend, path, encoded.chunks(), options, false);
  return { bytes, seal: sealOf(encoded.header) };
}

/** (ours) The seal (format/seal.ts) of a file: the SHA-256 of its header, for the pointer. */
function sealOf(header: Uint8Array): string {
  return createHash('sha256').update(header).digest('hex');
}

/**
 * Writes a directory checkpoint: shard files first, the manifest last. Shard names
 * carry a per-write token, so re-saving the same folder never overwrites a shard the
 * current manifest names; the old manifest's shards are deleted only after the new
 * manifest is in place.
 */
export async function saveCheckpointDir(
  backend: StorageBackend,
  path: string,
  checkpoint: Checkpoint,
  options: SignalOptions & { maxShardBytes: number; concurrency?: number },
): Promise<ShardManifest & { seal: string }> {
  const { metadata, tensors } = splitCheckpoint(checkpoint);
  const groups: (typeof tensors)[] = [];
  let current: typeof tensors = [];
  let size = 0;
  for (const tensor of tensors) {
    if (current.length > 0 && size + tensor.data.byteLength > options.maxShardBytes) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(tensor);
    size += tensor.data.byteLength;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);

  const token = randomBytes(4).toString('hex');
  const manifest: ShardManifest = { format: 'savepoint.sharded', version: 1, codec: 'safetensors', metadata, shards: [] };
  // Shards go up in parallel (bounded); the manifest, written last, is what makes them a checkpoint.
  manifest.shards = await settledMap(
    [...groups.entries()],
    async ([i, group]) => {
      const file = shardFileName(i, groups.length, token);
      const encoded = encodeSafetensors({}, group, { dataSha256: await digestTensorData(group) });
      const written = await putHashed(backend, backend.joinPath(path, file), encoded.chunks(), options);
      return { file, ...written, tensors: group.map((t) => t.name) };
    },
    options.concurrency ?? DEFAULT_SHARD_CONCURRENCY,
  );
  const previous = await readManifest(backend, path).catch(() => undefined);
  const manifestText = JSON.stringify(manifest, null, 1);
  await backend.put(backend.joinPath(path, MANIFEST_NAME), manifestText, options);
  for (const old of previous?.shards ?? []) {
    if (!manifest.shards.some((s) => s.file === old.file)) await backend.remove(backend.joinPath(path, old.file));
  }
  // (ours) The seal (format/seal.ts) of a folder: the SHA-256 of its manifest's bytes, for the pointer.
  const seal = createHash('sha256').update(manifestText).digest('hex');
  // Not enumerable: the manifest's own fields stay what is written.
  return Object.defineProperty(manifest, 'seal', { value: seal, enumerable: false }) as ShardManifest & { seal: string };
}

export type CheckpointShape = 'file' | 'directory' | 'incomplete' | 'missing';

/** What is stored at `path`: a file checkpoint, a complete folder, a folder without its manifest, or nothing. */
export async function checkpointShape(
  backend: StorageBackend,
  path: string,
  options: SignalOptions = {},
): Promise<CheckpointShape> {
  if (await backend.isFile(path, options)) return 'file';
  if (await backend.isFile(backend.joinPath(path, MANIFEST_NAME), options)) return 'directory';
  if (await backend.isDir(path, options)) return 'incomplete';
  return 'missing';
}

/** Loads a file or directory checkpoint. `NotFoundError` when missing or incomplete. */
export async function loadCheckpoint(
  backend: StorageBackend,
  path: string,
  options: SaveOptions & {
    verify?: boolean;
    /** Shards read at once (default `DEFAULT_SHARD_CONCURRENCY`, chosen by `pnpm bench loads`). */
    concurrency?: number;
    /**
     * Only these top-level keys (e.g. `['state_dict']` without `optimizer`), read by range
     * requests through `openCheckpoint`: the other keys' tensors are never fetched.
     */
    keys?: readonly string[];
    /** Where an incremental checkpoint's objects are; by default in the folder next to it. */
    objectPath?: OpenCheckpointOptions['objectPath'];
    /** (ours) What the run's pointer records for this checkpoint (`checkpointSeal`): its header or manifest must match. */
    seal?: string | undefined;
  } = {},
): Promise<Checkpoint> {
  const signal = { signal: options.signal };
  const objectPath = options.objectPath ?? objectPathNear(backend, path);
  if (options.keys !== undefined) {
    if (options.seal !== undefined) await checkSeal(backend, path, options.seal, signal);
    const reader = await openCheckpoint(backend, path, { signal: options.signal, concurrency: options.concurrency, objectPath });
    return reader.load(options.keys);
  }
  const shape = await checkpointShape(backend, path, signal);
  if (shape === 'file') {
    // Every tensor lands in its own buffer as the bytes arrive, hashed on the way (stream-load.ts).
    const { header, tensors } = await streamSafetensorsFile(backend, path, { ...signal, headerSha256: options.seal });
    return joinCheckpoint(header.metadata, tensors);
  }
  if (shape === 'missing') throw new NotFoundError(path, { backend: backend.name, message: `no checkpoint at ${path}` });
  if (shape === 'incomplete') {
    throw new NotFoundError(path, {
      backend: backend.name,
      message: `checkpoint folder ${path} has no ${MANIFEST_NAME}: its save did not finish, so it is not a checkpoint`,
    });
  }
  const { path: manifestPath, json } = await readManifestJson(backend, path, { ...signal, sha256: options.seal });
  if (isIncrementalManifest(json)) {
    // (ours) Every object is checked against the SHA-256 it is named by as it is read.
    return (await openCheckpoint(backend, path, { signal: options.signal, concurrency: options.concurrency, objectPath })).load();
  }
  const manifest = checkShardManifest(json, manifestPath, backend.name);
  const tensors = new Map<string, Tensor | TypedArray>();
  const decoded = await settledMap(
    manifest.shards,
    async (shard) => {
      const shardPath = backend.joinPath(path, shard.file);
      // One hash per byte: the manifest's SHA-256 of the whole shard covers its header and
      // so the data hash the header records (checked instead when `verify` is false).
      const read = await streamSafetensorsFile(backend, shardPath, {
        ...signal,
        savepointWritten: true,
        fileBytes: shard.bytes,
        fileSha256: options.verify === false ? undefined : shard.sha256,
      });
      return read.tensors;
    },
    options.concurrency ?? DEFAULT_SHARD_CONCURRENCY,
  );
  const owners = new TensorOwners(path, backend.name);
  for (const [i, shardTensors] of decoded.entries()) {
    owners.claim((manifest.shards[i] as ShardManifest['shards'][number]).file, shardTensors.keys());
    for (const [name, tensor] of shardTensors) tensors.set(name, tensor);
  }
  return joinCheckpoint(manifest.metadata, tensors);
}

/** What `removeCheckpoint` found: a checkpoint it deleted, nothing, or a folder named like one that is not one (kept). */
export type RemoveResult = 'removed' | 'absent' | 'not-a-checkpoint';

/**
 * Whether a folder without a manifest is what an interrupted save of a folder checkpoint
 * leaves (shard files, and temp files of shards in flight, only): only then may it be deleted as one.
 */
export async function isUnfinishedCheckpointFolder(
  backend: StorageBackend,
  path: string,
  options: SignalOptions = {},
): Promise<boolean> {
  let shards = 0;
  for await (const entry of backend.list(path, { ...options, recursive: true })) {
    if (isShardFileName(entry.name)) shards++;
    else if (!isTempName(entry.name)) return false;
  }
  return shards > 0;
}

/**
 * Deletes a checkpoint whatever its shape: `remove` for a file, `rmtree` for a folder
 * checkpoint. (ours) A folder is deleted only when it is one: it has a manifest, or holds
 * nothing but the shards of a save that did not finish. A folder that merely has a
 * checkpoint's name (other files, no manifest) is not ours and is kept.
 */
export async function removeCheckpoint(
  backend: StorageBackend,
  path: string,
  options: SignalOptions = {},
): Promise<RemoveResult> {
  if (await backend.isFile(path, options)) {
    await backend.remove(path, options);
    return 'removed';
  }
  if (!(await backend.isDir(path, options))) return 'absent';
  const manifest = backend.joinPath(path, MANIFEST_NAME);
  if (!(await backend.isFile(manifest, options)) && !(await isUnfinishedCheckpointFolder(backend, path, options))) {
    return 'not-a-checkpoint';
  }
  // The manifest goes first, so an interrupted delete leaves an incomplete folder
  // (never counted as a checkpoint), not a manifest that names missing shards.
  await backend.remove(manifest, options);
  await backend.rmtree(path, options);
  return 'removed';
}

/** `<name without extension>-<first 8 hex of sha256><extension>`, next to the original. */
export function publishedName(path: string, sha256: string, extension: string): string {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  const stem = dot > slash + 1 ? path.slice(0, dot) : path.replace(/\/+$/, '');
  return `${stem}-${sha256.slice(0, 8)}${extension}`;
}

/**
 * Writes the slim copy of a checkpoint keeping only `keys`; named by the hash of the exact
 * bytes written. The source is checked first (every recorded hash, streamed): the copy
 * gets a fresh, valid hash, so a source that does not verify is refused and nothing is written.
 */
export async function publishCheckpoint(
  backend: StorageBackend,
  path: string,
  keys: readonly string[],
  options: SaveOptions = {},
): Promise<{ path: string; removedKeys: string[]; sha256: string }> {
  let reader: CheckpointReader;
  try {
    ({ reader } = await checkCheckpointBytes(backend, path, {
      signal: options.signal,
      objectPath: objectPathNear(backend, path),
    }));
  } catch (error) {
    if (!(error instanceof CorruptCheckpointError)) throw error;
    throw new CorruptCheckpointError(
      `not publishing ${path}: it does not verify (${error.message.replace(/^\[[^\]]*\] /, '')}); nothing was written`,
      { backend: backend.name, cause: error },
    );
  }
  // Only the kept keys' tensors are loaded (range reads): publishing never holds the optimizer.
  const removedKeys = reader.keys.filter((key) => !keys.includes(key));
  const checkpoint = await reader.load(reader.keys.filter((key) => keys.includes(key)));
  const encoded = encodeCheckpoint(checkpoint);
  // Hash first, then write: the name depends on the bytes, and encoding twice costs no extra memory.
  const hash = createHash('sha256');
  for await (const chunk of encoded.chunks()) hash.update(chunk);
  const sha256 = hash.digest('hex');
  const target = publishedName(path, sha256, CHECKPOINT_EXTENSION);
  await backend.put(target, encoded.chunks(), { ...options, stableChunks: true });
  return { path: target, removedKeys, sha256 };
}
