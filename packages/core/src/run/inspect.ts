// What `savepoint inspect` shows: a checkpoint's header through the lazy reader (range
// reads only, bounded for a file of any size), with the pointer and run folders
// explained instead of misread.
import { openCheckpoint, type TensorInfo } from '../format/reader.js';
import { NOT_JSON, parseMetadataValue } from '../format/safetensors.js';
import { MANIFEST_NAME } from '../format/sharded.js';
import { ConfigError, NotFoundError } from '../store/errors.js';
import { baseName } from '../store/object-path.js';
import { checkpointShape } from './checkpoint-files.js';
import type { RunFolder } from './folder.js';
import { POINTER_NAME } from './layout.js';
import { readLastCheckpoint } from './pointer.js';

export interface CheckpointHeader {
  path: string;
  shape: 'file' | 'directory';
  tensors: TensorInfo[];
  /** The checkpoint's top-level keys (`meta`, `state_dict`, ...). */
  keys: string[];
  metadata: Record<string, unknown>;
  /** Bytes fetched to build this summary. */
  bytesRead: number;
}

/** Each value as JSON, or as the plain text it is; JSON too deeply nested to print is a CorruptCheckpointError. */
function parseMetadata(metadata: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(metadata).map(([k, v]) => {
      const parsed = parseMetadataValue(k, v);
      return [k, parsed === NOT_JSON ? v : parsed];
    }),
  );
}

export async function inspectCheckpoint(run: RunFolder, path: string): Promise<CheckpointHeader> {
  const { store } = run;
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
  const reader = await openCheckpoint(store, path);
  return {
    path,
    shape: reader.shape,
    tensors: reader.tensorInfos(),
    keys: [...reader.keys],
    metadata: parseMetadata(reader.metadata),
    bytesRead: reader.bytesRead,
  };
}
