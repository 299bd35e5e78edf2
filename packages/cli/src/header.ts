// Reads only a checkpoint's header through range reads: what `savepoint inspect` shows.
import {
  baseName,
  ConfigError,
  CorruptCheckpointError,
  checkpointShape,
  MANIFEST_NAME,
  NotFoundError,
  POINTER_NAME,
  parseSafetensorsHeader,
  readLastCheckpoint,
  readManifest,
  type SafetensorsHeaderEntry,
  type StorageBackend,
} from '@savepoint/core';

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
  shard?: string | undefined;
}

export interface CheckpointHeader {
  path: string;
  shape: 'file' | 'directory';
  tensors: TensorSummary[];
  metadata: Record<string, unknown>;
  /** Bytes fetched to build this summary. */
  bytesRead: number;
}

/** safetensors' own bound on the JSON header. */
const MAX_HEADER_BYTES = 100_000_000;

async function fileHeader(store: StorageBackend, path: string) {
  const prefix = await store.get(path, { range: { start: 0, end: 8 } });
  if (prefix.byteLength < 8)
    throw new CorruptCheckpointError(`${path} is too short to be a safetensors file`, { backend: store.name });
  const length = Number(new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true));
  // The reference refuses headers over 100 MB: a corrupt length must not pull a whole file into memory.
  if (length > MAX_HEADER_BYTES) {
    throw new CorruptCheckpointError(
      `${path}: its header claims ${length} bytes (over ${MAX_HEADER_BYTES}); not a safetensors file, or a corrupt one`,
      { backend: store.name },
    );
  }
  const rest = await store.get(path, { range: { start: 8, end: 8 + length } });
  const all = new Uint8Array(8 + rest.byteLength);
  all.set(prefix, 0);
  all.set(rest, 8);
  return { header: parseSafetensorsHeader(all), bytesRead: all.byteLength };
}

function summarise(tensors: Record<string, SafetensorsHeaderEntry>, shard?: string): TensorSummary[] {
  return Object.entries(tensors).map(([name, t]) => ({
    name,
    dtype: t.dtype,
    shape: t.shape,
    bytes: t.data_offsets[1] - t.data_offsets[0],
    shard,
  }));
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
  if (shape === 'file') {
    const { header, bytesRead } = await fileHeader(store, path);
    return { path, shape, tensors: summarise(header.tensors), metadata: parseMetadata(header.metadata), bytesRead };
  }
  const manifest = await readManifest(store, path);
  const tensors: TensorSummary[] = [];
  let bytesRead = 0;
  for (const shard of manifest.shards) {
    const { header, bytesRead: n } = await fileHeader(store, store.joinPath(path, shard.file));
    tensors.push(...summarise(header.tensors, shard.file));
    bytesRead += n;
  }
  return { path, shape, tensors, metadata: parseMetadata(manifest.metadata), bytesRead };
}
