// Checks a checkpoint's bytes against the hashes it records, streaming them (bounded
// memory, for a checkpoint of any size): a file's data section against the SHA-256 in
// its header; a folder's shards against the sizes and SHA-256s in its manifest, and
// each against its own header's. Publishing runs it on its source first: a copy is
// stamped with a fresh hash, so a damaged source must be refused, not laundered.
import { createHash } from 'node:crypto';
import type { SignalOptions, StorageBackend } from '../store/contract.js';
import { CorruptCheckpointError } from '../store/errors.js';
import { type CheckpointReader, type OpenCheckpointOptions, openCheckpoint, readSafetensorsHeader } from './reader.js';
import { DATA_SHA256_KEY } from './safetensors.js';
import { checkSeal } from './seal.js';
import { readManifest } from './sharded.js';

/** The SHA-256s of a stored file's bytes: all of them, and those from `dataStart` on. */
async function streamDigests(
  store: StorageBackend,
  path: string,
  dataStart: number,
  options: SignalOptions,
): Promise<{ file: string; data: string; bytes: number }> {
  const file = createHash('sha256');
  const data = createHash('sha256');
  let bytes = 0;
  for await (const chunk of await store.getStream(path, options)) {
    file.update(chunk);
    if (bytes + chunk.byteLength > dataStart) data.update(chunk.subarray(Math.max(0, dataStart - bytes)));
    bytes += chunk.byteLength;
  }
  return { file: file.digest('hex'), data: data.digest('hex'), bytes };
}

function checkRecorded(store: StorageBackend, path: string, recorded: string | undefined, actual: string): void {
  if (recorded !== undefined && recorded !== actual) {
    throw new CorruptCheckpointError(
      `${path}: the tensor data does not match the SHA-256 its header records (${recorded.slice(0, 12)}…, the bytes give ${actual.slice(0, 12)}…): the file was changed or damaged after it was written`,
      { backend: store.name },
    );
  }
}

/**
 * Every check a full load makes, without holding the checkpoint: the structure (through
 * `openCheckpoint`: headers, manifest, each tensor once, savepoint's headers recording
 * their hash) and every recorded hash. Resolves the checked checkpoint opened for
 * reading, and whether its bytes could be checked (`false` for another tool's file, which
 * records no hash); `CorruptCheckpointError` when anything does not match.
 */
export async function checkCheckpointBytes(
  store: StorageBackend,
  path: string,
  options: SignalOptions &
    Pick<OpenCheckpointOptions, 'objectPath'> & {
      /** (ours) What the run's pointer records for it (`checkpointSeal`): its header or manifest must match. */
      seal?: string | undefined;
    } = {},
): Promise<{ reader: CheckpointReader; dataHashChecked: boolean }> {
  const signalOnly = { signal: options.signal };
  if (options.seal !== undefined) await checkSeal(store, path, options.seal, signalOnly);
  const reader = await openCheckpoint(store, path, { ...signalOnly, objectPath: options.objectPath });
  if (reader.shape === 'file') {
    const { header } = await readSafetensorsHeader(store, path, signalOnly);
    const recorded = header.metadata[DATA_SHA256_KEY];
    if (recorded === undefined) return { reader, dataHashChecked: false };
    checkRecorded(store, path, recorded, (await streamDigests(store, path, header.dataStart, signalOnly)).data);
    return { reader, dataHashChecked: true };
  }
  if (reader.incremental) {
    // (ours) Each object is checked against the SHA-256 that names it as it is read; one tensor at a time.
    for (const name of reader.tensorNames) await reader.readTensor(name);
    return { reader, dataHashChecked: true };
  }
  const manifest = await readManifest(store, path, signalOnly);
  for (const shard of manifest.shards) {
    const file = store.joinPath(path, shard.file);
    const { header } = await readSafetensorsHeader(store, file, { ...signalOnly, savepointWritten: true });
    const digests = await streamDigests(store, file, header.dataStart, signalOnly);
    if (digests.bytes !== shard.bytes || digests.file !== shard.sha256) {
      throw new CorruptCheckpointError(
        `${file} does not match the ${digests.bytes !== shard.bytes ? 'size' : 'SHA-256'} in its manifest`,
        { backend: store.name },
      );
    }
    checkRecorded(store, file, header.metadata[DATA_SHA256_KEY], digests.data);
  }
  return { reader, dataHashChecked: true };
}
