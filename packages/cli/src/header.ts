// What `savepoint inspect` shows: a checkpoint's header through core's reader (range
// reads only), with the pointer and run folders explained instead of misread.
import {
  baseName,
  ConfigError,
  checkpointShape,
  MANIFEST_NAME,
  NotFoundError,
  openCheckpoint,
  POINTER_NAME,
  readLastCheckpoint,
  type StorageBackend,
  type TensorInfo,
} from '@savepoint/core';

export type TensorSummary = TensorInfo;

export interface CheckpointHeader {
  path: string;
  shape: 'file' | 'directory';
  tensors: TensorSummary[];
  metadata: Record<string, unknown>;
  /** Bytes fetched to build this summary. */
  bytesRead: number;
}

function parseMetadata(metadata: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(metadata).map(([k, v]) => {
      try {
        return [k, JSON.parse(v)];
      } catch {
        return [k, v];
      }
    }),
  );
}

export async function readCheckpointHeader(store: StorageBackend, path: string): Promise<CheckpointHeader> {
  const shape = await checkpointShape(store, path);
  if (shape === 'missing') throw new NotFoundError(path, { backend: store.name, message: `no checkpoint at ${path}` });
  if (shape === 'file' && baseName(path) === POINTER_NAME) {
    const dir = path.slice(0, path.length - POINTER_NAME.length).replace(/[\\/]+$/, '');
    const target = await readLastCheckpoint(store, dir);
    throw new ConfigError(
      `${path} is the run's pointer, not a checkpoint; it names ${target ?? 'nothing'}${target ? `: run savepoint inspect ${target}` : ''}`,
      { option: 'checkpoint' },
    );
  }
  if (shape === 'incomplete' && (await store.isFile(store.joinPath(path, POINTER_NAME)))) {
    throw new ConfigError(
      `${path} is a run folder, not a checkpoint; list its checkpoints with savepoint ls ${path}, or inspect the newest with savepoint inspect ${await readLastCheckpoint(store, path)}`,
      { option: 'checkpoint' },
    );
  }
  if (shape === 'incomplete') {
    throw new NotFoundError(path, { backend: store.name, message: `${path} has no ${MANIFEST_NAME}: its save did not finish` });
  }
  // Headers (and a folder's manifest) only, by range reads: bounded for a file of any size.
  const reader = await openCheckpoint(store, path);
  return {
    path,
    shape: reader.shape,
    tensors: reader.tensorInfos(),
    metadata: parseMetadata(reader.metadata),
    bytesRead: reader.bytesRead,
  };
}
