// The one module that owns the sharded (folder) layout of a checkpoint: the
// manifest's name and shape, and the names of its shard files. A folder checkpoint is
// shard files first and the manifest last: the manifest is what makes it complete,
// and it names every shard with its size and SHA-256.

import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { CorruptCheckpointError } from '../store/errors.js';

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

/** A directory checkpoint's manifest, checked to be one. */
export async function readManifest(backend: StorageBackend, dir: string, options: SignalOptions = {}): Promise<ShardManifest> {
  const path = backend.joinPath(dir, MANIFEST_NAME);
  const bytes = await backend.get(path, options);
  let manifest: ShardManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new CorruptCheckpointError(`manifest ${path} is not valid JSON`, { backend: backend.name, cause: error });
  }
  if (manifest?.format !== 'savepoint.sharded' || !Array.isArray(manifest.shards)) {
    throw new CorruptCheckpointError(`manifest ${path} is not a savepoint shard manifest`, { backend: backend.name });
  }
  return manifest;
}
