// (ours) A checkpoint's seal: one SHA-256 that covers all of it, for the run's pointer to
// record. A file's seal is the hash of its header (8-byte length and JSON: the metadata
// and the data's own SHA-256); a folder's is the hash of its manifest (the metadata and
// every shard's size and SHA-256). So an edit of any byte, metadata included, breaks a
// chain that ends at the pointer, and a load through the pointer catches it.
import { createHash } from 'node:crypto';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { CorruptCheckpointError, NotFoundError } from '../store/errors.js';
import { readSafetensorsHeader } from './reader.js';
import { MANIFEST_NAME, readManifestJson } from './sharded.js';

/** The seal of the checkpoint at `path` (read from its header or manifest alone). */
export async function checkpointSeal(store: StorageBackend, path: string, options: SignalOptions = {}): Promise<string> {
  if (await store.isFile(path, options)) {
    const { headerBytes } = await readSafetensorsHeader(store, path, options);
    return createHash('sha256').update(headerBytes).digest('hex');
  }
  if (!(await store.isFile(store.joinPath(path, MANIFEST_NAME), options))) {
    throw new NotFoundError(path, { backend: store.name, message: `no checkpoint at ${path}` });
  }
  // Whatever the manifest's format (sharded, or incremental: its objects are named by their hashes).
  return (await readManifestJson(store, path, options)).sha256;
}

/** Refuses a checkpoint whose header or manifest is not the one the seal was taken of. */
export async function checkSeal(store: StorageBackend, path: string, seal: string, options: SignalOptions = {}): Promise<void> {
  const actual = await checkpointSeal(store, path, options);
  if (actual !== seal) {
    throw new CorruptCheckpointError(
      `${path}: its ${(await store.isFile(path, options)) ? 'header' : 'manifest'} does not match the SHA-256 the run's pointer records (${seal.slice(0, 12)}…, it gives ${actual.slice(0, 12)}…): its metadata or hashes were edited after it was saved`,
      { backend: store.name },
    );
  }
}
