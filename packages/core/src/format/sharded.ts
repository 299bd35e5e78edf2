// The one module that owns the sharded (folder) layout of a checkpoint: the
// manifest's name and shape, and the names of its shard files. A folder checkpoint is
// shard files first and the manifest last: the manifest is what makes it complete,
// and it names every shard with its size and SHA-256.

import { createHash } from 'node:crypto';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { CorruptCheckpointError } from '../store/errors.js';
import { MAX_HEADER_BYTES } from './safetensors.js';

/** The file, written last, that makes a checkpoint folder complete. */
export const MANIFEST_NAME = 'savepoint-manifest.json';

export interface ShardManifest {
  format: 'savepoint.sharded';
  version: 1;
  codec: 'safetensors';
  metadata: Record<string, string>;
  shards: { file: string; bytes: number; sha256: string; tensors: string[] }[];
}

/** `shard-00001-of-00004-<token>.safetensors`: the token is new for every write, so a re-save never overwrites a shard the current manifest names. */
export function shardFileName(index: number, count: number, token: string): string {
  return `shard-${String(index + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}-${token}.safetensors`;
}

const SHARD_FILE = /^shard-\d{5,}-of-\d{5,}-[0-9a-f]+\.safetensors$/;

/** Whether `name` is a shard file this layout writes (what an interrupted save leaves in a folder without its manifest). */
export function isShardFileName(name: string): boolean {
  return SHARD_FILE.test(name);
}

/**
 * The bound on a manifest's size, as on a safetensors header (`MAX_HEADER_BYTES`): a
 * manifest holds what one file's header would (the metadata and every tensor's name)
 * plus a line per shard, and a hostile one must not allocate, or make a reader fetch,
 * more than that.
 */
export const MAX_MANIFEST_BYTES = MAX_HEADER_BYTES;

const SHA256_HEX = /^[0-9a-f]{64}$/;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * A directory checkpoint's manifest, checked to be one: read with a bound, every field
 * of the shape savepoint writes (a shard's file a plain shard name, listed once; its
 * size, SHA-256 and tensor names), so that no reader meets a non-string name or reads
 * one shard many times. Anything else is a `CorruptCheckpointError` saying what.
 */
export async function readManifest(
  backend: StorageBackend,
  dir: string,
  options: SignalOptions & {
    /** (ours) The SHA-256 the run's pointer records for it (`checkpointSeal`): an edited manifest is refused. */
    sha256?: string | undefined;
  } = {},
): Promise<ShardManifest> {
  return (await readManifestBytes(backend, dir, options)).manifest;
}

/** `readManifest`, with the SHA-256 of the exact bytes parsed (what the pointer's seal of a folder is). */
export async function readManifestBytes(
  backend: StorageBackend,
  dir: string,
  options: SignalOptions & { sha256?: string | undefined } = {},
): Promise<{ manifest: ShardManifest; sha256: string }> {
  const { path, json, sha256 } = await readManifestJson(backend, dir, options);
  return { manifest: checkShardManifest(json, path, backend.name), sha256 };
}

/**
 * The JSON of the manifest in `dir`, read with the bound (whatever its format: the
 * sharded one here, the incremental one of incremental.ts), with the SHA-256 of the
 * exact bytes; with `sha256`, bytes that do not match it are refused.
 */
export async function readManifestJson(
  backend: StorageBackend,
  dir: string,
  options: SignalOptions & { sha256?: string | undefined } = {},
): Promise<{ path: string; json: unknown; sha256: string }> {
  const path = backend.joinPath(dir, MANIFEST_NAME);
  // One byte past the bound: reading more is never needed to refuse it.
  const bytes = await backend.get(path, { signal: options.signal, range: { start: 0, end: MAX_MANIFEST_BYTES + 1 } });
  const corrupt = (what: string, cause?: unknown) =>
    new CorruptCheckpointError(`manifest ${path} ${what}`, { backend: backend.name, cause });
  if (bytes.byteLength > MAX_MANIFEST_BYTES) throw corrupt(`is over the ${MAX_MANIFEST_BYTES}-byte bound`);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (options.sha256 !== undefined && sha256 !== options.sha256) {
    throw corrupt(
      `does not match the SHA-256 the run's pointer records (${options.sha256.slice(0, 12)}…, it gives ${sha256.slice(0, 12)}…): it or its metadata was edited after it was saved`,
    );
  }
  try {
    return { path, json: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)), sha256 };
  } catch (error) {
    throw corrupt('is not valid JSON', error);
  }
}

/** A parsed manifest checked to be a shard manifest of the shape savepoint writes. */
export function checkShardManifest(manifest: unknown, path: string, backendName: string): ShardManifest {
  const corrupt = (what: string, cause?: unknown) =>
    new CorruptCheckpointError(`manifest ${path} ${what}`, { backend: backendName, cause });
  if (!isRecord(manifest) || manifest.format !== 'savepoint.sharded' || !Array.isArray(manifest.shards)) {
    throw corrupt('is not a savepoint shard manifest');
  }
  if (manifest.version !== 1 || manifest.codec !== 'safetensors') {
    throw corrupt(
      `has version ${JSON.stringify(manifest.version)} and codec ${JSON.stringify(manifest.codec)}; this savepoint reads version 1 of safetensors`,
    );
  }
  const metadata = manifest.metadata ?? {};
  if (!isRecord(metadata) || !Object.values(metadata).every((v) => typeof v === 'string')) {
    throw corrupt('has metadata that is not an object of strings');
  }
  const files = new Set<string>();
  for (const [i, shard] of manifest.shards.entries()) {
    const bad = (what: string) => corrupt(`shard ${i + 1}: ${what}`);
    if (!isRecord(shard)) throw bad('is not an object');
    const { file, bytes: size, sha256, tensors } = shard;
    if (typeof file !== 'string' || !isShardFileName(file)) {
      const got = typeof file === 'string' ? JSON.stringify(file) : `a ${file === null ? 'null' : typeof file}`;
      throw bad(`file is ${got}, not a shard file name (shard-00001-of-00002-<token>.safetensors)`);
    }
    if (files.has(file)) throw bad(`${file} is listed twice`);
    files.add(file);
    if (!Number.isSafeInteger(size) || (size as number) < 0) throw bad(`${file}: bytes is not a non-negative integer`);
    if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) throw bad(`${file}: sha256 is not 64 hex digits`);
    if (!Array.isArray(tensors) || !tensors.every((t) => typeof t === 'string')) {
      throw bad(`${file}: tensors is not a list of names`);
    }
  }
  return manifest as unknown as ShardManifest;
}

/**
 * A tensor name appears once across a folder checkpoint. Decoding shard after shard,
 * a name in two of them would quietly take the last one's bytes; this refuses it,
 * naming the tensor and both shards. Call `claim` for each shard's header names.
 */
export class TensorOwners {
  readonly #owners = new Map<string, string>();
  readonly #dir: string;
  readonly #backend: string;

  constructor(dir: string, backend: string) {
    this.#dir = dir;
    this.#backend = backend;
  }

  claim(shard: string, names: Iterable<string>): void {
    for (const name of names) {
      const owner = this.#owners.get(name);
      if (owner !== undefined) {
        throw new CorruptCheckpointError(
          `checkpoint ${this.#dir}: tensor ${JSON.stringify(name)} is in two shards, ${owner} and ${shard}; a tensor is saved once`,
          { backend: this.#backend },
        );
      }
      this.#owners.set(name, shard);
    }
  }
}
